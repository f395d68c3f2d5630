"""Two real hub processes sharing one PostgreSQL identity registry, and registry outages."""

from __future__ import annotations

import json
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from devstack.configs import IAM_HUB_CONFIG
from devstack.hub import REPO_ROOT, HubProcess
from devstack.idp import IdPProcess, default_clients, free_port
from devstack.login import hub_login
from devstack.postgres import PostgresServer, postgres_server
from devstack.stacks import USERS
from iris_jupyterhub.posix import IdentityRegistry

pytestmark = pytest.mark.e2e

EXTRA_USERS = [f"member{i:02d}" for i in range(12)]


@pytest.fixture(scope="module")
def pg() -> Iterator[PostgresServer]:
    with postgres_server("registry") as server:
        yield server


@pytest.fixture(scope="module")
def two_hubs(
    tmp_path_factory: pytest.TempPathFactory, pg: PostgresServer
) -> Iterator[tuple[IdPProcess, HubProcess, HubProcess]]:
    """One IdP, two hubs (as two replicas would be) with one registry database."""
    workdir = tmp_path_factory.mktemp("replicas")
    ports = [free_port(), free_port()]
    idp = IdPProcess(
        REPO_ROOT,
        workdir / "idp",
        clients=default_clients([f"http://127.0.0.1:{p}/hub/oauth_callback" for p in ports]),
    )
    (workdir / "idp").mkdir()
    idp.start()
    ada = USERS[("iam", "ada")]
    for login in EXTRA_USERS:
        user = json.loads(json.dumps(ada))
        user.update(
            login=login,
            password=f"{login}-pass",
            sub=f"00000000-0000-4000-8000-0000000000{login[-2:]}",
        )
        user["userinfo"]["preferred_username"] = login
        user["id_token"]["preferred_username"] = login
        user["userinfo"]["groups"] = ["iris", f"iris/team{int(login[-2:]) % 3}"]
        user["id_token"]["wlcg.groups"] = ["/iris"]
        idp.upsert_user("iam", user)
    config = IAM_HUB_CONFIG.replace("{issuer}", idp.issuer("iam")) + (
        f'\nc.IdentityRegistry.db_url = "{pg.url}"\n'
    )
    hubs = [HubProcess(workdir / f"hub{i}", port, config) for i, port in enumerate(ports)]
    for hub in hubs:
        hub.start()
    try:
        yield idp, hubs[0], hubs[1]
    finally:
        for hub in hubs:
            hub.stop()
        idp.stop()


def _posix(hub: HubProcess, name: str) -> dict[str, Any]:
    return dict(hub.api("GET", f"/users/{name}").json()["auth_state"]["posix"])


def test_two_hubs_map_the_same_and_different_identities_consistently(
    two_hubs: tuple[IdPProcess, HubProcess, HubProcess], pg: PostgresServer
) -> None:
    _idp, hub_a, hub_b = two_hubs
    logins = [("ada", "aresearcher"), ("bob", "bbuilder")] + [(u, u) for u in EXTRA_USERS]
    jobs = [(hub, login) for login, _ in logins for hub in (hub_a, hub_b)] * 2

    def run(job: tuple[HubProcess, str]) -> int:
        hub, login = job
        return hub_login(hub.url, login, f"{login}-pass").status

    with ThreadPoolExecutor(max_workers=12) as pool:
        statuses = list(pool.map(run, jobs))
    assert statuses == [302] * len(jobs)

    uids = set()
    for _, name in logins:
        a, b = _posix(hub_a, name), _posix(hub_b, name)
        assert a == b, name
        uids.add(a["uid"])
    assert len(uids) == len(logins)

    registry = IdentityRegistry(db_url=pg.url)
    accounts = list(registry.iter_accounts())
    assert len(accounts) == len(logins)
    assert len({a.uid for a in accounts}) == len(accounts)
    assert len({a.gid for a in accounts}) == len(accounts)
    assert registry.check() == []
    team_gids = {g["name"]: g["gid"] for g in _posix(hub_a, "member01")["groups"]}
    assert (
        team_gids["iris-team1"]
        == {g["name"]: g["gid"] for g in _posix(hub_b, "member04")["groups"]}["iris-team1"]
    )


def test_registry_database_down_gives_503_and_recovers(
    tmp_path: Path, two_hubs: tuple[IdPProcess, HubProcess, HubProcess], pg: PostgresServer
) -> None:
    _idp, hub_a, _hub_b = two_hubs
    registry = IdentityRegistry(db_url=pg.url)
    before = len(list(registry.iter_accounts()))
    registry.close()
    pg.stop()
    try:
        attempt = hub_login(hub_a.url, "carol", "carol-pass")
        assert attempt.status == 503, attempt.text
        assert hub_a.api("GET", "/users/cadmin").status_code == 404
    finally:
        pg.start()
        pg.wait_ready()
    registry = IdentityRegistry(db_url=pg.url)
    assert len(list(registry.iter_accounts())) == before  # no partial rows
    assert hub_login(hub_a.url, "carol", "carol-pass").status == 302
    assert _posix(hub_a, "cadmin")["username"] == "cadmin"
