"""The usage package's one error (kept free of SQLAlchemy so it imports anywhere)."""

from __future__ import annotations


class UsageStoreError(Exception):
    """The usage store cannot be opened (bad URL, missing driver) or written."""
