"""Storage benchmarks (issue 6): spawn latency added by Manila storage.

One real hub (IRISSpawner + ManilaStorage) against the Kubernetes stand-in (fake kubelet,
``run_servers=False``: every pod is answered by one stub HTTP server) and the fake
OpenStack server (Keystone + Manila over HTTP, in this process). Spawns of one user,
interleaved, three ways:

``none``
    the profile ``scratch`` (``storage: false``): no storage, the baseline;
``existing``
    the profile ``standard`` with the user's share, rule, Secret, PV and PVC already in
    place: what every spawn after the first costs (find share, list rules, export
    locations, three create-409-read-compare round trips);
``first``
    the same, after the share and its objects were removed behind the hub's back (by the
    benchmark, through the servers' test interfaces): create share, wait until available,
    grant access, wait until active, create Secret, PV and PVC.

The fake Manila settles a share after 2 status reads and a rule after one read per state;
``ManilaStorage.poll_interval`` is 0.1 s, so a first spawn waits for a few polls, which is
what dominates it (a real Manila takes seconds to create a CephFS share).

Everything is printed; nothing is asserted.
"""

from __future__ import annotations

import contextlib
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.login import pct
from benchmarks.results import record
from benchmarks.spawner_hub import SpawnClient, logged_in
from devstack.stub_server import stub_server

POLL = 0.01
POLL_INTERVAL = 0.1
NAMESPACE = "jhub"

Out = Callable[[str], None]


@dataclass(frozen=True)
class Sizes:
    """Spawns per kind ([1]) and prepare() calls per kind ([2])."""

    warmup: int = 1
    spawns: int = 15
    prepares: int = 30


FULL = Sizes()
SMOKE = Sizes(warmup=1, spawns=2, prepares=3)

PROFILES = [
    {"display_name": "Standard", "slug": "standard", "default": True},
    {"display_name": "Scratch", "slug": "scratch", "storage": False},
]
OPTIONS = {
    "none": {"profile": "scratch"},
    "existing": {"profile": "standard"},
    "first": {"profile": "standard"},
}


def _hub_config(port: int, auth_url: str) -> str:
    from devstack.openstack import APP_CRED_ID, APP_CRED_SECRET

    return f"""
c.JupyterHub.spawner_class = "iris"
c.IRISSpawner.namespace = "{NAMESPACE}"
c.IRISSpawner.image = "quay.io/jupyter/base-notebook:latest"
c.IRISSpawner.cmd = ["jupyterhub-singleuser"]
c.IRISSpawner.args = []
c.IRISSpawner.port = {port}
c.IRISSpawner.profile_list = {PROFILES!r}
c.ManilaStorage.enabled = True
c.ManilaStorage.auth_url = "{auth_url}"
c.ManilaStorage.application_credential_id = "{APP_CRED_ID}"
c.ManilaStorage.application_credential_secret = "{APP_CRED_SECRET}"
c.ManilaStorage.region_name = "RegionOne"
c.ManilaStorage.poll_interval = {POLL_INTERVAL}
"""


def cycle(client: SpawnClient, options: dict[str, Any], timeout: float = 60) -> float:
    """POST the server with ``options``, wait until ready; stop it. Seconds to ready."""
    return client.cycle(timeout, options)[0]


def forget_storage(openstack: Any, kube: Any) -> None:
    """Remove every share, rule and storage object, as if the user had never spawned."""
    with openstack.lock:
        openstack.manila.shares.clear()
        openstack.manila.rules.clear()
    for plural, namespace in (
        ("persistentvolumeclaims", NAMESPACE),
        ("secrets", NAMESPACE),
        ("persistentvolumes", None),
    ):
        for obj in kube.list_objects(plural, namespace):
            name = obj["metadata"]["name"]
            if name.startswith("iris-"):
                prefix = f"/api/v1/namespaces/{namespace}" if namespace else "/api/v1"
                kube.api("DELETE", f"{prefix}/{plural}/{name}").raise_for_status()


