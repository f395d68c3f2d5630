"""Bursts and faults at scale: a whole stack on real parts, and drivers that load it.

:class:`ScaleStack` is the real hub (IRISSpawner, IAM login, PostgreSQL registry and accounting)
with the real IdP (generated users), the Kubernetes stand-in (objects kept across a restart; one
stub server answers for every pod) and, if asked, the OpenStack stand-in with Manila storage.
:func:`login_burst` and :func:`spawn_burst` drive many logins and spawns at once and time each;
:func:`hub_resources` reads the hub process's open file descriptors and RSS from ``/proc``.

Sizes come from ``IRIS_SCALE`` (``smoke``, the default and CI's, or ``full``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import statistics
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from devstack.configs import IAM_HUB_CONFIG, KUBE_HUB_CONFIG
from devstack.hub import REPO_ROOT, HubProcess
from devstack.idp import IdPProcess, default_clients, free_port, make_rsa_jwk
from devstack.kube import KubeStandIn
from devstack.login import hub_login
from devstack.openstack import APP_CRED_ID, APP_CRED_SECRET, OpenStackServer
from devstack.postgres import PostgresServer
from devstack.stub_server import stub_server
from iris_jupyterhub.accounting import AccountingStore, SessionRecord
from iris_jupyterhub.posix import IdentityRegistry


@dataclass(frozen=True)
class Sizes:
    logins: int  # concurrent logins of a burst
    spawns: int  # concurrent spawns of a burst
    fault_logins: int  # logins while the IdP is killed
    fault_spawns: int  # spawns while a stand-in or the database restarts


SIZES = {
    "smoke": Sizes(logins=40, spawns=12, fault_logins=20, fault_spawns=8),
    "full": Sizes(logins=200, spawns=50, fault_logins=100, fault_spawns=30),
}


def scale() -> str:
    name = os.environ.get("IRIS_SCALE", "smoke")
    if name not in SIZES:
        raise ValueError(f"IRIS_SCALE must be one of {sorted(SIZES)}, not {name!r}")
    return name


def sizes() -> Sizes:
    return SIZES[scale()]


#: Sentences the library shows a researcher when a service it needs is down
#: (docs/admin/troubleshooting.md); a failed request under a fault must carry one of them.
PLAIN_ERRORS = (
    "is not responding at the moment, so you cannot be signed in",  # IdP
    "did not accept the sign-in code",  # IdP restarted between authorize and token
    "The account database is not responding at the moment",  # registry
    "storage service is not responding at the moment",  # Keystone/Manila
    "Your home directory is unavailable right now",  # storage not ready in time
    "the cluster did not answer",  # Kubernetes API while preparing storage
)


def plain_error(text: str) -> str | None:
    """The library's plain-language sentence found in ``text``, or None."""
    return next((p for p in PLAIN_ERRORS if p in text), None)


