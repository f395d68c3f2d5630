"""Alembic migrations of the identity registry, applied by the registry at first use."""
