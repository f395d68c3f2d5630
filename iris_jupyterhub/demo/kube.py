"""A Kubernetes API stand-in that a real JupyterHub with KubeSpawner can spawn against.

No kube-apiserver can run here, so the API is kmock's ``KubernetesEmulator`` (an in-memory
object store with list/watch/create/patch/delete over HTTP), served by aiohttp in a separate
process (``python -m iris_jupyterhub.demo.kube --port 0 --ready-file F``) and extended with what
KubeSpawner relies on:

- ``?watch=True`` (kubernetes_asyncio) is normalised to ``watch=true`` (what kmock matches);
- objects get ``uid``, ``resourceVersion``, ``creationTimestamp`` and ``generateName``
  names; pods start with ``status.phase = Pending``; lists carry a ``resourceVersion``;
- label and field selectors are applied to lists and watches, and ``timeoutSeconds`` ends
  a watch, so KubeSpawner's reflectors behave as against a real API server;
- every object created is recorded as sent, with the errors from
  :func:`validate_manifest` (``kubernetes-validate``, strict schemas of :data:`KUBE_VERSION`);
- a :class:`~iris_jupyterhub.demo.kubelet.FakeKubelet` in the same process runs pods as local
  ``jupyterhub.singleuser`` processes and reports them Running.

:class:`KubeStandIn` starts that process (for the tests and ``make demo``), writes a
kubeconfig for the hub (``KUBECONFIG``; KubeSpawner reads it once per process) and reads
objects and records back.
Stop the hub (and so KubeSpawner's reflectors) before :meth:`KubeStandIn.stop`.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import ctypes
import datetime
import functools
import importlib
import itertools
import json
import logging
import os
import re
import secrets
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import httpx

from .kubelet import FakeKubelet

REPO_ROOT = Path(__file__).resolve().parents[2]

#: Kubernetes version whose OpenAPI schemas manifests are checked against (strict mode).
#: The oldest release still supported upstream-ish that z2jh 4.x runs on: a manifest valid
#: here is valid on newer clusters too. Override with ``IRIS_KUBE_VALIDATE_VERSION``.
KUBE_VERSION = os.environ.get("IRIS_KUBE_VALIDATE_VERSION", "1.31")
DEFAULT_NAMESPACE = "jhub"
KUBELET_AGENT = "standin-kubelet"

#: (group/version, plural) -> (kind, namespaced) served by the stand-in.
RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "pods"): ("Pod", True),
    ("v1", "events"): ("Event", True),
    ("v1", "persistentvolumeclaims"): ("PersistentVolumeClaim", True),
    ("v1", "persistentvolumes"): ("PersistentVolume", False),
    ("v1", "secrets"): ("Secret", True),
    ("v1", "services"): ("Service", True),
    ("v1", "configmaps"): ("ConfigMap", True),
    ("v1", "serviceaccounts"): ("ServiceAccount", True),
    ("v1", "namespaces"): ("Namespace", False),
    ("v1", "endpoints"): ("Endpoints", True),
    ("networking.k8s.io/v1", "ingresses"): ("Ingress", True),
    ("networking.k8s.io/v1", "networkpolicies"): ("NetworkPolicy", True),
}

# --------------------------------------------------------------------------------------
# Manifest validation (kubernetes-validate, strict)
# --------------------------------------------------------------------------------------


def _schema_version(desired: str) -> str:
    """The newest schema set shipped by kubernetes-validate not newer than ``desired``."""
    from packaging.version import Version  # noqa: PLC0415 - only where validating

    all_versions = _kv_utils().all_versions

    wanted = Version(desired.lstrip("v"))
    wanted = Version(f"{wanted.major}.{wanted.minor}.999")
    shipped = [v for v in all_versions() if Version(v) <= wanted]
    if not shipped:
        raise ValueError(f"kubernetes-validate ships no schemas for Kubernetes <= {desired}")
    return str(shipped[-1])


def _kv_utils() -> Any:
    """``kubernetes_validate.utils`` (imported on first use; it ships no type information)."""
    return importlib.import_module("kubernetes_validate.utils")


@functools.lru_cache(maxsize=4)
def _definitions(version: str) -> Any:
    """The shared ``_definitions.json`` of a schema set, as a referencing resource."""
    from referencing import Resource  # noqa: PLC0415 - comes with kubernetes-validate

    schema_contents = _kv_utils().schema_contents
    path = f"kubernetes-json-schema/v{version}-local-strict/_definitions.json"
    return Resource.from_contents(schema_contents(path, version))


@functools.lru_cache(maxsize=64)
def _validator(version: str, kind: str, api_version: str) -> Any:
    """A cached Draft 2020-12 validator for ``kind``/``api_version`` (None: no schema)."""
    from referencing import Registry, Resource  # noqa: PLC0415 - as above

    jsonschema = importlib.import_module("jsonschema")  # untyped without types-jsonschema
    schema_contents = _kv_utils().schema_contents

    schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = schema_contents(f"{schema_dir}/{kind.lower()}-{group_version}.json", version)
    except FileNotFoundError:
        return None
    registry: Registry[Any] = _definitions(version) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_manifest(obj: Mapping[str, Any], version: str = KUBE_VERSION) -> list[str]:
    """Every error of ``obj`` against the strict OpenAPI schema of Kubernetes ``version``.

    Strict means unknown fields are errors as well as wrong types and missing required
    fields. Each error reads ``<json path>: <message>``; an empty list means valid.
    """
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(api_version, str):
        return ["$: kind and apiVersion are required"]
    validator = _validator(_schema_version(version), kind, api_version)
    if validator is None:
        return [f"$: no schema for {kind} {api_version} in Kubernetes {version}"]
    errors = sorted(validator.iter_errors(dict(obj)), key=lambda e: list(e.absolute_path))
    return [f"{e.json_path}: {e.message}" for e in errors]


# --------------------------------------------------------------------------------------
# Selectors
# --------------------------------------------------------------------------------------

_SET_REQ = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(selector: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def label_selector_matches(labels: Mapping[str, str], selector: str) -> bool:
    """Label selector semantics: ``=``, ``==``, ``!=``, ``in``, ``notin``, ``k``, ``!k``."""
    for req in _split_selector(selector):
        if m := _SET_REQ.match(req):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            ok = labels.get(key) in values if op == "in" else labels.get(key) not in values
        elif "!=" in req:
            key, value = (s.strip() for s in req.split("!=", 1))
            ok = labels.get(key) != value
        elif "=" in req:
            key, value = (s.strip() for s in re.split(r"==?", req, maxsplit=1))
            ok = labels.get(key) == value
        elif req.startswith("!"):
            ok = req[1:].strip() not in labels
        else:
            ok = req in labels
        if not ok:
            return False
    return True


def field_selector_matches(obj: Mapping[str, Any], selector: str) -> bool:
    """Field selectors as dotted paths compared as strings (``=``, ``==``, ``!=``)."""
    for req in _split_selector(selector):
        negate = "!=" in req
        path, value = (s.strip() for s in re.split(r"!=|==?", req, maxsplit=1))
        current: Any = obj
        for part in path.split("."):
            current = current.get(part) if isinstance(current, Mapping) else None
        actual = "" if current is None else str(current)
        if (actual == value) == negate:
            return False
    return True


# --------------------------------------------------------------------------------------
# Records shared by the server process and its clients (tests, demo)
# --------------------------------------------------------------------------------------


@dataclass
class CreatedObject:
    """One create request the stand-in received: the manifest as sent and its schema errors."""

    kind: str
    api_version: str
    namespace: str | None
    name: str
    manifest: dict[str, Any]
    errors: list[str]
    status: int
    actor: str = "client"

    @property
    def key(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else self.kind

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CreatedObject:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def _now() -> str:
    return datetime.datetime.now(tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _qos_class(pod: Mapping[str, Any]) -> str:
    containers = pod.get("spec", {}).get("containers", []) or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        for res in ("cpu", "memory"):
            if res not in limits or requests.get(res, limits[res]) != limits[res]:
                return "Burstable"
    return "Guaranteed"


# --------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------


def _make_emulator_class() -> type[Any]:
    """Build the kmock subclass lazily: only the server process imports kmock/aiohttp.

    kmock needs Python >= 3.11; it is imported by name so that this module (and mypy on
    Python 3.10) does not need it.
    """
    import aiohttp.web  # noqa: PLC0415 - the server process only
    import attrs  # noqa: PLC0415 - comes with kmock

    kmock = importlib.import_module("kmock")
    KubernetesEmulator, KubernetesError = kmock.KubernetesEmulator, kmock.KubernetesError  # noqa: N806
    action, resource = kmock.action, kmock.resource

    @attrs.define(kw_only=True)
    class StandInEmulator(KubernetesEmulator):  # type: ignore[misc,valid-type]
        kube_version: str = KUBE_VERSION
        reject_invalid: bool = False
        created: list[dict[str, Any]] = attrs.field(factory=list)
        deleted: list[dict[str, Any]] = attrs.field(factory=list)
        request_log: list[dict[str, Any]] = attrs.field(factory=list)
        kubelet: Any = None
        _counter: Iterator[int] = attrs.field(factory=lambda: itertools.count(1))
        _last_rv: int = 0

        def __attrs_post_init__(self) -> None:
            super().__attrs_post_init__()
            for (group_version, plural), (kind, namespaced) in RESOURCES.items():
                info = self.resources[f"{group_version}/{plural}"]
                info.kind = kind
                info.namespaced = namespaced
                info.verbs = {"get", "list", "watch", "create", "delete", "patch", "update"}

        def next_rv(self) -> str:
            self._last_rv = next(self._counter)
            return str(self._last_rv)

        # -- entry point: watch=True, the stand-in's own endpoints -----------------------
        async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
            if raw.path.startswith("/_standin/"):
                return await self._serve_standin(raw)
            watch = raw.query.get("watch")
            if watch is not None and watch != "true" and watch.lower() in {"true", "1"}:
                # kubernetes_asyncio sends watch=True; kmock recognises only watch=true.
                raw = raw.clone(rel_url=raw.rel_url.update_query(watch="true"))
            actor = raw.headers.get("X-Standin-Actor", "client")
            if actor != "kubelet":  # the kubelet polls: keep the log to the clients' calls
                self.request_log.append(
                    {"method": raw.method, "path": raw.path, "query": dict(raw.query)}
                )
            return cast("aiohttp.web.StreamResponse", await super().__call__(raw))

        async def _serve_standin(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.Response:
            what = raw.path.removeprefix("/_standin/")
            if what == "created":
                return aiohttp.web.json_response(self.created)
            if what == "deleted":
                return aiohttp.web.json_response(self.deleted)
            if what == "requests":
                return aiohttp.web.json_response(self.request_log)
            if what == "kubelet":
                pods = self.kubelet.describe() if self.kubelet is not None else []
                return aiohttp.web.json_response(pods)
            if what == "reset" and raw.method == "POST":
                self.created.clear()
                self.deleted.clear()
                self.request_log.clear()
                return aiohttp.web.json_response({})
            return aiohttp.web.json_response({"error": f"unknown {raw.path}"}, status=404)

        # -- state changes: metadata the API server owns, recording, validation ---------
        async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
            res = request.resource
            if res is None:
                return cast("aiohttp.web.StreamResponse", await super()._handle(request))
            kind, namespaced = RESOURCES.get(
                (f"{res.group}/{res.version}" if res.group else res.version, res.plural),
                (str(res.plural).capitalize(), True),
            )
            actor = request.headers.get("X-Standin-Actor", "client")
            record: dict[str, Any] | None = None
            if request.action == action.CREATE and isinstance(request.data, dict):
                record = self._prepare_create(request, kind, namespaced, actor)
            elif request.action == action.UPDATE and isinstance(request.data, dict):
                request.data.setdefault("metadata", {})["resourceVersion"] = self.next_rv()
            elif request.action == action.DELETE and request.name is not None:
                self.deleted.append(
                    {"kind": kind, "namespace": request.namespace, "name": request.name,
                     "options": request.data if isinstance(request.data, dict) else None,
                     "actor": actor}
                )  # fmt: skip
            try:
                response = cast("aiohttp.web.StreamResponse", await super()._handle(request))
            except KubernetesError as exc:
                if record is not None:
                    record["status"] = exc.status
                raise
            if record is not None:
                if response.status == 200 and not response.prepared:
                    response.set_status(201)  # as the API server answers a create
                record["status"] = response.status
            return response

        def _prepare_create(
            self, request: Any, kind: str, namespaced: bool, actor: str
        ) -> dict[str, Any]:
            obj: dict[str, Any] = request.data
            sent = copy.deepcopy(obj)
            meta = obj.setdefault("metadata", {})
            if not meta.get("name") and meta.get("generateName"):
                meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
            namespace = (request.namespace or meta.get("namespace")) if namespaced else None
            record: dict[str, Any] = {
                "kind": sent.get("kind") or kind,
                "api_version": sent.get("apiVersion") or "",
                "namespace": namespace,
                "name": meta.get("name") or "",
                "manifest": sent,
                "errors": validate_manifest(sent, self.kube_version),
                "status": 0,
                "actor": actor,
            }
            self.created.append(record)
            if self.reject_invalid and record["errors"]:
                record["status"] = 422
                raise KubernetesError(
                    status=422, reason="Invalid", message="; ".join(record["errors"])
                )
            obj.setdefault("kind", kind)
            if not obj.get("apiVersion"):
                res = request.resource
                obj["apiVersion"] = f"{res.group}/{res.version}" if res.group else res.version
            if namespace:
                meta["namespace"] = namespace
            meta.update(uid=str(uuid.uuid4()), resourceVersion=self.next_rv())
            meta.setdefault("creationTimestamp", _now())
            meta.setdefault("generation", 1)
            if kind == "Pod":
                obj["status"] = {"phase": "Pending", "qosClass": _qos_class(obj)}
            return record

        # -- reads: selectors, list resourceVersion, watch timeouts ------------------------
        def _selected(self, request: Any, obj: Mapping[str, Any]) -> bool:
            labels = obj.get("metadata", {}).get("labels") or {}
            label_sel = request.params.get("labelSelector", "")
            field_sel = request.params.get("fieldSelector", "")
            return label_selector_matches(labels, label_sel) and field_selector_matches(
                obj, field_sel
            )

        async def _serve_list(self, request: Any) -> Any:
            listing = cast("dict[str, Any]", await super()._serve_list(request))
            listing["items"] = [o for o in listing["items"] if self._selected(request, o)]
            listing["metadata"]["resourceVersion"] = str(self._last_rv)
            res = request.resource
            kind, _ = RESOURCES.get(
                (f"{res.group}/{res.version}" if res.group else res.version, res.plural),
                ("", True),
            )
            if kind:
                listing["kind"] = f"{kind}List"
                listing["apiVersion"] = f"{res.group}/{res.version}" if res.group else res.version
            return listing

        async def _serve_watch(self, request: Any) -> AsyncIterator[Any]:
            yield b""  # send the headers now: the client waits for them
            timeout = float(request.params.get("timeoutSeconds") or 0) or None
            deadline = None if timeout is None else time.monotonic() + timeout
            bus = self._buses[request.resource]
            async with self._lock:  # mark before listing: no event can fall in between
                mark = await bus.mark()
                existing = [
                    obj.raw
                    for (res, ns, name), obj in self._objects.items()
                    if res == request.resource and not obj.deleted
                    if request.namespace is None or ns == request.namespace
                    if request.name is None or name == request.name
                ]
            try:
                for raw_obj in existing:
                    if self._selected(request, raw_obj):
                        yield {"type": "ADDED", "object": raw_obj}
                stream = cast("AsyncGenerator[Any, None]", bus.stream(since=mark))
                try:
                    while True:
                        remaining = None if deadline is None else deadline - time.monotonic()
                        if remaining is not None and remaining <= 0:
                            break
                        try:
                            event = await asyncio.wait_for(stream.__anext__(), remaining)
                        except (asyncio.TimeoutError, StopAsyncIteration):
                            break
                        obj = event.get("object", {})
                        meta = obj.get("metadata", {})
                        if request.namespace is not None and meta.get("namespace") != (
                            request.namespace
                        ):
                            continue
                        if request.name is not None and meta.get("name") != request.name:
                            continue
                        if self._selected(request, obj):
                            yield event
                finally:
                    await stream.aclose()
            finally:
                await bus.unmark(mark)

        # -- helpers for the kubelet (same process) ---------------------------------------
        def live_objects(self, plural: str, group_version: str = "v1") -> list[dict[str, Any]]:
            wanted = resource(group_version + "/" + plural)
            return [
                obj.raw for (res, _, _), obj in self._objects.items()
                if res == wanted and not obj.deleted
            ]  # fmt: skip

    return StandInEmulator


async def _serve(args: argparse.Namespace) -> None:
    import aiohttp.web  # noqa: PLC0415 - the server process only

    # Warm the schema caches (a first validation takes seconds) before answering anything.
    for kind in ("Pod", "PersistentVolumeClaim", "Secret", "Service", "Event"):
        validate_manifest({"apiVersion": "v1", "kind": kind}, args.kube_version)
    emulator_cls = _make_emulator_class()
    emulator = emulator_cls(kube_version=args.kube_version, reject_invalid=args.reject_invalid)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    async with emulator:
        server = aiohttp.web.Server(emulator)
        runner = aiohttp.web.ServerRunner(server, shutdown_timeout=1)
        await runner.setup()
        site = aiohttp.web.TCPSite(runner, args.host, args.port)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
        url = f"http://{args.host}:{port}"
        kubelet = None
        if args.kubelet:
            kubelet = FakeKubelet(
                url,
                Path(args.workdir),
                run_servers=args.run_servers,
                pod_ip=args.pod_ip,
                interval=args.kubelet_interval,
            )
            emulator.kubelet = kubelet
            kubelet.start()
        ready = Path(args.ready_file)
        tmp = ready.with_suffix(".tmp")
        tmp.write_text(json.dumps({"port": port, "pid": os.getpid()}))
        tmp.replace(ready)
        print(f"kube stand-in listening on {url}", file=sys.stderr, flush=True)
        await stop.wait()
        if kubelet is not None:
            await kubelet.stop()
        await runner.cleanup()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m iris_jupyterhub.demo.kube")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--kube-version", default=KUBE_VERSION)
    parser.add_argument("--reject-invalid", action="store_true")
    parser.add_argument("--no-kubelet", dest="kubelet", action="store_false")
    parser.add_argument("--no-servers", dest="run_servers", action="store_false")
    parser.add_argument("--pod-ip", default="auto", help="'auto': a free 127.x.y.z per pod")
    parser.add_argument("--kubelet-interval", type=float, default=0.1)
    parser.add_argument("--parent-pid", type=int, default=0, help="exit when it exits")
    args = parser.parse_args(argv)
    if args.parent_pid:  # end with the test process even if it dies without stopping us
        with contextlib.suppress(Exception):
            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != args.parent_pid:
            sys.exit("the test process is gone")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    # the kubelet polls several times a second: keep its requests out of the access log
    logging.getLogger("aiohttp.access").addFilter(
        lambda record: KUBELET_AGENT not in record.getMessage()
    )
    asyncio.run(_serve(args))


# --------------------------------------------------------------------------------------
# The test-side handle
# --------------------------------------------------------------------------------------


@dataclass
class KubeStandIn:
    """Run the stand-in process; a kubeconfig for the hub; read objects and records back.

    ``run_servers``: the fake kubelet starts ``jupyterhub.singleuser`` for each pod (else it
    only reports pods Running). ``pod_ip``: ``"auto"`` gives every pod its own free
    loopback address (so pods keep KubeSpawner's default port 8888), or a fixed address.
    """

    workdir: Path
    namespace: str = DEFAULT_NAMESPACE
    kubelet: bool = True
    run_servers: bool = True
    pod_ip: str = "auto"
    kube_version: str = KUBE_VERSION
    reject_invalid: bool = False
    port: int = 0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def kubeconfig_path(self) -> Path:
        return self.workdir / "kubeconfig"

    @property
    def log_path(self) -> Path:
        return self.workdir / "kube-standin.log"

    @property
    def env(self) -> dict[str, str]:
        """Environment for a hub process that should talk to this stand-in."""
        return {"KUBECONFIG": str(self.kubeconfig_path)}

    def start(self, timeout: float = 30) -> KubeStandIn:
        self.workdir.mkdir(parents=True, exist_ok=True)
        ready = self.workdir / "kube-standin.ready"
        ready.unlink(missing_ok=True)
        cmd = [
            sys.executable, "-m", "iris_jupyterhub.demo.kube", "--port", str(self.port),
            "--ready-file", str(ready), "--workdir", str(self.workdir),
            "--kube-version", self.kube_version, "--pod-ip", self.pod_ip,
            "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        cmd += [] if self.kubelet else ["--no-kubelet"]
        cmd += [] if self.run_servers else ["--no-servers"]
        cmd += ["--reject-invalid"] if self.reject_invalid else []
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(  # noqa: S603 - this interpreter, fixed argv
                cmd, cwd=self.workdir, env=env, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True,
            )  # fmt: skip
        deadline = time.monotonic() + timeout
        while not ready.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"kube stand-in did not start:\n{self.log_tail()}")
            time.sleep(0.05)
        self.port = json.loads(ready.read_text())["port"]
        self.write_kubeconfig()
        return self

    def write_kubeconfig(self) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "standin", "cluster": {"server": self.url}}],
            "users": [{"name": "hub", "user": {"token": "standin-dummy-token"}}],
            "contexts": [
                {
                    "name": "standin",
                    "context": {"cluster": "standin", "user": "hub", "namespace": self.namespace},
                }
            ],
            "current-context": "standin",
        }
        self.kubeconfig_path.write_text(json.dumps(config, indent=2))
        return self.kubeconfig_path

    def stop(self, timeout: float = 15) -> None:
        """Stop the stand-in and its pods' processes. Stop the hub first."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=5)
        self.proc = None

    def __enter__(self) -> KubeStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    # -- HTTP --------------------------------------------------------------------------
    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the stand-in's Kubernetes API (``/api/v1/...``) or ``/_standin/...``."""
        return httpx.request(method, f"{self.url}{path}", timeout=10, **kwargs)

    @staticmethod
    def _collection(plural: str, namespace: str | None, group_version: str) -> str:
        prefix = "/api/v1" if group_version == "v1" else f"/apis/{group_version}"
        return f"{prefix}/namespaces/{namespace}/{plural}" if namespace else f"{prefix}/{plural}"

    def list_objects(
        self,
        plural: str,
        namespace: str | None = None,
        *,
        group_version: str = "v1",
        label_selector: str | None = None,
    ) -> list[dict[str, Any]]:
        params = {"labelSelector": label_selector} if label_selector else {}
        r = self.api("GET", self._collection(plural, namespace, group_version), params=params)
        if r.status_code == 404:
            return []
        r.raise_for_status()
        items: list[dict[str, Any]] = r.json()["items"]
        return items

    def get_object(
        self, plural: str, namespace: str | None, name: str, *, group_version: str = "v1"
    ) -> dict[str, Any] | None:
        r = self.api("GET", f"{self._collection(plural, namespace, group_version)}/{name}")
        if r.status_code == 404:
            return None
        r.raise_for_status()
        obj: dict[str, Any] = r.json()
        return obj

    def list_pods(self, namespace: str | None = None) -> list[dict[str, Any]]:
        return self.list_objects("pods", namespace)

    def get_pod(self, namespace: str, name: str) -> dict[str, Any] | None:
        return self.get_object("pods", namespace, name)

    def created(
        self, kind: str | None = None, *, actor: str | None = "client"
    ) -> list[CreatedObject]:
        """Every create request (as sent, with schema errors); by default not the kubelet's."""
        records = [CreatedObject.from_json(r) for r in self.api("GET", "/_standin/created").json()]
        return [
            r for r in records
            if (kind is None or r.kind == kind) and (actor is None or r.actor == actor)
        ]  # fmt: skip

    def created_pods(self) -> list[CreatedObject]:
        return self.created("Pod")

    def deleted(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self.api("GET", "/_standin/deleted").json()
        return records

    def requests(self) -> list[dict[str, Any]]:
        records: list[dict[str, Any]] = self.api("GET", "/_standin/requests").json()
        return records

    def validation_errors(self, *, actor: str | None = None) -> dict[str, list[str]]:
        """``{"Pod jhub/jupyter-x": [errors]}`` for every created object that has errors."""
        return {r.key: r.errors for r in self.created(actor=actor) if r.errors}

    def kubelet_pods(self) -> list[dict[str, Any]]:
        """What the fake kubelet runs: name, namespace, uid, ip, port, pid, log path."""
        records: list[dict[str, Any]] = self.api("GET", "/_standin/kubelet").json()
        return records

    def reset_records(self) -> None:
        """Forget the records (created/deleted/requests); objects stay."""
        self.api("POST", "/_standin/reset").raise_for_status()

    def wait_for(
        self, predicate: Callable[[], Any], timeout: float = 30, message: str = "condition"
    ) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {message}\n{self.log_tail(20)}")
            time.sleep(0.1)

    def wait_pod_gone(self, namespace: str, name: str, timeout: float = 30) -> None:
        self.wait_for(lambda: self.get_pod(namespace, name) is None, timeout, f"{name} gone")


if __name__ == "__main__":
    main()
