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

Everything is printed; nothing is asserted.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import copy
import gc
import http.server
import json
import os
import re
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx

from benchmarks.login import pct

MANIFEST_WARMUP = 50
MANIFEST_ROUNDS = 400
MANIFEST_TARGET = 1.2
FORM_GROUPS = 200
FORM_PROFILES = 50
FORM_WARMUP = 5
FORM_RUNS = 60
FORM_TARGET_MS = 10.0
SPAWN_WARMUP = 1
SPAWNS = 20
POLL = 0.01

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


# --------------------------------------------------------------------------------------
# In-process spawners (no hub)
# --------------------------------------------------------------------------------------


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
    """What IRISSpawner applies for ``posix``/``group``, written as static spawner config."""
    from iris_jupyterhub.spawner.security import pod_security

    security = pod_security(posix, group)
    pod = dict(security.pod_security_context)
    return {
        "uid": pod["runAsUser"],
        "gid": pod["runAsGroup"],
        "fs_gid": pod["fsGroup"],
        "supplemental_gids": list(pod["supplementalGroups"]),
        "allow_privilege_escalation": False,
        "privileged": False,
        "pod_security_context": pod,
        "container_security_context": dict(security.container_security_context),
        "environment": dict(security.environment),
    }


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


async def _manifest_bench() -> dict[str, Any]:
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
    for i in range(MANIFEST_WARMUP + MANIFEST_ROUNDS):
        if i % 25 == 0:
            gc.collect()
        for name in requests if i % 2 == 0 else list(requests)[::-1]:
            spawner = make(name)  # a fresh spawner each time, built outside the timing
            seconds, loading, manifest = await _build(spawner, requests[name])
            if i >= MANIFEST_WARMUP:
                times[name].append(seconds)
                load[name].append(loading)
            else:
                manifests[name] = spawner.api.api_client.sanitize_for_serialization(manifest)
    return {"times": times, "load": load, "manifests": manifests}


