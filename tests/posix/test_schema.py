"""The shipped migrations build exactly the ORM schema, and ``check`` sees every problem."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from iris_jupyterhub.posix import IdentityKey, IdentityRegistry
from iris_jupyterhub.posix.models import Base

from .conftest import RegistryFactory

IAM = "https://iris-iam.stfc.ac.uk"


def test_migrations_match_models(registry: IdentityRegistry) -> None:
    registry.engine  # noqa: B018 - first use migrates
    engine = create_engine(registry.url)
    with engine.connect() as connection:
        context = MigrationContext.configure(
            connection, opts={"version_table": "posix_alembic_version"}
        )
        assert compare_metadata(context, Base.metadata) == []
        indexes = {ix["name"] for ix in inspect(connection).get_indexes("posix_identities")}
    engine.dispose()
    assert {"ix_posix_identities_uid", "ix_posix_identities_key"} <= indexes


def test_reopening_does_not_migrate_again(make_registry: RegistryFactory) -> None:
    make_registry().map_identity(IdentityKey(IAM, "a"), "a", [])
    second = make_registry()
    assert second.lookup(IdentityKey(IAM, "a")) is not None


def test_check_reports_ranges_names_and_orphans(make_registry: RegistryFactory) -> None:
    registry = make_registry()
    alice = registry.map_identity(IdentityKey(IAM, "alice"), "alice", ["iris"])
    registry.map_identity(IdentityKey(IAM, "bob"), "bob", [])
    narrowed = make_registry(uid_range=(alice.uid, alice.uid))
    assert {p.kind for p in narrowed.check()} == {"uid-out-of-range"}
    engine = create_engine(registry.url)
    with engine.begin() as connection:
        connection.execute(text("DROP INDEX ix_posix_groups_name"))
        connection.execute(text("UPDATE posix_groups SET name = 'bob'"))
        connection.execute(text("UPDATE posix_identities SET username = 'Bad!' WHERE uid = :u"),
                           {"u": alice.uid})  # fmt: skip
        connection.execute(text("UPDATE posix_identities SET deleted_at = created_at"))
    engine.dispose()
    kinds = sorted(p.kind for p in registry.check())
    assert kinds == ["duplicate-name", "invalid-name", "orphan-membership"]
