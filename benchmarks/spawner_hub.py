"""Spawner benchmark [3]: spawn latency through a real hub against the Kubernetes stand-in,
and the hub-side machinery the accounting and storage benchmarks reuse.

One ``iris`` hub and one ``KubeSpawner`` hub, spawns interleaved (POST server -> ready,
DELETE -> gone). The fake kubelet does not start servers (``run_servers=False``); every pod
answers through one stub HTTP server on a fixed address, so the figure is the hub + spawner
+ API path.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import re
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx

from benchmarks.login import pct
from benchmarks.results import record
from benchmarks.spawner_manifest import Out, _plain_standard
from devstack.stub_server import stub_server

POLL = 0.01


class SpawnClient:
    """A user's API token and a pooled client; polls the hub every ``POLL`` seconds."""

    def __init__(self, ks: Any, username: str) -> None:
        self.username = username
        self.url = f"{ks.hub.url}/hub/api/users/{username}"
        self.client = httpx.Client(
            headers={"Authorization": f"token {ks.token(username)}"}, timeout=30
        )

    def model(self) -> dict[str, Any] | None:
        r = self.client.get(self.url)
        r.raise_for_status()
        server: dict[str, Any] | None = r.json().get("servers", {}).get("")
        return server

    def cycle(
        self, timeout: float = 60, options: dict[str, Any] | None = None
    ) -> tuple[float, float]:
        """POST the server (with ``options``), wait until ready; DELETE it, wait until
        gone: both in seconds."""
        start = time.perf_counter()
        r = self.client.post(f"{self.url}/server", json=options or {})
        if r.status_code not in (201, 202):
            raise RuntimeError(f"spawn of {self.username}: HTTP {r.status_code} {r.text[:300]}")
        deadline = time.monotonic() + timeout
        while True:
            model = self.model()
            if model and model.get("ready"):
                break
            if model is None or not model.get("pending") or time.monotonic() > deadline:
                raise RuntimeError(f"server of {self.username} not starting: {model}")
            time.sleep(POLL)
        spawned = time.perf_counter()
        r = self.client.delete(f"{self.url}/server")
        if r.status_code not in (202, 204):
            raise RuntimeError(f"stop of {self.username}: HTTP {r.status_code} {r.text[:200]}")
        while self.model() is not None:
            if time.monotonic() > deadline:
                raise RuntimeError(f"server of {self.username} did not stop")
            time.sleep(POLL)
        return spawned - start, time.perf_counter() - spawned

    def close(self) -> None:
        self.client.close()


def interleaved_cycles(
    clients: dict[str, SpawnClient], warmup: int, cycles: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Warm each client up, then spawn/stop them in turn (order reversed every other
    round, so neither hub always goes first): spawn and stop seconds per client."""
    for client in clients.values():
        for _ in range(warmup):
            client.cycle()
    spawn: dict[str, list[float]] = {name: [] for name in clients}
    stop: dict[str, list[float]] = {name: [] for name in clients}
    for i in range(cycles):
        for name in clients if i % 2 == 0 else list(clients)[::-1]:
            started, stopped = clients[name].cycle()
            spawn[name].append(started)
            stop[name].append(stopped)
    return spawn, stop


def logged_in(ks: Any, login: str, username: str) -> SpawnClient:
    """Log ``login`` in at the hub (so it has an auth_state) and return its spawn client."""
    attempt = ks.login(login)
    if attempt.status != 302:
        raise RuntimeError(f"login of {login} at {ks.hub.url} failed: HTTP {attempt.status}")
    return SpawnClient(ks, username)


def _hub_configs(port: int) -> dict[str, str]:
    from devstack.configs import IRIS_SPAWNER_CONFIG, IRIS_SPAWNER_PROFILES

    image = IRIS_SPAWNER_PROFILES[0]["profile_options"]["image"]
    plain = [_plain_standard({"image": {"display_name": "Image", "choices": image["choices"]}})]
    stub = f"c.KubeSpawner.port = {port}\n"
    return {
        "IRISSpawner": IRIS_SPAWNER_CONFIG + stub,
        "KubeSpawner": (
            f"c.KubeSpawner.profile_list = {plain!r}\n"
            'c.KubeSpawner.pod_name_template = "vanilla-{username}--{servername}"\n' + stub
        ),
    }


def _stop_stack(ks: Any) -> None:
    with contextlib.suppress(Exception):
        ks.hub.stop()  # the hub (and its reflectors) before the stand-in
    with contextlib.suppress(Exception):
        ks.stack.idp.stop()


@contextlib.contextmanager
def stacks_cleanup(
    stacks: dict[str, Any], clients: dict[str, Any], out: Out, kube: Any = None
) -> Iterator[None]:
    """Around a hub benchmark: on failure print each hub's (and the stand-in's) log tail;
    always close the clients and stop the hubs (before the stand-in goes)."""
    try:
        yield
    except BaseException:
        for name, ks in stacks.items():
            out(f"--- hub {name} ---\n{ks.hub.log_tail(20)}")
        if kube is not None:
            out(f"--- kube stand-in ---\n{kube.log_tail(20)}")
        raise
    finally:
        for client in clients.values():
            client.close()
        for ks in stacks.values():
            _stop_stack(ks)


def start_kube_stacks(workdir: Path, configs: dict[str, str], kube: Any) -> dict[str, Any]:
    """An IdP + hub per config (after ``IAM_HUB_CONFIG + KUBE_HUB_CONFIG``) against ``kube``,
    started in parallel; all or none."""
    from devstack.stacks import start_kube_stack

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(configs)) as pool:
        futures = {
            name: pool.submit(start_kube_stack, workdir / name.lower(), kube, config)
            for name, config in configs.items()
        }
        concurrent.futures.wait(futures.values())
    started = {n: f.result() for n, f in futures.items() if not f.exception()}
    errors = [e for f in futures.values() if (e := f.exception()) is not None]
    if errors:
        for ks in started.values():
            _stop_stack(ks)
        raise errors[0]
    return started


_TOOK_RE = re.compile(r"User \S+ took ([0-9.]+) seconds to start")


def _hub_spawn_seconds(log: str) -> list[float]:
    """The hub's own "User x took N seconds to start" figures, in order."""
    return [float(m.group(1)) for m in _TOOK_RE.finditer(log)]


