"""cswb: community safety and well-being platform."""

__version__ = "0.1.0"
