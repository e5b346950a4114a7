"""Mathia: a self-hostable, multi-tenant AI chat platform for teams."""

__version__ = "0.1.0"
