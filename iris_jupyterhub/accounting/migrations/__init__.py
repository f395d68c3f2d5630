"""Alembic migrations of the accounting table, applied by the store at first use."""
