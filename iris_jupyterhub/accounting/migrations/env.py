"""Alembic environment: runs on the connection the store passes in ``attributes``.

The store opens a write transaction (holding the migration lock, see
:func:`iris_jupyterhub.accounting.store.upgrade_accounting`) and calls
``alembic.command.upgrade`` with that connection, so concurrent processes migrate one after
the other. The version table is ``accounting_alembic_version``, separate from the identity
registry's, so both can live in one database and upgrade independently.
"""

from __future__ import annotations

from alembic import context

from iris_jupyterhub.accounting.models import AccountingBase

VERSION_TABLE = "accounting_alembic_version"

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=AccountingBase.metadata,
    version_table=VERSION_TABLE,
    render_as_batch=True,
)
with context.begin_transaction():
    context.run_migrations()
