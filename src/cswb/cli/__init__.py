"""The ``cswb`` command line: thin commands over the packages."""
