"""The toolkit's version, part of every signature (a leaf module: anything may import it)."""

__version__ = "0.1.0"
