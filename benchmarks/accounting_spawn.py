"""Accounting overhead on spawn and stop (issue 7): the same IRISSpawner hub with and without
``SessionAccounting``, same run, same Kubernetes stand-in.

Two hubs (IRISSpawner, the test profile list, default profile): one with accounting on
(the default: a record opened when the pod runs, closed in the post-stop hook, SQLite
registry database beside the hub), one with ``c.SessionAccounting.enabled = False``.
Spawns are interleaved (POST server -> ready, DELETE -> gone). The fake kubelet does not
start servers: every pod answers through one stub HTTP server, so the figures are the
hub + spawner + API path, where accounting's database writes would show.

Everything is printed; nothing is asserted.
"""

from __future__ import annotations

import re
import statistics
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks.login import pct
from benchmarks.results import record
from benchmarks.spawner_hub import (
    SpawnClient,
    _hub_configs,
    _hub_spawn_seconds,
    interleaved_cycles,
    logged_in,
    stacks_cleanup,
    start_kube_stacks,
)
from devstack.stub_server import stub_server


@dataclass(frozen=True)
class Sizes:
    """Spawn/stop cycles per hub."""

    warmup: int = 2
    spawns: int = 30


FULL = Sizes()
SMOKE = Sizes(warmup=1, spawns=3)
_OPEN_RE = re.compile(r"Accounting: session \S+ of \S+ started .* recorded in ([0-9.]+) ms")
_CLOSE_RE = re.compile(r"Accounting: session \S+ of \S+ ended .* recorded in ([0-9.]+) ms")

Out = Any


def bench(workdir: Path, sizes: Sizes, out: Out) -> None:
    from devstack.kube import KubeStandIn
    from iris_jupyterhub.accounting import AccountingStore

    stacks: dict[str, Any] = {}
    clients: dict[str, SpawnClient] = {}
    kube = KubeStandIn(workdir / "kube", run_servers=False, pod_ip="127.0.0.1")
    with stub_server() as port, kube, stacks_cleanup(stacks, clients, out):
        iris = _hub_configs(port)["IRISSpawner"]
        configs = {
            "accounting": iris,
            "no-accounting": iris + (
                "c.SessionAccounting.enabled = False\n"
                'c.KubeSpawner.pod_name_template = "noacct-{username}--{servername}"\n'
            ),
        }  # fmt: skip
        stacks.update(start_kube_stacks(workdir, configs, kube))
        clients.update({name: logged_in(ks, "ada", "aresearcher") for name, ks in stacks.items()})
        spawn, stop = interleaved_cycles(clients, sizes.warmup, sizes.spawns)
        hub_log = stacks["accounting"].hub.log_text()
        hub_took = {
            name: _hub_spawn_seconds(ks.hub.log_text())[-sizes.spawns :]
            for name, ks in stacks.items()
        }
        db = stacks["accounting"].hub.workdir / "iris-identities.sqlite"
        store = AccountingStore.from_url(f"sqlite:///{db}")
        try:
            records = store.open_sessions()
            now = datetime.now(timezone.utc)
            total = sum(1 for _ in store.iter_sessions(now - timedelta(1), now))
        finally:
            store.close()

    out(
        f"[1] Spawn and stop through the hub with and without session accounting; "
        f"{sizes.warmup} warm-up + {sizes.spawns} interleaved sequential cycles per hub "
        "(stand-in, stub servers)"
    )
    out(
        f"    {'hub':<15}{'n':>4}{'spawn p50':>11}{'p99':>8}{'stop p50':>10}{'p99':>8}"
        f"{'hub log p50':>13}  (ms)"
    )
    for name in clients:
        s, d, h = spawn[name], stop[name], hub_took[name]
        out(
            f"    {name:<15}{len(s):>4}{statistics.median(s) * 1e3:>11.1f}"
            f"{pct(s, 99) * 1e3:>8.1f}{statistics.median(d) * 1e3:>10.1f}{pct(d, 99) * 1e3:>8.1f}"
            f"{(statistics.median(h) * 1e3 if h else float('nan')):>13.1f}"
        )
    on_s, off_s = spawn["accounting"], spawn["no-accounting"]
    on_d, off_d = stop["accounting"], stop["no-accounting"]
    p50 = statistics.median
    out(
        f"    ratio accounting/none: spawn p50 {p50(on_s) / p50(off_s):.2f}x "
        f"({(p50(on_s) - p50(off_s)) * 1e3:+.1f} ms), "
        f"stop p50 {p50(on_d) / p50(off_d):.2f}x ({(p50(on_d) - p50(off_d)) * 1e3:+.1f} ms)"
    )
    for what, on, off in (("spawn", on_s, off_s), ("stop", on_d, off_d)):
        record(
            "accounting",
            f"{what} through the hub with accounting, p50",
            p50(on) * 1e3,
            "ms",
            baseline=p50(off) * 1e3,
            baseline_name="no accounting",
        )
    opened = [float(m) for m in _OPEN_RE.findall(hub_log)][-sizes.spawns :]
    closed = [float(m) for m in _CLOSE_RE.findall(hub_log)][-sizes.spawns :]
    if opened and closed:
        out(
            f"    accounting's own time in the hub (its log), p50/max ms: open "
            f"{p50(opened):.1f}/{max(opened):.1f}, close {p50(closed):.1f}/{max(closed):.1f}"
        )
    out(
        f"    records written by the accounting hub: {total} "
        f"(expected {sizes.warmup + sizes.spawns}), left open: {len(records)}"
    )


def run(out: Out = print, smoke: bool = False) -> None:
    """Run the accounting spawn/stop overhead benchmark and print the report.

    ``smoke``: the :data:`SMOKE` sizes (every path, figures not meaningful)."""
    out("iris-jupyterhub accounting spawn/stop overhead (issue 7)")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="iris-bench-accounting-") as tmp:
        bench(Path(tmp), SMOKE if smoke else FULL, out)
    out(f"    section time {time.perf_counter() - t0:.1f}s")


if __name__ == "__main__":
    run()
