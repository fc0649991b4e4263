"""Package version (L0)."""

__version__ = "0.1.0"
