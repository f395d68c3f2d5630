"""Group quotas as running totals: O(1) per spawn, exact after stops, failed starts and restarts.

Real IRISSpawners
(built in-process as the hub builds them) on a real JupyterHub database (``jupyterhub.orm``,
SQLite file) holding hundreds of running servers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from jupyterhub import orm
from sqlalchemy import event
from tornado.web import HTTPError

from iris_jupyterhub.spawner import IRISSpawner
from iris_jupyterhub.spawner.resources import ResourceTotals
from tests.spawner.test_spawner_errors import Handler, kubeconfig  # noqa: F401  (fixture)

LSST = "iris/lsst"
QUOTAS = {LSST: {"servers": 3, "cpu": 4, "memory": "8G", "gpu": 1}}


def posix(uid: int) -> dict[str, Any]:
    return {
        "uid": uid,
        "gid": uid,
        "username": f"u{uid}",
        "groups": [
            {"name": f"u{uid}", "gid": uid},
            {"name": "iris-lsst", "gid": 3000002, "canonical": LSST},
            {"name": "dune", "gid": 3000003, "canonical": "dune"},
        ],
    }


# --- real spawners on a real hub database ---------------------------------------------------


class HubUser:
    """The part of ``jupyterhub.user.User`` a spawner uses before ``start()``, on a real db."""

    def __init__(self, db: Any, orm_user: orm.User, uid: int) -> None:
        self.db = db
        self.name = orm_user.name
        self.id = orm_user.id
        self.url = f"/user/{self.name}/"
        self._auth_state = {"groups": ["iris", LSST, "dune"], "posix": posix(uid)}

    async def get_auth_state(self) -> dict[str, Any]:
        return self._auth_state


class Hub:
    """A hub database (file) with a session, as one hub process holds it."""

    def __init__(self, path: Path) -> None:
        self.url = f"sqlite:///{path}"
        self.db = orm.new_session_factory(self.url)()

    def add_running(self, count: int, group: str, start: int = 0) -> None:
        """``count`` users each with a running server of ``group`` (1 CPU) in the state."""
        for i in range(start, start + count):
            user = orm.User(name=f"running{i}")
            self.db.add(user)
            spawner = orm.Spawner(user=user, name="", server=orm.Server())
            spawner.state = {"iris": {"group": group, "cpu": 0.001, "memory": 0, "gpu": 0}}
            self.db.add(spawner)
        self.db.commit()

    def spawner(self, name: str, uid: int, **traits: Any) -> IRISSpawner:
        """An IRISSpawner for a new user ``name`` whose server is being started."""
        orm_user = orm.User(name=name)
        self.db.add(orm_user)
        orm_spawner = orm.Spawner(user=orm_user, name="", server=orm.Server())
        self.db.add(orm_spawner)
        self.db.commit()
        spawner = IRISSpawner(
            _mock=True,
            user=HubUser(self.db, orm_user, uid),
            orm_spawner=orm_spawner,
            namespace="jhub",
            group_quotas=traits.pop("group_quotas", {LSST: {"servers": 10_000}}),
            **traits,
        )
        spawner.handler = Handler()
        spawner.user_options = {"group": "iris-lsst"}
        return spawner

    def stopped(self, spawner: IRISSpawner) -> None:
        """What JupyterHub does when a server stops or fails to start: no server, state cleared."""
        spawner.orm_spawner.server = None
        self.db.commit()
        spawner.clear_state()
        spawner.orm_spawner.state = spawner.get_state()
        self.db.commit()

    def started(self, spawner: IRISSpawner) -> None:
        """What JupyterHub does once ``start()`` returned: the spawner state is saved."""
        spawner.orm_spawner.state = spawner.get_state()
        self.db.commit()

    def restarted(self) -> Hub:
        """The same database opened by a new hub process."""
        self.db.close()
        return Hub(Path(self.url.removeprefix("sqlite:///")))


@pytest.fixture
def hub(tmp_path: Path, kubeconfig: None) -> Iterator[Hub]:  # noqa: F811
    hub = Hub(tmp_path / "jupyterhub.sqlite")
    yield hub
    hub.db.close()


class Work:
    """SQL statements sent and spawner rows loaded (or reloaded) while it is active."""

    def __init__(self, db: Any) -> None:
        self.engine = db.get_bind()
        self.statements = 0
        self.rows = 0

    def _statement(self, *args: Any) -> None:
        self.statements += 1

    def _row(self, *args: Any) -> None:
        self.rows += 1

    def __enter__(self) -> Work:
        event.listen(self.engine, "before_cursor_execute", self._statement)
        event.listen(orm.Spawner, "load", self._row)
        event.listen(orm.Spawner, "refresh", self._row)
        return self

    def __exit__(self, *exc: object) -> None:
        event.remove(self.engine, "before_cursor_execute", self._statement)
        event.remove(orm.Spawner, "load", self._row)
        event.remove(orm.Spawner, "refresh", self._row)


async def spawn_work(hub: Hub, running: int, spawns: int) -> list[tuple[int, int]]:
    """The (statements, spawner rows) of each quota check after the first, with ``running``
    servers of the group already running."""
    hub.add_running(running, LSST)
    hub.db.expire_all()  # a fresh session's view, as after a hub restart
    first = hub.spawner("first", 5000)
    await first.load_user_options()  # the totals are built (once per hub)
    work = []
    for i in range(spawns):
        spawner = hub.spawner(f"new{i}", 6000 + i)
        with Work(hub.db) as counted:
            spawner._check_quota(LSST, ResourceTotals(cpu=0.001))
        work.append((counted.statements, counted.rows))
    return work


@pytest.mark.usefixtures("kubeconfig")
async def test_the_work_per_spawn_does_not_grow_with_the_running_servers(tmp_path: Path) -> None:
    small = Hub(tmp_path / "small.sqlite")
    large = Hub(tmp_path / "large.sqlite")
    try:
        few, many = await spawn_work(small, 10, 5), await spawn_work(large, 400, 5)
    finally:
        small.db.close()
        large.db.close()
    assert few == many
    # no database round trip at all: the totals are kept in the hub
    assert many == [(0, 0)] * 5


@pytest.mark.usefixtures("kubeconfig")
async def test_totals_after_start_stop_failed_start_and_restart(hub: Hub) -> None:
    hub.add_running(2, LSST)
    hub.add_running(1, "dune", start=2)
    quotas = {"group_quotas": QUOTAS}
    a = hub.spawner("a", 7001, **quotas)
    await a.load_user_options()
    hub.started(a)
    b = hub.spawner("b", 7002, **quotas)
    with pytest.raises(Exception, match="limit of 3 running servers"):
        await b.load_user_options()
    hub.stopped(b)  # JupyterHub stops a server whose start failed
    hub.stopped(a)  # a stops: its slot is free again
    await b.load_user_options()
    hub.started(b)
    # a start that fails after the check (e.g. the pod is refused) frees the slot
    c = hub.spawner("c", 7003, **quotas)
    with pytest.raises(Exception, match="limit of 3 running servers"):
        await c.load_user_options()
    hub.stopped(b)
    await c.load_user_options()
    hub.stopped(c)  # failed start: JupyterHub calls stop, which clears the state
    d = hub.spawner("d", 7004, **quotas)
    await d.load_user_options()
    hub.started(d)
    # a new hub process on the same database rebuilds the totals from the saved state
    again = hub.restarted()
    try:
        e = again.spawner("e", 7005, **quotas)
        with pytest.raises(Exception, match=r"limit of 3 running servers \(3 in use"):
            await e.load_user_options()
        ours = again.db.get(orm.Spawner, d.orm_spawner.id)
        ours.server = None
        again.db.commit()
        twin = IRISSpawner(_mock=True, user=e.user, orm_spawner=ours, **quotas)
        twin.clear_state()  # d stops under the new hub
        await e.load_user_options()
    finally:
        again.db.close()


@pytest.mark.usefixtures("kubeconfig")
async def test_two_spawns_racing_for_the_last_slot_do_not_both_pass(hub: Hub) -> None:
    hub.add_running(2, LSST)
    first = hub.spawner("first", 8001, group_quotas=QUOTAS)
    second = hub.spawner("second", 8002, group_quotas=QUOTAS)

    async def race() -> list[BaseException | None]:
        results = await asyncio.gather(
            first.load_user_options(), second.load_user_options(), return_exceptions=True
        )
        return [r if isinstance(r, BaseException) else None for r in results]

    outcomes = await race()
    refused = [r for r in outcomes if r is not None]
    assert len(refused) == 1, outcomes
    assert isinstance(refused[0], HTTPError)
    assert refused[0].status_code == 403
    assert "limit of 3 running servers" in refused[0].jupyterhub_message  # type: ignore[attr-defined]
