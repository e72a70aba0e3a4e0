"""PosHub: an open-source acquiring platform for POS terminals."""

__version__ = "0.1.0"