def bench_spawn(workdir: Path, sizes: Sizes, out: Out) -> None:
    from devstack.kube import KubeStandIn
    from devstack.openstack import OpenStackServer
    from devstack.stacks import start_kube_stack

    t0 = time.perf_counter()
    kube = KubeStandIn(workdir / "kube", run_servers=False, pod_ip="127.0.0.1")
    openstack = OpenStackServer()
    with stub_server() as port, kube, openstack:
        ks = start_kube_stack(workdir / "hub", kube, _hub_config(port, openstack.auth_url))
        client = None
        try:
            client = logged_in(ks, "bob", "bbuilder")
            up = time.perf_counter() - t0
            for _ in range(sizes.warmup):
                for options in OPTIONS.values():
                    cycle(client, options)
            times: dict[str, list[float]] = {name: [] for name in OPTIONS}
            requests: dict[str, list[int]] = {name: [] for name in OPTIONS}
            for i in range(sizes.spawns):
                names = list(OPTIONS) if i % 2 == 0 else list(OPTIONS)[::-1]
                for name in names:
                    if name == "first":
                        forget_storage(openstack, kube)
                    before = len(openstack.requests)
                    times[name].append(cycle(client, OPTIONS[name]))
                    requests[name].append(len(openstack.requests) - before)
            shares = len(openstack.manila.shares)
            invalid = kube.validation_errors()
            destructive = openstack.destructive_requests
        except BaseException:
            out(f"--- hub ---\n{ks.hub.log_tail(30)}")
            raise
        finally:
            if client is not None:
                client.close()
            with contextlib.suppress(Exception):
                ks.hub.stop()
            with contextlib.suppress(Exception):
                ks.stack.idp.stop()

    out(
        f"[1] Spawn latency with Manila storage: one hub, fake OpenStack (in-process HTTP) and "
        f"the Kubernetes stand-in; {sizes.warmup} warm-up + {sizes.spawns} interleaved spawns "
        f"each (stack up in {up:.1f}s)"
    )
    out(
        f"    ready = POST server .. model ready (polled every {POLL * 1e3:.0f} ms); "
        f"ManilaStorage.poll_interval {POLL_INTERVAL:g} s; fake Manila: share available after "
        "2 reads, rule active after 2"
    )
    out(f"    {'spawn':<10}{'n':>4}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}{'OpenStack req':>15}")
    for name, t in times.items():
        out(
            f"    {name:<10}{len(t):>4}{statistics.median(t) * 1e3:>9.1f}{pct(t, 99) * 1e3:>9.1f}"
            f"{max(t) * 1e3:>9.1f}{statistics.median(requests[name]):>15.0f}"
        )
    base = times["none"]
    for name in ("existing", "first"):
        t = times[name]
        record(
            "storage",
            f"spawn with Manila storage ({name} share), p50",
            statistics.median(t) * 1e3,
            "ms",
            baseline=statistics.median(base) * 1e3,
            baseline_name="no storage",
        )
        out(
            f"    {name} vs none: p50 {statistics.median(t) / statistics.median(base):.2f}x "
            f"({(statistics.median(t) - statistics.median(base)) * 1e3:+.1f} ms), "
            f"p99 {pct(t, 99) / pct(base, 99):.2f}x "
            f"({(pct(t, 99) - pct(base, 99)) * 1e3:+.1f} ms)"
        )
    out(
        f"    shares at the end: {shares}; schema errors in created objects: {len(invalid)}; "
        f"DELETE/deny_access requests from the hub: {destructive}"
    )


async def _prepare_times(openstack: Any, kube: Any, sizes: Sizes) -> dict[str, list[float]]:
    import logging

    from kubernetes_asyncio.client import ApiClient, Configuration, CoreV1Api
    from traitlets.config import Config

    from devstack.openstack import APP_CRED_ID, APP_CRED_SECRET
    from iris_jupyterhub.storage import ManilaStorage, StorageOwner, StorageService

    config = Config()
    config.ManilaStorage.update(
        enabled=True,
        auth_url=openstack.auth_url,
        application_credential_id=APP_CRED_ID,
        application_credential_secret=APP_CRED_SECRET,
        region_name="RegionOne",
        poll_interval=POLL_INTERVAL,
    )
    quiet = logging.getLogger("bench-storage")
    quiet.setLevel(logging.WARNING)
    service = StorageService(ManilaStorage(config=config), quiet)
    owner = StorageOwner("https://idp.example/", "sub-1", "ada", 2000001, 2000001)
    times: dict[str, list[float]] = {"existing": [], "first": []}
    async with ApiClient(Configuration(host=kube.url)) as client:
        api = CoreV1Api(client)
        for i in range(sizes.warmup + sizes.prepares):
            for name in ("first", "existing"):
                if name == "first":
                    forget_storage(openstack, kube)
                start = time.perf_counter()
                await service.prepare(owner, api=api, namespace=NAMESPACE)
                if i >= sizes.warmup:
                    times[name].append(time.perf_counter() - start)
    await service.aclose()
    return times


def bench_prepare(workdir: Path, sizes: Sizes, out: Out) -> None:
    import asyncio

    from devstack.kube import KubeStandIn
    from devstack.openstack import OpenStackServer

    with KubeStandIn(workdir / "kube", kubelet=False) as kube, OpenStackServer() as openstack:
        times = asyncio.run(_prepare_times(openstack, kube, sizes))
    out(
        f"[2] StorageService.prepare() in-process (no hub), same fake servers; {sizes.warmup} "
        f"warm-up + {sizes.prepares} each"
    )
    out(f"    {'prepare':<10}{'n':>4}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}")
    for name, t in times.items():
        out(
            f"    {name:<10}{len(t):>4}{statistics.median(t) * 1e3:>9.1f}{pct(t, 99) * 1e3:>9.1f}"
            f"{max(t) * 1e3:>9.1f}"
        )
        record(
            "storage", f"StorageService.prepare() {name}, p50", statistics.median(t) * 1e3, "ms"
        )


def run(out: Out = print, smoke: bool = False) -> None:
    """Run the storage benchmarks and print the report; raise if one cannot run.

    ``smoke``: the :data:`SMOKE` sizes (every path, figures not meaningful)."""
    sizes = SMOKE if smoke else FULL
    out("iris-jupyterhub storage benchmarks (issue 6)")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="iris-bench-storage-") as tmp:
        bench_spawn(Path(tmp), sizes, out)
        out(f"    section time {time.perf_counter() - t0:.1f}s")
        t1 = time.perf_counter()
        bench_prepare(Path(tmp), sizes, out)
    out(f"    section time {time.perf_counter() - t1:.1f}s")


if __name__ == "__main__":
    run()
