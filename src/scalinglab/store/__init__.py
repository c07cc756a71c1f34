"""Study storage: one SQLite file per study (store/sqlite.py)."""
from .sqlite import SQLiteStore

__all__ = ["SQLiteStore"]
