"""Spawner benchmarks (issue 5): pod-manifest build, form render, spawn latency.

1. Pod-manifest build, in-process (no hub): ``load_user_options()`` + ``get_pod_manifest()``
   on a fresh ``IRISSpawner`` (profile with group rules and the ``resources`` shorthand)
   and a fresh vanilla ``KubeSpawner`` (the equivalent plain z2jh profile, the same
   overrides and the same security settings as static config), interleaved in one run.
2. Form render for a user with 200 groups and a list of 50 profiles:
   ``IRISSpawner._render_iris_form`` against KubeSpawner's ``_render_options_form`` on
   the plain list.
3. Spawn latency through a real hub against the Kubernetes stand-in: one ``iris`` hub and
   one ``KubeSpawner`` hub, spawns interleaved (POST server -> ready, DELETE -> gone). The
   fake kubelet does not start servers (``run_servers=False``); every pod answers through
   one stub HTTP server on a fixed address, so the figure is the hub + spawner + API path.

They live in :mod:`benchmarks.spawner_manifest`, :mod:`benchmarks.spawner_form` and
:mod:`benchmarks.spawner_hub` (which the accounting and storage benchmarks reuse).

Everything is printed; nothing is asserted.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from benchmarks.spawner_form import bench_form
from benchmarks.spawner_hub import bench_spawn
from benchmarks.spawner_manifest import Out, bench_manifest, dummy_kubeconfig


@dataclass(frozen=True)
class Sizes:
    """Rounds of each spawner benchmark (warm-ups are not measured)."""

    manifest_warmup: int = 50
    manifest_rounds: int = 400
    form_warmup: int = 5
    form_runs: int = 60
    spawn_warmup: int = 1
    spawns: int = 20


FULL = Sizes()
SMOKE = Sizes(
    manifest_warmup=4, manifest_rounds=20, form_warmup=1, form_runs=6, spawn_warmup=1, spawns=3
)


def run(out: Out = print, smoke: bool = False) -> None:
    """Run the three spawner benchmarks and print the report; raise if one cannot run.

    ``smoke``: the :data:`SMOKE` sizes (every path, figures not meaningful)."""
    sizes = SMOKE if smoke else FULL
    out("iris-jupyterhub spawner benchmarks (issue 5)")
    t0 = time.perf_counter()
    with dummy_kubeconfig():
        bench_manifest(sizes.manifest_warmup, sizes.manifest_rounds, out)
        out(f"    section time {time.perf_counter() - t0:.1f}s")
        t1 = time.perf_counter()
        bench_form(sizes.form_warmup, sizes.form_runs, out)
        out(f"    section time {time.perf_counter() - t1:.1f}s")
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="iris-bench-spawner-") as tmp:
        bench_spawn(Path(tmp), sizes.spawn_warmup, sizes.spawns, out)
    out(f"    section time {time.perf_counter() - t2:.1f}s")


if __name__ == "__main__":
    run()