def bench_manifest(out: Out) -> None:
    gc.collect()
    result = asyncio.run(_manifest_bench())
    times, load, manifests = result["times"], result["load"], result["manifests"]
    out(
        f"[1] Pod-manifest build in-process: load_user_options() + get_pod_manifest() on a "
        f"fresh spawner, {MANIFEST_WARMUP} warm-up + {MANIFEST_ROUNDS} interleaved each, GC paused"
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
    differences = _diff(manifests["IRISSpawner"], manifests["KubeSpawner"])
    out(
        "    manifests identical: yes"
        if not differences
        else f"    manifests differ at: {', '.join(differences[:6])}"
    )


# --------------------------------------------------------------------------------------
# [2] The form
# --------------------------------------------------------------------------------------


def form_profiles() -> list[dict[str, Any]]:
    """50 profiles; every 5th only for a group nobody has; two options with group rules."""
    profiles = []
    for i in range(FORM_PROFILES):
        hidden = i % 5 == 4
        profiles.append(
            {
                "display_name": f"Profile {i:02d}",
                "slug": f"p{i:02d}",
                "description": f"{i + 1} cores for group vo{i * 4}",
                "default": i == 0,
                "allowed_groups": [f"iris/none{i}"] if hidden else [f"iris/vo{i * 4}", "iris"],
                "required_groups": [f"iris/vo{i * 4}"] if i % 2 else ["iris"],
                "resources": {"cpu": 1 + i % 8, "memory": f"{2 + i % 8}G"},
                "profile_options": {
                    "image": {
                        "display_name": "Image",
                        "choices": {
                            "base": {
                                "display_name": "Base",
                                "kubespawner_override": _image("base"),
                            },
                            "scipy": {
                                "display_name": "SciPy",
                                "allowed_groups": [f"iris/vo{(i * 4 + 1) % 199}"],
                                "kubespawner_override": _image("scipy"),
                            },
                            "torch": {
                                "display_name": "PyTorch",
                                "allowed_groups": [f"iris/none{i}"],
                                "kubespawner_override": _image("pytorch"),
                            },
                        },
                    },
                    "size": {
                        "display_name": "Size",
                        "choices": {
                            "small": {"display_name": "Small", "resources": {"cpu": 1}},
                            "large": {
                                "display_name": "Large",
                                "allowed_groups": [f"iris/vo{i}"],
                                "resources": {"cpu": 8, "memory": "32G"},
                            },
                        },
                    },
                },
            }
        )
    return profiles


def plain_form_profiles(profiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same list without the IRIS keys, as vanilla KubeSpawner would get it."""

    def strip(item: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in item.items()
            if k not in {"allowed_groups", "required_groups", "resources"}
        }

    plain = []
    for profile in profiles:
        entry = strip(profile)
        entry["profile_options"] = {
            key: {
                **option,
                "choices": {slug: strip(c) for slug, c in option["choices"].items()},
            }
            for key, option in profile["profile_options"].items()
        }
        plain.append(entry)
    return plain


def many_groups_auth_state() -> dict[str, Any]:
    """A user with 200 canonical groups and a POSIX entry with 200 groups."""
    vos = [f"iris/vo{k}" for k in range(FORM_GROUPS - 1)]
    groups = [{"name": "ada", "gid": 2000001}]
    groups += [
        {"name": f"iris-vo{k}", "gid": 3000100 + k, "canonical": vo} for k, vo in enumerate(vos)
    ]
    return {
        "groups": ["iris", *vos],
        "posix": {"uid": 2000001, "gid": 2000001, "username": "ada", "groups": groups},
    }


async def _form_bench() -> dict[str, Any]:
    from kubespawner import KubeSpawner

    from iris_jupyterhub.spawner import IRISSpawner

    profiles = form_profiles()
    plain = plain_form_profiles(profiles)
    user = BenchUser("ada", many_groups_auth_state())
    iris = IRISSpawner(_mock=True, user=user, **_common_config(), profile_list=profiles)
    vanilla = KubeSpawner(_mock=True, user=user, **_common_config(), profile_list=plain)
    times: dict[str, list[float]] = {"iris": [], "vanilla": []}
    forms: dict[str, str] = {}
    for i in range(FORM_WARMUP + FORM_RUNS):
        start = time.perf_counter()
        forms["iris"] = await iris._render_iris_form(iris)
        middle = time.perf_counter()
        forms["vanilla"] = str(vanilla._render_options_form(plain))
        end = time.perf_counter()
        if i >= FORM_WARMUP:
            times["iris"].append(middle - start)
            times["vanilla"].append(end - middle)
    shown = sum(f'value="p{i:02d}"' in forms["iris"] for i in range(FORM_PROFILES))
    return {"times": times, "forms": forms, "shown": shown, "steps": await _form_steps(iris)}


async def _form_steps(iris: Any) -> dict[str, float]:
    """Median seconds of the steps of ``_render_iris_form``, each timed on its own."""
    from iris_jupyterhub.groups import memberships_from_auth_state
    from iris_jupyterhub.spawner.resolution import profile_list_for_form, visible_profiles

    steps: dict[str, list[float]] = {}

    def lap(name: str, start: float) -> float:
        now = time.perf_counter()
        steps.setdefault(name, []).append(now - start)
        return now

    for _ in range(FORM_RUNS // 2):
        t = time.perf_counter()
        auth_state = await iris.user.get_auth_state()
        profiles = await iris._profiles()
        t = lap("profile_list validation", t)
        visible = visible_profiles(profiles, memberships_from_auth_state(auth_state))
        t = lap("group rules (visible_profiles)", t)
        listing = profile_list_for_form(visible)
        t = lap("profile_list_for_form", t)
        iris._render_options_form(listing)
        lap("KubeSpawner template", t)
    return {name: statistics.median(values) for name, values in steps.items()}


def bench_form(out: Out) -> None:
    gc.collect()
    result = asyncio.run(_form_bench())
    times, forms = result["times"], result["forms"]
    out(
        f"[2] Form render: {FORM_PROFILES} profiles (group rules on profiles and choices, "
        f"2 options each), user with {FORM_GROUPS} canonical + {FORM_GROUPS} POSIX groups; "
        f"{FORM_WARMUP} warm-up + {FORM_RUNS} runs"
    )
    out(f"    {'render':<42}{'median ms':>10}{'p99 ms':>8}{'max ms':>8}{'HTML KB':>9}")
    rows = [
        ("iris", f"IRISSpawner._render_iris_form ({result['shown']} shown)"),
        ("vanilla", f"KubeSpawner._render_options_form ({FORM_PROFILES})"),
    ]
    for key, label in rows:
        t = times[key]
        out(
            f"    {label:<42}{statistics.median(t) * 1e3:>10.2f}{pct(t, 99) * 1e3:>8.2f}"
            f"{max(t) * 1e3:>8.2f}{len(forms[key]) / 1024:>9.0f}"
        )
    median = statistics.median(times["iris"]) * 1e3
    verdict = "within" if median < FORM_TARGET_MS else "OVER"
    out(
        f"    IRIS median {verdict} target < {FORM_TARGET_MS:g} ms; IRIS/vanilla median "
        f"{statistics.median(times['iris']) / statistics.median(times['vanilla']):.2f}x"
    )
    steps = ", ".join(f"{name} {t * 1e3:.1f}" for name, t in result["steps"].items())
    out(f"    IRIS steps, median ms: {steps}")


# --------------------------------------------------------------------------------------
# [3] Spawn latency through the hub
# --------------------------------------------------------------------------------------


class StubServerHandler(http.server.BaseHTTPRequestHandler):
    """Answers every GET with 200, like a single-user server the hub waits for."""

    version_header = ""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-JupyterHub-Version", self.version_header)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextlib.contextmanager
def stub_server() -> Iterator[int]:
    """A threaded stub single-user server on 127.0.0.1; yields its port."""
    import jupyterhub

    StubServerHandler.version_header = jupyterhub.__version__
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), StubServerHandler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


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
    from tests.spawner.test_iris_spawner import CONFIG, PROFILES

    image = PROFILES[0]["profile_options"]["image"]
    plain = [_plain_standard({"image": {"display_name": "Image", "choices": image["choices"]}})]
    stub = f"c.KubeSpawner.port = {port}\n"
    return {
        "IRISSpawner": CONFIG + stub,
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


def start_kube_stacks(workdir: Path, configs: dict[str, str], kube: Any) -> dict[str, Any]:
    """An IdP + hub per config against ``kube``, started in parallel; all or none."""
    from tests.e2e.conftest import start_stack
    from tests.spawner.conftest import KubeStack

    with concurrent.futures.ThreadPoolExecutor(max_workers=len(configs)) as pool:
        futures = {
            name: pool.submit(start_stack, workdir / name.lower(), "iam", config, kube.env)
            for name, config in configs.items()
        }
        concurrent.futures.wait(futures.values())
    started = {n: KubeStack(f.result(), kube) for n, f in futures.items() if not f.exception()}
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


def bench_spawn(workdir: Path, out: Out) -> None:
    from devstack.kube import KubeStandIn
    from tests.e2e.conftest import IAM_HUB_CONFIG
    from tests.spawner.conftest import KUBE_HUB_CONFIG

    t0 = time.perf_counter()
    stacks: dict[str, Any] = {}
    clients: dict[str, SpawnClient] = {}
    kube = KubeStandIn(workdir / "kube", run_servers=False, pod_ip="127.0.0.1")
    with stub_server() as port, kube:
        try:
            configs = {
                name: IAM_HUB_CONFIG + KUBE_HUB_CONFIG + extra
                for name, extra in _hub_configs(port).items()
            }
            stacks.update(start_kube_stacks(workdir, configs, kube))
            clients.update(
                {name: logged_in(ks, "ada", "aresearcher") for name, ks in stacks.items()}
            )
            up = time.perf_counter() - t0
            spawn, stop = interleaved_cycles(clients, SPAWN_WARMUP, SPAWNS)
            manifests = {
                name: [r.manifest for r in kube.created("Pod")
                       if r.manifest["metadata"]["name"].startswith(prefix)]
                for name, prefix in (("IRISSpawner", "jupyter-"), ("KubeSpawner", "vanilla-"))
            }  # fmt: skip
            invalid = kube.validation_errors()
            hub_took = {
                name: _hub_spawn_seconds(ks.hub.log_text())[-SPAWNS:]
                for name, ks in stacks.items()
            }
        except BaseException:
            for name, ks in stacks.items():
                out(f"--- hub {name} ---\n{ks.hub.log_tail(20)}")
            out(f"--- kube stand-in ---\n{kube.log_tail(20)}")
            raise
        finally:
            for client in clients.values():
                client.close()
            for ks in stacks.values():
                _stop_stack(ks)

    out(
        f"[3] Spawn latency through the hub, Kubernetes stand-in (fake kubelet, "
        f"run_servers=False, every pod answered by one stub HTTP server); {SPAWN_WARMUP} warm-up "
        f"+ {SPAWNS} interleaved sequential spawns per hub (stack up in {up:.1f}s)"
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
    last = manifests["IRISSpawner"][-1]["spec"] if manifests["IRISSpawner"] else {}
    out(
        f"    IRIS pods runAsUser {last.get('securityContext', {}).get('runAsUser')}; "
        f"schema errors in created objects: {len(invalid)}"
    )


def run(out: Out = print) -> None:
    """Run the three spawner benchmarks and print the report; raise if one cannot run."""
    out("iris-jupyterhub spawner benchmarks (issue 5)")
    t0 = time.perf_counter()
    with dummy_kubeconfig():
        bench_manifest(out)
        out(f"    section time {time.perf_counter() - t0:.1f}s")
        t1 = time.perf_counter()
        bench_form(out)
        out(f"    section time {time.perf_counter() - t1:.1f}s")
    t2 = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="iris-bench-spawner-") as tmp:
        bench_spawn(Path(tmp), out)
    out(f"    section time {time.perf_counter() - t2:.1f}s")


if __name__ == "__main__":
    run()
