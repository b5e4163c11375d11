"""The SQL store (SQLAlchemy 2 Core): SQLite, the embedded default, and PostgreSQL."""

from __future__ import annotations

from .store import SQLStore as SQLStore

__all__ = ["SQLStore"]
