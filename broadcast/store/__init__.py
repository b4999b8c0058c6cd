"""Persistence: SQLAlchemy 2 async tables and queries. SQLite by default; nothing SQLite-only."""
