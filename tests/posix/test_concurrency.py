"""Several processes against one database: no duplicate ids, everyone agrees, stable."""

from __future__ import annotations

import multiprocessing
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, text

from iris_jupyterhub.posix import IdentityKey, IdentityRegistry

from . import workers

CTX = multiprocessing.get_context("spawn")


def _collect(processes: list[Any], out: Any) -> list[Any]:
    for process in processes:
        process.start()
    results = [out.get(timeout=180) for _ in processes]
    for process in processes:
        process.join(timeout=60)
        assert process.exitcode == 0
    return results


def test_eight_workers_map_concurrently(db_url: str) -> None:
    """8 processes (two "hubs" and six workers) map shared and own identities at once."""
    shared = [f"shared-{i}" for i in range(25)]
    barrier, out = CTX.Barrier(8), CTX.Queue()
    processes = [
        CTX.Process(
            target=workers.map_keys,
            args=(db_url, w, shared + [f"own-{w}-{i}" for i in range(10)], barrier, out),
        )
        for w in range(8)
    ]
    results = _collect(processes, out)
    assert [error for _, _, error in results] == [None] * 8
    answers: dict[str, list[int | str]] = {}
    for _, result, _ in results:
        for subject, answer in result.items():
            assert answers.setdefault(subject, answer) == answer, subject
    assert len(answers) == 25 + 80
    for column in range(3):
        values = [answer[column] for answer in answers.values()]
        assert len(set(values)) == len(values)
    registry = IdentityRegistry(db_url=db_url)
    assert registry.check() == []
    assert len(list(registry.iter_accounts())) == 105
    registry.close()


def test_migrations_run_once_with_concurrent_starts(pg_url: str) -> None:
    barrier, out = CTX.Barrier(4), CTX.Queue()
    processes = [
        CTX.Process(target=workers.migrate, args=(pg_url, barrier, out)) for _ in range(4)
    ]
    results = _collect(processes, out)
    assert [error for _, _, error in results] == [None] * 4
    assert sum(ran for ran, _, _ in results) == 1
    assert len({uid for _, uid, _ in results}) == 1
    engine = create_engine(pg_url)
    with engine.connect() as connection:
        versions = connection.execute(text("SELECT version_num FROM posix_alembic_version"))
        assert len(versions.all()) == 1
    engine.dispose()


@settings(
    max_examples=3,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(st.lists(st.text(min_size=1, max_size=40), min_size=1, max_size=8, unique=True))
def test_stable_across_process_restarts(db_url: str, subjects: list[str]) -> None:
    """Map in this process, then a freshly started process gets the same answers."""
    registry = IdentityRegistry(db_url=db_url)
    here = {
        s: registry.map_identity(IdentityKey(workers.IAM, s), s, ["iris"]).to_auth_state()
        for s in subjects
    }
    registry.close()
    out = CTX.Queue()
    process = CTX.Process(target=workers.lookup_all, args=(db_url, subjects, out))
    process.start()
    there = out.get(timeout=120)
    process.join(timeout=60)
    assert there == here
