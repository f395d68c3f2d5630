"""Scale benchmark (issue 15): one hub holding up to 1,000 running servers, IRISSpawner
against plain KubeSpawner in the same run.

``IRIS_SCALE=full python -m benchmarks.scale`` (``make bench-scale``); ``IRIS_SCALE=smoke``
(the default) runs every path at 100 servers. Two real hubs (IdP, JupyterHub,
configurable-http-proxy) share one Kubernetes stand-in whose fake kubelet runs no servers:
every pod's address is one stub HTTP server (:mod:`devstack.scale`). Both hubs are filled to
each checkpoint (0, 500, 1,000 running servers) at the same time; then a probe user (logged
in through the IdP) spawns and stops its server ``samples`` times on each hub, interleaved:
spawn = POST .. model ready (polled every 10 ms), stop = DELETE .. gone. At each checkpoint:
the hub's and the proxy's memory and file descriptors, the proxy's routes, the running
servers the REST API and ``/hub/metrics`` report, and the time ``/hub/metrics`` takes; at
the largest, one full run of the accounting reconciler (every open record, every pod).

Prints a table with the IRIS/KubeSpawner ratios and writes it as JSON to
``benchmarks/results/scale-<date>.json``. Figures from a shared, loaded machine are noisy;
the ratios (same run, interleaved) are what to compare. Nothing is asserted here; the
correctness checks are ``tests/scale``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import httpx

from devstack.configs import KUBE_NAMESPACE
from devstack.scale import ScaleHub, ScaleSize, process_fds, process_rss, scale_size, standin

RESULTS_DIR = Path(__file__).resolve().parent / "results"
HUBS = {"IRISSpawner": "iris", "KubeSpawner": "kube"}


def pct(values: list[float], q: float) -> float:
    """The ``q``-th percentile (nearest rank) of ``values`` (NaN when there are none)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    index = max(0, min(len(ordered) - 1, round(q / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _parallel(hubs: dict[str, ScaleHub], call: Any) -> dict[str, Any]:
    with concurrent.futures.ThreadPoolExecutor(max_workers=len(hubs)) as pool:
        futures = {name: pool.submit(call, name, hub) for name, hub in hubs.items()}
        return {name: f.result() for name, f in futures.items()}


def _observe(hub: ScaleHub) -> dict[str, Any]:
    took, samples = hub.metrics()
    proxy = hub.proxy_pid()
    return {
        "hub_rss_mib": process_rss(hub.hub_pid) / 2**20,
        "hub_fds": process_fds(hub.hub_pid),
        "proxy_rss_mib": process_rss(proxy) / 2**20 if proxy else None,
        "routes": len(hub.user_routes()),
        "running_api": len(hub.running()),
        "running_metric": samples.get("jupyterhub_running_servers"),
        "sessions_metric": samples.get("iris_sessions_active"),
        "metrics_ms": took * 1e3,
        "fill_retries": list(hub.retries),
    }


def reconcile_seconds(hub: ScaleHub, kube_url: str) -> tuple[float, Any]:
    """One full reconciler run over the IRIS hub's accounting records (none skipped)."""
    from iris_jupyterhub.accounting.reconcile import reconcile_once
    from iris_jupyterhub.accounting.writer import AccountingWriter

    writer = AccountingWriter(f"sqlite:///{hub.ks.hub.workdir / 'iris-identities.sqlite'}")

    async def run() -> tuple[float, Any]:
        async with httpx.AsyncClient(timeout=60) as client:

            async def list_pods(namespace: str) -> list[dict[str, Any]]:
                r = await client.get(
                    f"{kube_url}/api/v1/namespaces/{namespace}/pods",
                    params={"labelSelector": "component=singleuser-server"},
                )
                r.raise_for_status()
                items: list[dict[str, Any]] = r.json()["items"]
                return items

            start = time.perf_counter()
            report = await reconcile_once(writer, list_pods, lambda: datetime.now(timezone.utc))
            return time.perf_counter() - start, report

    try:
        return asyncio.run(run())
    finally:
        writer.store().close()


def bench(workdir: Path, size: ScaleSize, out: Any = print) -> dict[str, Any]:
    t0 = time.perf_counter()
    result: dict[str, Any] = {"size": size.name, "checkpoints": {}}
    with standin(workdir) as (kube, port):
        hubs: dict[str, ScaleHub] = {}
        try:
            hubs.update(
                _parallel(
                    dict.fromkeys(HUBS, None),  # type: ignore[arg-type]
                    lambda name, _: ScaleHub.start(workdir / HUBS[name], kube, port, HUBS[name]),
                )
            )
            fillers = [f"s{i:04d}" for i in range(size.servers)]

            def users(_: str, hub: ScaleHub) -> None:
                hub.add_users(["probe"])
                # KubeSpawner reads no auth_state: its fillers are created without one
                hub.add_users_like(
                    "probe", fillers, uid_base=4_000_000, auth_state=hub.spawner == "iris"
                )

            _parallel(hubs, users)
            out(f"  hubs up, users made: {time.perf_counter() - t0:.0f}s")
            filled = 0
            for checkpoint in size.checkpoints:
                todo = fillers[filled:checkpoint]
                t1 = time.perf_counter()
                fill = _parallel(
                    hubs, lambda _, hub, todo=todo: hub.spawn_all(todo, workers=size.workers * 2)
                )
                filled = checkpoint
                out(f"  filled to {checkpoint}: {time.perf_counter() - t1:.0f}s")
                spawn: dict[str, list[float]] = {name: [] for name in hubs}
                stop: dict[str, list[float]] = {name: [] for name in hubs}
                failed: dict[str, list[str]] = {name: [] for name in hubs}
                for i in range(size.samples):
                    for name in hubs if i % 2 == 0 else list(hubs)[::-1]:
                        try:
                            spawned = hubs[name].spawn("probe")
                            stop[name].append(hubs[name].stop_server("probe"))
                            spawn[name].append(spawned)
                        except (RuntimeError, httpx.HTTPError) as error:
                            failed[name].append(str(error)[:300])
                            with contextlib.suppress(RuntimeError, httpx.HTTPError):
                                hubs[name].stop_server("probe", poll=1.0)
                point: dict[str, Any] = {}
                for name, hub in hubs.items():
                    point[name] = {
                        "spawn_ms": [s * 1e3 for s in spawn[name]],
                        "stop_ms": [s * 1e3 for s in stop[name]],
                        "fill_spawn_p50_ms": statistics.median(fill[name]) * 1e3 if todo else None,
                        "probe_failures": failed[name],
                        **_observe(hub),
                    }
                result["checkpoints"][checkpoint] = point
                out(f"  measured at {checkpoint}: {time.perf_counter() - t0:.0f}s")
            try:
                took, report = reconcile_seconds(hubs["IRISSpawner"], kube.url)
                result["reconcile"] = {
                    "seconds": took,
                    "heartbeats": report.heartbeats,
                    "closed": len(report.closed),
                    "kept": report.kept,
                }
            except Exception as error:  # the figures so far are still worth printing
                result["reconcile_error"] = f"{type(error).__name__}: {error}"
                out(f"  reconciler run failed: {result['reconcile_error']}")
            result["namespace"] = KUBE_NAMESPACE
        finally:
            for hub in hubs.values():
                hub.stop()  # servers are left running: the stand-in goes with them
    result["seconds"] = time.perf_counter() - t0
    return result


def table(result: dict[str, Any]) -> str:
    """The result as a text table, IRIS/KubeSpawner ratios beside each size."""
    lines = [
        f"Scale run ({result['size']}), {result['seconds']:.0f}s; spawn/stop ms from "
        "interleaved probe cycles; machine shared and loaded: figures noisy, ratios same-run",
        f"{'running':>8} {'hub':<12}{'spawn p50':>10}{'p99':>8}{'stop p50':>9}{'p99':>8}"
        f"{'hub MiB':>8}{'fds':>6}{'proxy MiB':>10}{'routes':>7}{'api':>6}{'metric':>7}"
        f"{'/metrics ms':>12}",
    ]
    for checkpoint, point in result["checkpoints"].items():
        for name, p in point.items():
            s, d = p["spawn_ms"], p["stop_ms"]
            lines.append(
                f"{checkpoint:>8} {name:<12}{pct(s, 50):>10.0f}{pct(s, 99):>8.0f}"
                f"{pct(d, 50):>9.0f}{pct(d, 99):>8.0f}{p['hub_rss_mib']:>8.0f}"
                f"{p['hub_fds']:>6}{p['proxy_rss_mib'] or 0:>10.0f}{p['routes']:>7}"
                f"{p['running_api']:>6}{p['running_metric'] or 0:>7.0f}{p['metrics_ms']:>12.0f}"
            )
        iris, kube = point["IRISSpawner"]["spawn_ms"], point["KubeSpawner"]["spawn_ms"]
        lines.append(
            f"{checkpoint:>8} ratio IRIS/KubeSpawner spawn p50 "
            f"{pct(iris, 50) / pct(kube, 50):.2f}x, p99 "
            f"{pct(iris, 99) / pct(kube, 99):.2f}x (target <= 1.2x)"
        )
    rec = result.get("reconcile")
    if rec:
        lines.append(
            f"accounting reconciler, one full run at {max(result['checkpoints'])} running: "
            f"{rec['seconds'] * 1e3:.0f} ms ({rec['heartbeats']} heartbeats, "
            f"{rec['closed']} closed)"
        )
    return "\n".join(lines)


def write_json(result: dict[str, Any], directory: Path = RESULTS_DIR) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d-%H%M")
    path = directory / f"scale-{result['size']}-{stamp}.json"
    path.write_text(json.dumps(result, indent=1, default=str) + "\n")
    return path


def main() -> None:
    size = scale_size()
    print(f"iris-jupyterhub scale benchmark (issue 15), IRIS_SCALE={size.name}", flush=True)
    with tempfile.TemporaryDirectory(prefix="iris-bench-scale-") as tmp:
        result = bench(Path(tmp), size, out=lambda line: print(line, flush=True))
    print(table(result))
    print(f"written: {write_json(result)}", file=sys.stderr)


if __name__ == "__main__":
    main()