def _median_ms(values: list[float]) -> str:
    return f"{statistics.median(values) * 1e3:.1f}" if values else "-"


def bench_spawn(workdir: Path, warmup: int, spawns: int, out: Out) -> None:
    from devstack.kube import KubeStandIn

    t0 = time.perf_counter()
    stacks: dict[str, Any] = {}
    clients: dict[str, SpawnClient] = {}
    kube = KubeStandIn(workdir / "kube", run_servers=False, pod_ip="127.0.0.1")
    with stub_server() as port, kube, stacks_cleanup(stacks, clients, out, kube):
        stacks.update(start_kube_stacks(workdir, _hub_configs(port), kube))
        clients.update({name: logged_in(ks, "ada", "aresearcher") for name, ks in stacks.items()})
        up = time.perf_counter() - t0
        spawn, stop = interleaved_cycles(clients, warmup, spawns)
        manifests = {
            name: [r.manifest for r in kube.created("Pod")
                   if r.manifest["metadata"]["name"].startswith(prefix)]
            for name, prefix in (("IRISSpawner", "jupyter-"), ("KubeSpawner", "vanilla-"))
        }  # fmt: skip
        invalid = kube.validation_errors()
        hub_took = {
            name: _hub_spawn_seconds(ks.hub.log_text())[-spawns:] for name, ks in stacks.items()
        }

    out(
        f"[3] Spawn latency through the hub, Kubernetes stand-in (fake kubelet, "
        f"run_servers=False, every pod answered by one stub HTTP server); {warmup} warm-up "
        f"+ {spawns} interleaved sequential spawns per hub (stack up in {up:.1f}s)"
    )
    out(
        "    default profile, user aresearcher; ready = POST server .. model ready (polled every "
        f"{POLL * 1e3:.0f} ms); stop = DELETE .. gone; hub log = 'took N seconds to start'"
    )
    out(
        f"    {'hub':<13}{'n':>4}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'stop p50':>10}"
        f"{'stop p99':>10}{'hub log p50':>13}{'pods':>6}"
    )
    for name, s in spawn.items():
        d = stop[name]
        out(
            f"    {name:<13}{len(s):>4}{statistics.median(s) * 1e3:>9.1f}{pct(s, 99) * 1e3:>9.1f}"
            f"{max(s) * 1e3:>9.1f}{statistics.median(d) * 1e3:>10.1f}{pct(d, 99) * 1e3:>10.1f}"
            f"{_median_ms(hub_took[name]):>13}{len(manifests[name]):>6}"
        )
    iris, plain = spawn["IRISSpawner"], spawn["KubeSpawner"]
    out(
        f"    ratio IRIS/vanilla: p50 {statistics.median(iris) / statistics.median(plain):.2f}x "
        f"({(statistics.median(iris) - statistics.median(plain)) * 1e3:+.1f} ms), "
        f"p99 {pct(iris, 99) / pct(plain, 99):.2f}x"
    )
    for label, fn in (("p50", statistics.median), ("p99", lambda v: pct(v, 99))):
        record(
            "spawner",
            f"spawn through the hub (stand-in), {label}",
            fn(iris) * 1e3,
            "ms",
            baseline=fn(plain) * 1e3,
            baseline_name="KubeSpawner",
        )
    last = manifests["IRISSpawner"][-1]["spec"] if manifests["IRISSpawner"] else {}
    out(
        f"    IRIS pods runAsUser {last.get('securityContext', {}).get('runAsUser')}; "
        f"schema errors in created objects: {len(invalid)}"
    )
