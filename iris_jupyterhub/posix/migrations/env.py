"""Alembic environment: runs on the connection the registry passes in ``attributes``.

The registry opens a transaction (holding a PostgreSQL advisory lock, or SQLite's write
lock) and calls ``alembic.command.upgrade`` with that connection, so concurrent processes
migrate one after the other and the later ones find the database already at ``head``.
"""

from __future__ import annotations

from alembic import context

from iris_jupyterhub.posix.models import Base

VERSION_TABLE = "posix_alembic_version"

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=Base.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