# --------------------------------------------------------------------------------------
# figures
# --------------------------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0..1) by the nearest-rank method; 0 for no values."""
    if not values:
        return 0.0
    ordered = sorted(values)
    rank = max(1, int(-(-q * len(ordered) // 1)))  # ceil
    return ordered[min(rank, len(ordered)) - 1]


def describe(name: str, seconds: list[float], errors: int) -> str:
    """One printable line: count, errors, p50/p99/max in milliseconds."""
    return (
        f"[{scale()}] {name}: n={len(seconds) + errors} errors={errors} "
        f"p50={percentile(seconds, 0.5) * 1000:.0f} ms "
        f"p99={percentile(seconds, 0.99) * 1000:.0f} ms "
        f"max={max(seconds, default=0) * 1000:.0f} ms"
        + (f" mean={statistics.fmean(seconds) * 1000:.0f} ms" if seconds else "")
    )


def report(line: str) -> None:
    """Print a figure (run pytest with ``-s`` to see it) and keep it in ``scale-figures.txt``."""
    print(line, flush=True)
    out = os.environ.get("IRIS_SCALE_FIGURES")
    if out:
        with open(out, "a") as fh:
            fh.write(line + "\n")


@dataclass(frozen=True)
class Resources:
    """The hub process's open descriptors (with the pooled connections among them counted
    apart) and resident memory."""

    fds: int
    rss_kib: int
    proxy_keepalive: int = 0  # connections the proxy keeps open to the hub for reuse
    db_pool: int = 0  # connections of the registry/accounting pool to PostgreSQL

    @property
    def other_fds(self) -> int:
        return self.fds - self.proxy_keepalive - self.db_pool

    def __str__(self) -> str:
        return (
            f"fds={self.fds} (proxy keep-alive {self.proxy_keepalive}, PostgreSQL pool "
            f"{self.db_pool}, other {self.other_fds}) rss={self.rss_kib / 1024:.1f} MiB"
        )


def _tcp_ports(pid: int) -> list[tuple[int, int]]:
    """(local port, remote port) of the established TCP connections of process ``pid``."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
            if target.startswith("socket:["):
                inodes.add(target[8:-1])
    found = []
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                cols = line.split()
                if cols[3] == "01" and cols[9] in inodes:  # ESTABLISHED, ours
                    local, remote = cols[1], cols[2]
                    found.append(
                        (int(local.rsplit(":", 1)[1], 16), int(remote.rsplit(":", 1)[1], 16))
                    )
    return found


def process_resources(pid: int, hub_port: int = 0, db_port: int = 0) -> Resources:
    """Open file descriptors and resident memory of process ``pid`` (Linux ``/proc``);
    connections accepted on ``hub_port`` (from the proxy) and to ``db_port`` counted apart."""
    fds = len(os.listdir(f"/proc/{pid}/fd"))
    status = Path(f"/proc/{pid}/status").read_text()
    rss = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:"))
    ports = _tcp_ports(pid)
    return Resources(
        fds=fds,
        rss_kib=rss,
        proxy_keepalive=sum(1 for local, _ in ports if local == hub_port),
        db_pool=sum(1 for _, remote in ports if remote == db_port),
    )


# --------------------------------------------------------------------------------------
# users
# --------------------------------------------------------------------------------------


def login_of(i: int) -> str:
    return f"load{i:04d}"


def username_of(i: int) -> str:
    return f"loaduser{i:04d}"


def make_users(count: int) -> list[dict[str, Any]]:
    """``count`` IAM members of ``iris`` (and one of five teams), in ``users.json`` format."""
    users = []
    for i in range(count):
        team = f"iris/team{i % 5}"
        users.append(
            {
                "provider": "iam",
                "login": login_of(i),
                "password": f"{login_of(i)}-pass",
                "sub": f"5ca1e000-0000-4000-8000-{i:012d}",
                "id_token": {
                    "wlcg.ver": "1.0",
                    "wlcg.groups": ["/iris", f"/{team}"],
                    "preferred_username": username_of(i),
                    "name": f"Load Tester {i}",
                },
                "userinfo": {
                    "name": f"Load Tester {i}",
                    "preferred_username": username_of(i),
                    "email": f"load{i}@example.ac.uk",
                    "email_verified": True,
                    "groups": ["iris", team],
                },
            }
        )
    return users


# --------------------------------------------------------------------------------------
# the stack
# --------------------------------------------------------------------------------------

PROFILES = [
    {"display_name": "Standard", "slug": "standard", "default": True},
]


def hub_config(stub_port: int, pg_url: str, openstack: OpenStackServer | None) -> str:
    """IAM login + IRISSpawner on the stand-in + registry and accounting on PostgreSQL."""
    config = IAM_HUB_CONFIG + KUBE_HUB_CONFIG
    config += f"""
c.IAMAuthenticator.http_timeout = 10
c.JupyterHub.spawner_class = "iris"
c.JupyterHub.authenticate_prometheus = False
c.IRISSpawner.port = {stub_port}
c.IRISSpawner.namespace = "jhub"
c.IRISSpawner.image = "quay.io/jupyter/base-notebook:latest"
c.IRISSpawner.cmd = ["jupyterhub-singleuser"]
c.IRISSpawner.args = []
c.IRISSpawner.start_timeout = 120
c.IRISSpawner.http_timeout = 60
c.IRISSpawner.profile_list = {PROFILES!r}
# the stand-in shares two cores with the whole stack and its load: give it KubeSpawner's
# request timeout of a slow cluster (default 3 s)
c.IRISSpawner.k8s_api_request_timeout = 10
c.IdentityRegistry.db_url = "{pg_url}"
c.SessionAccounting.site_name = "IRIS-SCALE"
"""
    if openstack is not None:
        config += f"""
c.ManilaStorage.enabled = True
c.ManilaStorage.auth_url = "{openstack.auth_url}"
c.ManilaStorage.region_name = "RegionOne"
c.ManilaStorage.share_size_gb = 5
c.ManilaStorage.poll_interval = 0.2
"""
    return config


@dataclass
class ScaleStack:
    """The running parts; ``tokens`` caches users' API tokens."""

    workdir: Path
    idp: IdPProcess
    hub: HubProcess
    kube: KubeStandIn
    pg: PostgresServer
    openstack: OpenStackServer | None
    users: int
    tokens: dict[str, str] = field(default_factory=dict)
    #: successful starts per user (each must have exactly one accounting record)
    started: dict[str, int] = field(default_factory=dict)

    # -- resources -------------------------------------------------------------------
    def hub_resources(self) -> Resources:
        assert self.hub.proc is not None
        config = (self.hub.workdir / "jupyterhub_config.py").read_text()
        hub_port = int(re.search(r"c\.JupyterHub\.hub_port = (\d+)", config)[1])  # type: ignore[index]
        return process_resources(self.hub.proc.pid, hub_port, self.pg.port)

    # -- API --------------------------------------------------------------------------
    def token(self, username: str) -> str:
        if username not in self.tokens:
            r = self.hub.api("POST", f"/users/{username}/tokens", json={})
            assert r.status_code == 201, r.text
            self.tokens[username] = r.json()["token"]
        return self.tokens[username]

    def user_model(self, username: str) -> dict[str, Any]:
        r = self.hub.api("GET", f"/users/{username}")
        assert r.status_code == 200, f"{username}: {r.status_code} {r.text[:200]}"
        model: dict[str, Any] = r.json()
        return model

    def posix(self, username: str) -> dict[str, Any]:
        return dict(self.user_model(username)["auth_state"]["posix"])

    def registry(self) -> IdentityRegistry:
        return IdentityRegistry(db_url=self.pg.url)

    def sessions(self) -> list[SessionRecord]:
        """Every accounting record (open and closed) of the last day."""
        from datetime import datetime, timedelta, timezone

        store = AccountingStore.from_url(self.pg.url)
        try:
            now = datetime.now(timezone.utc)
            return list(store.iter_sessions(now - timedelta(days=1), now + timedelta(days=1)))
        finally:
            store.close()

    def hub_answers(self) -> bool:
        """Whether the hub answers an ordinary request (its API root and the login page)."""
        try:
            api = httpx.get(f"{self.hub.url}/hub/api/", timeout=10)
            page = httpx.get(f"{self.hub.url}/hub/login", timeout=10)
        except httpx.HTTPError:
            return False
        return api.status_code == 200 and page.status_code == 200

    def stop_all(self, usernames: list[str], timeout: float = 120) -> None:
        """Stop the servers of ``usernames`` at once and wait until the hub lists none."""
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(lambda u: self.hub.api("DELETE", f"/users/{u}/server"), usernames))
        deadline = time.monotonic() + timeout
        while True:
            r = self.hub.api("GET", "/users", params={"state": "active", "limit": 2000})
            left = [u["name"] for u in r.json() if u["name"] in usernames]
            if not left:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"servers still active: {left}\n{self.hub.log_tail(30)}")
            time.sleep(0.5)


@contextmanager
def scale_stack(workdir: Path, users: int, *, storage: bool = False) -> Iterator[ScaleStack]:
    """Start PostgreSQL, the IdP with ``users`` generated users, the Kubernetes stand-in (state
    kept across restarts), a stub server, optionally OpenStack, and the hub; stop them after."""
    with ExitStack() as stack:
        pg = PostgresServer("registry")
        stack.callback(pg.remove)
        pg.init()
        pg.start()
        pg.wait_ready()
        pg.create_database("registry")
        stub_port = stack.enter_context(stub_server())
        kube = KubeStandIn(
            workdir / "kube", run_servers=False, pod_ip="127.0.0.1", keep_state=True
        )
        kube.start()
        stack.callback(kube.stop)
        openstack = None
        if storage:
            openstack = stack.enter_context(OpenStackServer(share_ready_polls=2))
            os.environ["OS_APPLICATION_CREDENTIAL_ID"] = APP_CRED_ID
            os.environ["OS_APPLICATION_CREDENTIAL_SECRET"] = APP_CRED_SECRET
        users_file = workdir / "users.json"
        users_file.write_text(json.dumps({"users": make_users(users)}))
        hub_port = free_port()
        idp = IdPProcess(
            REPO_ROOT,
            workdir / "idp",
            clients=default_clients([f"http://127.0.0.1:{hub_port}/hub/oauth_callback"]),
            provider_jwks={"iam": {"keys": [make_rsa_jwk("iam-scale-key")]}},
            users_file=users_file,
        )
        (workdir / "idp").mkdir(parents=True, exist_ok=True)
        idp.start()
        stack.callback(idp.close)
        config = hub_config(stub_port, pg.url, openstack).replace("{issuer}", idp.issuer("iam"))
        hub = HubProcess(workdir / "hub", hub_port, config, env=kube.env)
        hub.start(timeout=120)
        stack.callback(hub.stop)  # before the stand-in and the database (LIFO)
        yield ScaleStack(workdir, idp, hub, kube, pg, openstack, users)
        for key in ("OS_APPLICATION_CREDENTIAL_ID", "OS_APPLICATION_CREDENTIAL_SECRET"):
            os.environ.pop(key, None)


# --------------------------------------------------------------------------------------
# drivers
# --------------------------------------------------------------------------------------


@dataclass
class Outcome:
    """One request of a burst: who, whether it worked, how long it took, what came back."""

    who: str
    ok: bool
    seconds: float
    status: int = 0
    text: str = ""
    started: float = 0.0


def _login_once(hub_url: str, i: int) -> Outcome:
    login = login_of(i)
    t0 = time.monotonic()
    try:
        with httpx.Client(timeout=60) as client:
            attempt = hub_login(hub_url, login, f"{login}-pass", client=client)
            status, text = attempt.status, attempt.text
    except (httpx.HTTPError, AssertionError) as exc:  # the client could not reach a service
        status, text = 0, f"{type(exc).__name__}: {exc}"
    return Outcome(username_of(i), status == 302, time.monotonic() - t0, status, text, started=t0)


def login_burst(
    hub_url: str,
    indices: list[int],
    concurrency: int | None = None,
    done: list[Outcome] | None = None,
) -> list[Outcome]:
    """Log in as every user of ``indices`` at once (``concurrency`` threads; default all);
    each outcome is also appended to ``done`` as it comes (to act in the middle of a burst)."""

    def one(i: int) -> Outcome:
        outcome = _login_once(hub_url, i)
        if done is not None:
            done.append(outcome)
        return outcome

    with ThreadPoolExecutor(concurrency or len(indices)) as pool:
        return list(pool.map(one, indices))


def _spawn_once(stack: ScaleStack, username: str, timeout: float) -> Outcome:
    """POST the server, then follow its progress stream until ready or failed."""
    headers = {"Authorization": f"token {stack.token(username)}"}
    base = f"{stack.hub.url}/hub/api/users/{username}/server"
    t0 = time.monotonic()
    try:
        r = httpx.post(base, headers=headers, json={}, timeout=timeout)
        if r.status_code not in (201, 202):
            return Outcome(username, False, time.monotonic() - t0, r.status_code, r.text, t0)
        if r.status_code == 201:
            return Outcome(username, True, time.monotonic() - t0, 201, "", t0)
        last: dict[str, Any] = {}
        with httpx.stream("GET", f"{base}/progress", headers=headers, timeout=timeout) as progress:
            for line in progress.iter_lines():
                if line.startswith("data:"):
                    last = json.loads(line[5:])
                    if last.get("ready") or last.get("failed"):
                        break
        ok = bool(last.get("ready"))
        return Outcome(username, ok, time.monotonic() - t0, 202, json.dumps(last), t0)
    except httpx.HTTPError as exc:
        return Outcome(username, False, time.monotonic() - t0, 0, repr(exc), t0)


def spawn_burst(stack: ScaleStack, usernames: list[str], timeout: float = 180) -> list[Outcome]:
    """Start the default server of every user at once; each outcome ends ready or failed."""
    for name in usernames:  # tokens first: their creation is not what is measured
        stack.token(name)
    with ThreadPoolExecutor(len(usernames) or 1) as pool:
        outcomes = list(pool.map(lambda u: _spawn_once(stack, u, timeout), usernames))
    for outcome in outcomes:
        if outcome.ok:
            stack.started[outcome.who] = stack.started.get(outcome.who, 0) + 1
    return outcomes


def wait_until(predicate: Callable[[], Any], what: str, timeout: float = 60) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.25)


