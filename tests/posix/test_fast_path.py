"""The login fast path: a known identity whose groups did not change is ONE statement.

Counted with a SQLAlchemy ``before_cursor_execute`` listener on every engine (SQLite's
explicit ``BEGIN`` counts too), on SQLite and on a real PostgreSQL server. A tampered
row is still refused on this path (tests/posix/test_faults.py).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, event

from iris_jupyterhub.posix import IdentityKey, IdentityRegistry

KEY = IdentityKey("https://iam.example.org/", "ada-subject")
GROUPS = ["iris", "iris/lsst"]


@contextmanager
def counted() -> Iterator[list[str]]:
    """Every SQL statement any engine sends while inside."""
    statements: list[str] = []

    def count(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(Engine, "before_cursor_execute", count)
    try:
        yield statements
    finally:
        event.remove(Engine, "before_cursor_execute", count)


def test_a_known_identity_with_unchanged_groups_is_one_statement(
    registry: IdentityRegistry,
) -> None:
    first = registry.map_identity(KEY, "ada", GROUPS)
    registry.map_identity(KEY, "ada", GROUPS)  # connections and statements warmed up
    with counted() as statements:
        again = registry.map_identity(KEY, "ada", list(reversed(GROUPS)))
    assert again == first
    assert len(statements) == 1, statements


def test_changed_groups_still_take_the_write_path(registry: IdentityRegistry) -> None:
    registry.map_identity(KEY, "ada", GROUPS)
    with counted() as statements:
        changed = registry.map_identity(KEY, "ada", ["iris"])
    assert [g.canonical for g in changed.groups[1:]] == ["iris"]
    assert len(statements) > 1
