"""Spawner benchmark [1]: the pod manifest built in-process (no hub), and what the other
in-process spawner benchmarks share (profiles, the stand-in user, a dummy kubeconfig).

``load_user_options()`` + ``get_pod_manifest()`` on a fresh ``IRISSpawner`` (profile with
group rules and the ``resources`` shorthand) and a fresh vanilla ``KubeSpawner`` (the
equivalent plain z2jh profile, the same overrides and the same security settings as static
config), interleaved in one run.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import gc
import json
import os
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from benchmarks.login import pct
from benchmarks.results import record

MANIFEST_TARGET = 1.2

Out = Callable[[str], None]

NAMESPACE = "jhub"
BASE_IMAGE = "quay.io/jupyter/base-notebook:latest"
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _image(name: str) -> dict[str, Any]:
    return {"image": f"quay.io/jupyter/{name}-notebook:latest"}


def _plain_standard(profile_options: dict[str, Any]) -> dict[str, Any]:
    """The "Standard" profile for vanilla KubeSpawner: the 1 CPU / 2G shorthand written out."""
    return {
        "display_name": "Standard",
        "slug": "standard",
        "default": True,
        "kubespawner_override": {
            "cpu_limit": 1.0,
            "cpu_guarantee": 1.0,
            "mem_limit": "2G",
            "mem_guarantee": "2G",
        },
        "profile_options": copy.deepcopy(profile_options),
    }


#: [1] What the IRIS admin writes: group rules, the resources shorthand, an image option.
IRIS_PROFILES: list[dict[str, Any]] = [
    {
        "display_name": "Standard",
        "slug": "standard",
        "default": True,
        "resources": {"cpu": 1, "memory": "2G"},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {"display_name": "Base", "kubespawner_override": _image("base")},
                    "scipy": {"display_name": "SciPy", "kubespawner_override": _image("scipy")},
                },
            }
        },
    },
    {
        "display_name": "LSST GPU",
        "slug": "lsst-gpu",
        "allowed_groups": ["iris/lsst", "iris/admins"],
        "resources": {"cpu": 4, "memory": "16G", "gpu": 1},
        "kubespawner_override": {"extra_resource_limits": {"example.com/fpga": "1"}},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "pytorch": {
                        "display_name": "PyTorch",
                        "default": True,
                        "kubespawner_override": _image("pytorch"),
                    },
                    "tensorflow": {
                        "display_name": "TensorFlow",
                        "allowed_groups": ["iris/lsst"],
                        "kubespawner_override": _image("tensorflow"),
                    },
                    "dune": {
                        "display_name": "DUNE",
                        "required_groups": ["dune"],
                        "kubespawner_override": _image("datascience"),
                    },
                },
            }
        },
    },
]
IRIS_REQUEST = {"profile": "lsst-gpu", "image": "tensorflow", "group": "iris-lsst"}

#: [1] The same for vanilla KubeSpawner: no group keys, the shorthand written out by hand.
PLAIN_PROFILES: list[dict[str, Any]] = [
    _plain_standard(IRIS_PROFILES[0]["profile_options"]),
    {
        "display_name": "LSST GPU",
        "slug": "lsst-gpu",
        "kubespawner_override": {
            "cpu_limit": 4.0,
            "cpu_guarantee": 4.0,
            "mem_limit": "16G",
            "mem_guarantee": "16G",
            "extra_resource_limits": {"example.com/fpga": "1", "nvidia.com/gpu": "1"},
            "extra_resource_guarantees": {"nvidia.com/gpu": "1"},
            "node_selector": {"nvidia.com/gpu.present": "true"},
            "tolerations": [GPU_TOLERATION],
        },
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    key: {k: v for k, v in choice.items() if not k.endswith("_groups")}
                    for key, choice in IRIS_PROFILES[1]["profile_options"]["image"][
                        "choices"
                    ].items()
                },
            }
        },
    },
]
PLAIN_REQUEST = {"profile": "lsst-gpu", "image": "tensorflow"}

ADA_POSIX = {
    "uid": 2000001,
    "gid": 2000001,
    "username": "ada",
    "groups": [
        {"name": "ada", "gid": 2000001},
        {"name": "iris", "gid": 3000001, "canonical": "iris"},
        {"name": "iris-lsst", "gid": 3000002, "canonical": "iris/lsst"},
        {"name": "dune", "gid": 3000003, "canonical": "dune"},
    ],
}
ADA_AUTH_STATE = {"groups": ["iris", "iris/lsst", "dune"], "posix": ADA_POSIX}


class BenchUser:
    """The part of ``jupyterhub.user.User`` a spawner uses outside ``start()``.

    ``get_auth_state`` decodes stored JSON each call, as the hub does after decrypting.
    """

    def __init__(self, name: str, auth_state: dict[str, Any]) -> None:
        self.name = name
        self.id = 1
        self.url = f"/user/{name}/"
        self.db = None  # only used for group_quotas, which the benchmark leaves empty
        self._stored = json.dumps(auth_state)

    async def get_auth_state(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads(self._stored)
        return loaded


#: An API request with a body: IRISSpawner judges it as fresh (not saved) options.
API_HANDLER = SimpleNamespace(request=SimpleNamespace(method="POST", body=b"{}"))


@contextlib.contextmanager
def dummy_kubeconfig() -> Iterator[None]:
    """``KUBECONFIG`` pointing at an unreachable cluster while spawners are built.

    KubeSpawner loads the kubeconfig in ``__init__``; reflectors and API calls only start
    in ``start()``/``poll()``/``stop()``, which the in-process benchmarks never call.
    """
    previous = os.environ.get("KUBECONFIG")
    with tempfile.TemporaryDirectory(prefix="iris-bench-kube-") as tmp:
        path = Path(tmp) / "kubeconfig"
        path.write_text(
            json.dumps(
                {
                    "apiVersion": "v1",
                    "kind": "Config",
                    "clusters": [{"name": "none", "cluster": {"server": "http://127.0.0.1:9"}}],
                    "users": [{"name": "hub", "user": {"token": "none"}}],
                    "contexts": [
                        {
                            "name": "none",
                            "context": {"cluster": "none", "user": "hub", "namespace": NAMESPACE},
                        }
                    ],
                    "current-context": "none",
                }
            )
        )
        os.environ["KUBECONFIG"] = str(path)
        try:
            yield
        finally:
            if previous is None:
                os.environ.pop("KUBECONFIG", None)
            else:
                os.environ["KUBECONFIG"] = previous


def _common_config() -> dict[str, Any]:
    return {
        "namespace": NAMESPACE,
        "image": BASE_IMAGE,
        "cmd": ["jupyterhub-singleuser"],
        "args": [],
    }


def _static_security(posix: dict[str, Any], group: str) -> dict[str, Any]:
    """What IRISSpawner applies for ``posix``/``group`` (no storage), as static spawner config.

    The real path: :func:`~iris_jupyterhub.spawner.pod.build_pod` then
    :func:`~iris_jupyterhub.spawner.pod.spawner_traits` over a spawner with no
    environment, volumes or mounts of its own.
    """
    from iris_jupyterhub.spawner.pod import build_pod, spawner_traits

    traits, _ = spawner_traits(build_pod(posix, group, None), {})
    return traits


async def _build(spawner: Any, options: dict[str, Any]) -> tuple[float, float, Any]:
    """Seconds for load_user_options + get_pod_manifest, seconds of the first, the manifest."""
    spawner.user_options = dict(options)
    gc.disable()  # as timeit does: collections are paid outside the timed part
    try:
        start = time.perf_counter()
        await spawner.load_user_options()
        loaded = time.perf_counter()
        manifest = await spawner.get_pod_manifest()
        end = time.perf_counter()
    finally:
        gc.enable()
    return end - start, loaded - start, manifest


def _diff(a: Any, b: Any, path: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        return [
            d for k in sorted(set(a) | set(b)) for d in _diff(a.get(k), b.get(k), f"{path}.{k}")
        ]
    if isinstance(a, list) and isinstance(b, list) and len(a) == len(b):
        return [
            d
            for i, (x, y) in enumerate(zip(a, b, strict=True))
            for d in _diff(x, y, f"{path}[{i}]")
        ]
    return [] if a == b else [path or "$"]


async def _manifest_bench(warmup: int, rounds: int) -> dict[str, Any]:
    from kubespawner import KubeSpawner

    from iris_jupyterhub.spawner import IRISSpawner

    iris_config = {**_common_config(), "profile_list": IRIS_PROFILES}
    plain_config = {
        **_common_config(),
        "profile_list": PLAIN_PROFILES,
        **_static_security(ADA_POSIX, IRIS_REQUEST["group"]),
    }

    def make(kind: str) -> Any:
        user = BenchUser("ada", ADA_AUTH_STATE)
        if kind == "IRISSpawner":
            spawner = IRISSpawner(_mock=True, user=user, **copy.deepcopy(iris_config))
        else:
            spawner = KubeSpawner(_mock=True, user=user, **copy.deepcopy(plain_config))
        spawner.handler = API_HANDLER
        return spawner

    requests = {"IRISSpawner": IRIS_REQUEST, "KubeSpawner": PLAIN_REQUEST}
    times: dict[str, list[float]] = {name: [] for name in requests}
    load: dict[str, list[float]] = {name: [] for name in requests}
    manifests: dict[str, Any] = {}
    for i in range(warmup + rounds):
        if i % 25 == 0:
            gc.collect()
        for name in requests if i % 2 == 0 else list(requests)[::-1]:
            spawner = make(name)  # a fresh spawner each time, built outside the timing
            seconds, loading, manifest = await _build(spawner, requests[name])
            if i >= warmup:
                times[name].append(seconds)
                load[name].append(loading)
            else:
                manifests[name] = spawner.api.api_client.sanitize_for_serialization(manifest)
    return {"times": times, "load": load, "manifests": manifests}


def bench_manifest(warmup: int, rounds: int, out: Out) -> None:
    """[1]: ``warmup`` (at least 1: the manifests compared come from it) + ``rounds``."""
    gc.collect()
    result = asyncio.run(_manifest_bench(warmup, rounds))
    times, load, manifests = result["times"], result["load"], result["manifests"]
    out(
        f"[1] Pod-manifest build in-process: load_user_options() + get_pod_manifest() on a "
        f"fresh spawner, {warmup} warm-up + {rounds} interleaved each, GC paused"
    )
    out(
        "    profile lsst-gpu, image choice with group rule, group iris-lsst (vanilla: the same "
        "overrides + security as static config)"
    )
    out(
        f"    {'spawner':<13}{'n':>5}{'median us':>11}{'p90 us':>9}{'min us':>9}"
        f"{'of which load_user_options (median us)':>40}"
    )
    for name, t in times.items():
        out(
            f"    {name:<13}{len(t):>5}{statistics.median(t) * 1e6:>11.0f}"
            f"{pct(t, 90) * 1e6:>9.0f}{min(t) * 1e6:>9.0f}"
            f"{statistics.median(load[name]) * 1e6:>40.0f}"
        )
    iris, plain = times["IRISSpawner"], times["KubeSpawner"]
    ratio = statistics.median(iris) / statistics.median(plain)
    verdict = "within" if ratio <= MANIFEST_TARGET else "OVER"
    out(
        f"    ratio IRIS/vanilla: median {ratio:.2f}x, p90 {pct(iris, 90) / pct(plain, 90):.2f}x "
        f"| median {verdict} target <= {MANIFEST_TARGET}x"
    )
    record(
        "spawner",
        "pod-manifest build, median",
        statistics.median(iris) * 1e6,
        "us",
        baseline=statistics.median(plain) * 1e6,
        baseline_name="KubeSpawner",
        target=f"<= {MANIFEST_TARGET}x",
        met=ratio <= MANIFEST_TARGET,
    )
    record(
        "spawner",
        "pod-manifest build, p90",
        pct(iris, 90) * 1e6,
        "us",
        baseline=pct(plain, 90) * 1e6,
        baseline_name="KubeSpawner",
    )
    differences = _diff(manifests["IRISSpawner"], manifests["KubeSpawner"])
    out(
        "    manifests identical: yes"
        if not differences
        else f"    manifests differ at: {', '.join(differences[:6])}"
    )