def settled(check: Callable[[], Any], timeout: float = 60) -> Any:
    """``check()``'s result once it stops failing its assertions (accounting writes are
    queued off the hub's event loop, so a record may land a moment after the spawn answered);
    its last AssertionError after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return check()
        except AssertionError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def check_identities(stack: ScaleStack, usernames: list[str]) -> dict[str, tuple[int, int]]:
    """uid/gid of each user from the hub's auth_state, checked against the registry: unique,
    the registry's integrity check clean. Returns ``{username: (uid, gid)}``."""
    ids = {}
    for name in usernames:
        posix = stack.posix(name)
        ids[name] = (int(posix["uid"]), int(posix["gid"]))
    registry = stack.registry()
    try:
        accounts = list(registry.iter_accounts())
        problems = registry.check()
    finally:
        registry.close()
    assert problems == [], problems
    assert len({a.uid for a in accounts}) == len(accounts), "duplicate uid in the registry"
    assert len({a.gid for a in accounts}) == len(accounts), "duplicate gid in the registry"
    by_name = {a.username: (a.uid, a.gid) for a in accounts}
    for name, pair in ids.items():
        assert by_name.get(name) == pair, (
            f"{name}: auth_state {pair}, registry {by_name.get(name)}"
        )
    assert len(set(ids.values())) == len(ids), "two users share a uid/gid"
    return ids


