"""The linkage zone: identifying values of ingested calls, apart from their content.

The linkage process reads it through :class:`~cswb.linkage.store.LinkageStore` (matches by
keyed hash, :func:`~cswb.linkage.values.value_hash`); no web page or API endpoint shows it.
See ``docs/linkage.md``.
"""
