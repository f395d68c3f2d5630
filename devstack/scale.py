"""Many servers on one real hub (issue 15): the harness behind ``tests/scale`` and
``benchmarks/scale.py``.

One :class:`~devstack.kube.KubeStandIn` whose fake kubelet runs no servers
(``run_servers=False``) and gives every pod the address of one stub HTTP server
(:func:`~devstack.stub_server.stub_server`, which answers the hub's ``wait_up`` GET of
``/user/<name>/api`` with 200 and the ``X-JupyterHub-Version`` header, all a hub needs from a
single-user server that nobody uses), so a thousand "running" servers cost a pod object each,
not a process. Each :class:`ScaleHub` is a real hub (IdP, JupyterHub, configurable-http-proxy)
against it, for IRISSpawner or plain KubeSpawner; it creates users at the IdP, logs them in
(so IRISSpawner has their ``auth_state``), starts and stops servers through the REST API and
reads what a facility operator would watch: the proxy's routes, ``/hub/metrics``, the hub's
memory and file descriptors.

Sizes come from ``IRIS_SCALE`` (:func:`scale_size`): ``smoke`` (default; small enough for CI)
or ``full`` (1,000 servers).
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import secrets
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .configs import IRIS_SPAWNER_CONFIG, IRIS_SPAWNER_PROFILES
from .idp import free_port
from .kube import KubeStandIn
from .login import hub_login
from .stacks import KubeStack, start_kube_stack
from .stub_server import stub_server

__all__ = [
    "SCALE_GROUP",
    "SIZES",
    "ScaleHub",
    "ScaleSize",
    "process_fds",
    "process_rss",
    "scale_size",
    "scale_user",
    "standin",
]

#: The canonical group every scale server runs as (IRISSpawner), with a quota on it.
SCALE_GROUP = "iris/lsst"


@dataclass(frozen=True)
class ScaleSize:
    """How big a scale run is."""

    name: str
    servers: int  # running servers at the largest checkpoint
    checkpoints: tuple[int, ...]  # running servers at which spawns are measured
    samples: int  # measured spawn/stop cycles per hub per checkpoint
    workers: int = 4  # concurrent logins/spawns while filling up


SIZES = {
    "smoke": ScaleSize("smoke", servers=100, checkpoints=(0, 100), samples=5),
    "full": ScaleSize("full", servers=1000, checkpoints=(0, 500, 1000), samples=20),
}


def scale_size() -> ScaleSize:
    """The size named by ``IRIS_SCALE`` (``smoke`` when unset)."""
    name = os.environ.get("IRIS_SCALE", "smoke") or "smoke"
    if name not in SIZES:
        raise ValueError(f"IRIS_SCALE={name!r}: use one of {', '.join(SIZES)}")
    return SIZES[name]


def scale_user(login: str) -> dict[str, Any]:
    """An IdP user (``users.json`` format) in ``iris`` and ``iris/lsst``; password
    ``<login>-pass``; hub username = ``login``."""
    groups = ["iris", "iris/lsst"]
    return {
        "provider": "iam",
        "login": login,
        "password": f"{login}-pass",
        "sub": str(uuid.uuid5(uuid.NAMESPACE_URL, f"iris-scale:{login}")),
        "id_token": {
            "wlcg.ver": "1.0",
            "wlcg.groups": [f"/{g}" for g in groups],
            "preferred_username": login,
            "name": f"Scale {login}",
        },
        "userinfo": {
            "name": f"Scale {login}",
            "preferred_username": login,
            "email": f"{login}@example.ac.uk",
            "email_verified": True,
            "groups": groups,
            "organisation_name": "iris",
        },
    }


def _like(state: dict[str, Any], login: str, uid: int) -> dict[str, Any]:
    """``state`` (an ``auth_state``) for user ``login`` with POSIX uid/gid ``uid``."""
    copied: dict[str, Any] = json.loads(json.dumps(state))
    posix = copied.get("posix")
    if posix:
        personal = posix.get("username")
        posix.update(uid=uid, gid=uid, username=login)
        posix["groups"] = [
            {**g, "name": login, "gid": uid} if g.get("name") == personal else g
            for g in posix.get("groups") or []
        ]
    return copied


def process_rss(pid: int) -> int:
    """Resident memory of process ``pid`` in bytes (``/proc``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def process_fds(pid: int) -> int:
    """Open file descriptors of process ``pid``."""
    return len(os.listdir(f"/proc/{pid}/fd"))


@contextlib.contextmanager
def standin(workdir: Path) -> Iterator[tuple[KubeStandIn, int]]:
    """The Kubernetes stand-in (no server processes) and the stub server's port."""
    # no schema check of every object: the pods are checked in the other suites, and at a
    # thousand pods (and their events) the checks cost the stand-in more than the hubs' calls
    kube = KubeStandIn(workdir / "kube", run_servers=False, pod_ip="127.0.0.1", validate=False)
    with stub_server() as port:
        kube.start(timeout=180)  # a loaded machine: its schema warm-up alone can take 30 s
        try:
            yield kube, port
        finally:
            kube.stop()


def _kube_config(port: int, prefix: str) -> str:
    """Plain KubeSpawner with the same profile (and image choice) as IRISSpawner's
    default, without group rules: the same pod apart from what IRISSpawner adds."""
    image = IRIS_SPAWNER_PROFILES[0]["profile_options"]["image"]
    plain = [
        {
            "display_name": "Standard",
            "slug": "standard",
            "default": True,
            "profile_options": {"image": {"display_name": "Image", "choices": image["choices"]}},
        }
    ]
    return (
        # its own namespace: the hubs' reflectors each see only their own pods and events
        f'c.KubeSpawner.namespace = "{prefix}"\n'
        f"c.KubeSpawner.profile_list = {plain!r}\n"
        f'c.KubeSpawner.pod_name_template = "{prefix}-{{username}}--{{servername}}"\n'
    )


@dataclass
class ScaleHub:
    """A real hub on the stand-in, spawning with ``spawner`` (``iris`` or ``kube``).

    IRISSpawner servers run as :data:`SCALE_GROUP`, which has a quota high enough never to
    refuse, so every spawn goes through the quota check.
    """

    ks: KubeStack
    spawner: str
    proxy_api: str
    proxy_token: str
    users: list[str] = field(default_factory=list)
    retries: list[str] = field(default_factory=list)
    _clients: dict[str, httpx.Client] = field(default_factory=dict)

    @classmethod
    def start(
        cls,
        workdir: Path,
        kube: KubeStandIn,
        stub_port: int,
        spawner: str,
        *,
        quota: int = 100_000,
        extra_config: str = "",
    ) -> ScaleHub:
        proxy_api = f"http://127.0.0.1:{free_port()}"
        token = secrets.token_hex(16)
        common = (
            f"c.KubeSpawner.port = {stub_port}\n"
            "c.JupyterHub.authenticate_prometheus = False\n"
            "c.JupyterHub.active_server_limit = 0\n"
            f'c.ConfigurableHTTPProxy.api_url = "{proxy_api}"\n'
            f'c.ConfigurableHTTPProxy.auth_token = "{token}"\n'
            "c.KubeSpawner.start_timeout = 300\n"
            "c.KubeSpawner.http_timeout = 120\n"
            # spawns measure the hub + spawner + API path: no token refresh at the IdP
            # before each spawn (the login path is measured on its own)
            "c.IAMAuthenticator.refresh_pre_spawn = False\n"
            # fillers share the probe's tokens: no refresh on requests either
            "c.IAMAuthenticator.auth_refresh_age = 0\n"
            # the stand-in answers slowly under load: KubeSpawner's 3 s per call, retried
            # for 30 s, fails spawns on a loaded machine (not what is measured here)
            "c.KubeSpawner.k8s_api_request_timeout = 20\n"
            "c.KubeSpawner.k8s_api_request_retry_timeout = 240\n"
        )
        if spawner == "iris":
            config = (
                IRIS_SPAWNER_CONFIG
                + common
                # IRIS_SPAWNER_CONFIG's 60 s on IRISSpawner itself wins over KubeSpawner's
                + common.replace("c.KubeSpawner.st", "c.IRISSpawner.st").replace(
                    "c.KubeSpawner.ht", "c.IRISSpawner.ht"
                )
                + f"c.IRISSpawner.group_quotas = {{{SCALE_GROUP!r}: {{'servers': {quota}}}}}\n"
            )
        elif spawner == "kube":
            config = _kube_config(stub_port, "vanilla") + common
        else:
            raise ValueError(f"spawner {spawner!r}: use 'iris' or 'kube'")
        ks = start_kube_stack(workdir, kube, config + extra_config, hub_timeout=300)
        return cls(ks=ks, spawner=spawner, proxy_api=proxy_api, proxy_token=token)

    def stop(self) -> None:
        """Close the clients, stop the hub (servers left to the stand-in) and the IdP."""
        for client in self._clients.values():
            client.close()
        self._clients.clear()
        with contextlib.suppress(Exception):
            self.ks.stop()

    # -- users -----------------------------------------------------------------------------
    @property
    def options(self) -> dict[str, Any]:
        """What every spawn asks for (IRISSpawner: run as :data:`SCALE_GROUP`)."""
        return {"group": "iris-lsst"} if self.spawner == "iris" else {}

    def add_users(self, logins: list[str], workers: int = 4) -> None:
        """Create ``logins`` at the IdP and log each in at the hub (``workers`` at once)."""
        for login in logins:
            self.ks.stack.idp.upsert_user("iam", scale_user(login))

        def one(login: str) -> None:
            with httpx.Client(timeout=60) as client:
                attempt = hub_login(self.ks.hub.url, login, f"{login}-pass", client=client)
                if attempt.status != 302:
                    raise RuntimeError(f"login of {login}: HTTP {attempt.status}")

        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            list(pool.map(one, logins))
        self.users.extend(logins)

    def add_users_like(
        self, template: str, logins: list[str], uid_base: int, *, auth_state: bool = True
    ) -> None:
        """Create ``logins`` through the admin API with the ``auth_state`` a login of
        ``template`` produced, each with its own POSIX uid (``uid_base + i``) and personal
        group: a thousand users without a thousand logins at the IdP (spawns do not
        refresh at the IdP here)."""
        hub = self.ks.hub
        state = hub.api("GET", f"/users/{template}").json()["auth_state"]
        for start in range(0, len(logins), 50):
            batch = logins[start : start + 50]
            r = httpx.post(
                f"{hub.url}/hub/api/users",
                json={"usernames": batch},
                headers={"Authorization": f"token {hub.api_token}"},
                timeout=600,
            )
            if r.status_code != 201:
                raise RuntimeError(f"creating users: HTTP {r.status_code} {r.text[:200]}")

        def patch(item: tuple[int, str]) -> None:
            i, login = item
            r = hub.api(
                "PATCH", f"/users/{login}", json={"auth_state": _like(state, login, uid_base + i)}
            )
            if r.status_code != 200:
                raise RuntimeError(f"auth_state of {login}: HTTP {r.status_code} {r.text[:200]}")

        if auth_state:
            with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(patch, enumerate(logins)))
        self.users.extend(logins)

    def client(self, username: str) -> httpx.Client:
        """A pooled client with ``username``'s API token."""
        if username not in self._clients:
            self._clients[username] = httpx.Client(
                base_url=f"{self.ks.hub.url}/hub/api/users/",
                headers={"Authorization": f"token {self.ks.token(username)}"},
                timeout=60,
            )
        return self._clients[username]

    # -- servers ---------------------------------------------------------------------------
    def model(self, username: str) -> dict[str, Any] | None:
        r = self.client(username).get(username)
        r.raise_for_status()
        server: dict[str, Any] | None = r.json().get("servers", {}).get("")
        return server

    def spawn(self, username: str, poll: float = 0.01, timeout: float = 300) -> float:
        """POST the server and wait until the hub says it is ready: seconds."""
        start = time.perf_counter()
        r = self.client(username).post(f"{username}/server", json=self.options)
        if r.status_code not in (201, 202):
            raise RuntimeError(f"spawn of {username}: HTTP {r.status_code} {r.text[:300]}")
        deadline = time.monotonic() + timeout
        while True:
            model = self.model(username)
            if model and model.get("ready"):
                return time.perf_counter() - start
            if model is None or not model.get("pending") or time.monotonic() > deadline:
                raise RuntimeError(
                    f"server of {username} not starting: {model}\n{self.log_of(username)}"
                )
            time.sleep(poll)

    def stop_server(self, username: str, poll: float = 0.01, timeout: float = 300) -> float:
        """DELETE the server and wait until the hub no longer lists it: seconds."""
        start = time.perf_counter()
        r = self.client(username).delete(f"{username}/server")
        if r.status_code not in (202, 204):
            raise RuntimeError(f"stop of {username}: HTTP {r.status_code} {r.text[:200]}")
        deadline = time.monotonic() + timeout
        while self.model(username) is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"server of {username} did not stop")
            time.sleep(poll)
        return time.perf_counter() - start

    def spawn_all(self, usernames: list[str], workers: int = 16) -> list[float]:
        """Start the servers of ``usernames``, ``workers`` at once; seconds each.

        The POST waits (JupyterHub's ``slow_spawn_timeout``) and the model is polled once a
        second after it, so the polls do not load the hub more than the spawns do."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(self._spawn_retrying, usernames))

    def _spawn_retrying(self, username: str) -> float:
        """A filler spawn; one that fails is stopped and tried again, up to three times
        (each failure is kept in ``retries``)."""
        for attempt in range(3):
            try:
                return self.spawn(username, poll=1.0)
            except (RuntimeError, httpx.HTTPError) as error:
                self.retries.append(f"{username}: {str(error)[:300]}")
                if attempt == 2:
                    raise
                with contextlib.suppress(RuntimeError, httpx.HTTPError):
                    self.stop_server(username, poll=1.0)
        raise AssertionError("unreachable")

    def stop_all(self, usernames: list[str], workers: int = 16) -> list[float]:
        """Stop the servers of ``usernames``, ``workers`` at once; seconds each."""
        with concurrent.futures.ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda u: self.stop_server(u, poll=1.0), usernames))

    def log_of(self, username: str, lines: int = 15) -> str:
        """The hub's last log lines naming ``username`` (errors and warnings first)."""
        mine = [line for line in self.ks.hub.log_text().splitlines() if username in line]
        bad = [line for line in mine if line.startswith(("[E", "[W"))]
        return "\n".join((bad or mine)[-lines:])

    # -- what an operator watches ----------------------------------------------------------
    def running(self) -> list[str]:
        """Names of the users with a ready default server (admin API, paginated)."""
        names: list[str] = []
        offset = 0
        while True:
            r = self.ks.hub.api("GET", f"/users?state=ready&offset={offset}&limit=200")
            r.raise_for_status()
            page = r.json()
            items = page["items"] if isinstance(page, dict) else page
            names += [u["name"] for u in items if "" in (u.get("servers") or {})]
            if len(items) < 200:
                return names
            offset += len(items)

    def routes(self) -> dict[str, Any]:
        """The proxy's routing table (configurable-http-proxy's REST API)."""
        r = httpx.get(
            f"{self.proxy_api}/api/routes",
            headers={"Authorization": f"token {self.proxy_token}"},
            timeout=60,
        )
        r.raise_for_status()
        table: dict[str, Any] = r.json()
        return table

    def user_routes(self) -> set[str]:
        """The users whose ``/user/<name>/`` route the proxy has."""
        return {path.split("/")[2] for path in self.routes() if path.startswith("/user/")}

    def metrics(self) -> tuple[float, dict[str, float]]:
        """``GET /hub/metrics``: seconds taken and every sample (labels summed per name)."""
        start = time.perf_counter()
        r = httpx.get(f"{self.ks.hub.url}/hub/metrics", timeout=60)
        took = time.perf_counter() - start
        r.raise_for_status()
        samples: dict[str, float] = {}
        for line in r.text.splitlines():
            if not line or line.startswith("#"):
                continue
            name_labels, _, value = line.rpartition(" ")
            name = name_labels.split("{", 1)[0]
            with contextlib.suppress(ValueError):
                samples[name] = samples.get(name, 0.0) + float(value)
        return took, samples

    @property
    def hub_pid(self) -> int:
        proc = self.ks.hub.proc
        if proc is None:
            raise RuntimeError("the hub is not running")
        return proc.pid

    def proxy_pid(self) -> int | None:
        path = self.ks.hub.workdir / "proxy.pid"
        return int(path.read_text().strip()) if path.exists() else None