def check_sessions(stack: ScaleStack, usernames: list[str]) -> dict[str, list[SessionRecord]]:
    """Every start the hub reported (:attr:`ScaleStack.started`) has exactly one accounting
    record: as many records per user as successful starts, no record id twice, at most one
    open record per user and that one for the user's live pod. Returns the records by user."""
    live = {
        (p["metadata"].get("annotations") or {}).get("hub.jupyter.org/username"): p
        for p in stack.kube.list_pods("jhub")
    }
    sessions: dict[str, list[SessionRecord]] = {}
    for record in stack.sessions():
        if record.hub_user in usernames:
            sessions.setdefault(record.hub_user, []).append(record)
    for user in usernames:
        records = sessions.get(user, [])
        assert len(records) == stack.started.get(user, 0), (
            f"{user}: {stack.started.get(user, 0)} starts, records {records}"
        )
        opened = [r for r in records if r.end is None]
        assert len(opened) <= 1, f"{user}: open records {opened}"
        if opened and user in live:
            assert opened[0].pod == live[user]["metadata"]["name"], (user, opened[0])
    ids = [r.record_id for rs in sessions.values() for r in rs]
    assert len(ids) == len(set(ids))
    return sessions


def pod_creations(stack: ScaleStack, usernames: list[str]) -> int:
    """How many pod creations the stand-in answered 201 for ``usernames`` (KubeSpawner creates
    a pod again after deleting one it found: a create that timed out on its side)."""
    return sum(
        1
        for r in stack.kube.created("Pod")
        if r.status in (200, 201)
        and (r.manifest["metadata"].get("annotations") or {}).get("hub.jupyter.org/username")
        in usernames
    )
