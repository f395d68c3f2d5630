"""The Kubernetes stand-in server process: kmock's emulator, extended for KubeSpawner.

Run as ``python -m devstack.kube`` (see :mod:`devstack.kube`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import ctypes
import importlib
import itertools
import json
import logging
import os
import secrets
import signal
import sys
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from .kube_checks import (
    KUBE_VERSION,
    KUBELET_AGENT,
    RESOURCES,
    _now,
    _qos_class,
    field_selector_matches,
    label_selector_matches,
    validate_manifest,
)
from .kubelet import FakeKubelet

if TYPE_CHECKING:
    import aiohttp.web

# --------------------------------------------------------------------------------------
# The server process
# --------------------------------------------------------------------------------------


def _kmock() -> Any:
    """kmock, imported by name: it needs Python >= 3.11, and mypy on Python 3.10 must not."""
    return importlib.import_module("kmock")


class _StandInBehaviour:
    """What the stand-in changes in kmock's ``KubernetesEmulator``; mixed in before it by
    :func:`_make_emulator_class` (``super()`` here is the emulator)."""

    __slots__ = ()
    # the emulator's attrs fields (declared in _make_emulator_class) and kmock's own state
    kube_version: str
    reject_invalid: bool
    validate: bool
    created: list[dict[str, Any]]
    deleted: list[dict[str, Any]]
    request_log: list[dict[str, Any]]
    kubelet: Any
    _last_rv: int
    _buses: Any
    _lock: Any
    _objects: Any

    def next_rv(self) -> str:
        raise NotImplementedError

    # -- entry point: watch=True, the stand-in's own endpoints ---------------------------
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
        return cast("aiohttp.web.StreamResponse", await cast("Any", super()).__call__(raw))

    async def _serve_standin(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.Response:
        import aiohttp.web

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

    # -- state changes: metadata the API server owns, recording, validation -------------
    async def _handle(self, request: Any) -> aiohttp.web.StreamResponse:
        kmock = _kmock()
        emulator = cast("Any", super())
        res = request.resource
        if res is None:
            return cast("aiohttp.web.StreamResponse", await emulator._handle(request))
        kind, namespaced = RESOURCES.get(
            (f"{res.group}/{res.version}" if res.group else res.version, res.plural),
            (str(res.plural).capitalize(), True),
        )
        actor = request.headers.get("X-Standin-Actor", "client")
        record: dict[str, Any] | None = None
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):
            record = self._prepare_create(request, kind, namespaced, actor)
        elif request.action == kmock.action.UPDATE and isinstance(request.data, dict):
            request.data.setdefault("metadata", {})["resourceVersion"] = self.next_rv()
        elif request.action == kmock.action.DELETE and request.name is not None:
            self.deleted.append(
                {"kind": kind, "namespace": request.namespace, "name": request.name,
                 "options": request.data if isinstance(request.data, dict) else None,
                 "actor": actor}
            )  # fmt: skip
        try:
            response = cast("aiohttp.web.StreamResponse", await emulator._handle(request))
        except kmock.KubernetesError as exc:
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
            "errors": validate_manifest(sent, self.kube_version) if self.validate else [],
            "status": 0,
            "actor": actor,
        }
        self.created.append(record)
        if self.reject_invalid and record["errors"]:
            record["status"] = 422
            raise _kmock().KubernetesError(
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

    # -- reads: selectors, list resourceVersion, watch timeouts --------------------------
    def _selected(self, request: Any, obj: Mapping[str, Any]) -> bool:
        labels = obj.get("metadata", {}).get("labels") or {}
        label_sel = request.params.get("labelSelector", "")
        field_sel = request.params.get("fieldSelector", "")
        return label_selector_matches(labels, label_sel) and field_selector_matches(obj, field_sel)

    def _watched(self, request: Any, obj: Mapping[str, Any]) -> bool:
        """Whether a watch ``request`` (namespace, name, selectors) covers ``obj``."""
        meta = obj.get("metadata", {})
        if request.namespace is not None and meta.get("namespace") != request.namespace:
            return False
        if request.name is not None and meta.get("name") != request.name:
            return False
        return self._selected(request, obj)

    async def _serve_list(self, request: Any) -> Any:
        listing = cast("dict[str, Any]", await cast("Any", super())._serve_list(request))
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
                    if self._watched(request, event.get("object", {})):
                        yield event
            finally:
                await stream.aclose()
        finally:
            await bus.unmark(mark)

    # -- state kept across a restart (``--state-file``): what etcd keeps ---------------------
    def dump_state(self) -> list[dict[str, Any]]:
        """Every live object, as ``{"resource": "<group/version/plural>", "object": {...}}``."""
        return [
            {"resource": f"{res.group}/{res.version}/{res.plural}".lstrip("/"), "object": obj.raw}
            for (res, _, _), obj in self._objects.items()
            if not obj.deleted
        ]

    def load_state(self, state: list[dict[str, Any]]) -> None:
        """Put back objects from :meth:`dump_state`; resource versions continue after theirs."""
        kmock = _kmock()
        last = 0
        for item in state:
            meta = item["object"].get("metadata", {})
            key = (kmock.resource(item["resource"]), meta.get("namespace"), meta.get("name"))
            self._objects[key] = item["object"]
            last = max(last, int(meta.get("resourceVersion") or 0))
        while self._last_rv < last:
            self.next_rv()

    # -- helpers for the kubelet (same process) -------------------------------------------
    def live_objects(self, plural: str, group_version: str = "v1") -> list[dict[str, Any]]:
        wanted = _kmock().resource(group_version + "/" + plural)
        return [
            obj.raw for (res, _, _), obj in self._objects.items()
            if res == wanted and not obj.deleted
        ]  # fmt: skip


def _make_emulator_class() -> type[Any]:
    """Build the kmock subclass lazily: only the server process imports kmock/aiohttp."""
    import attrs

    @attrs.define(kw_only=True)
    class StandInEmulator(_StandInBehaviour, _kmock().KubernetesEmulator):  # type: ignore[misc]
        kube_version: str = KUBE_VERSION
        reject_invalid: bool = False
        validate: bool = True
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

    return StandInEmulator


async def _serve(args: argparse.Namespace) -> None:
    import aiohttp.web

    # Warm the schema caches (a first validation takes seconds) before answering anything.
    for kind in ("Pod", "PersistentVolume", "PersistentVolumeClaim", "Secret", "Service", "Event"):
        validate_manifest({"apiVersion": "v1", "kind": kind}, args.kube_version)
    emulator_cls = _make_emulator_class()
    emulator = emulator_cls(
        kube_version=args.kube_version, reject_invalid=args.reject_invalid, validate=args.validate
    )
    state_file = Path(args.state_file) if args.state_file else None
    if state_file is not None and state_file.exists():
        emulator.load_state(json.loads(state_file.read_text()))
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
                singleuser_python=args.singleuser_python,
                lister=lambda: emulator.live_objects("pods"),
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
        if state_file is not None:
            state_file.write_text(json.dumps(emulator.dump_state()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m devstack.kube")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--ready-file", required=True)
    parser.add_argument("--workdir", required=True)
    parser.add_argument("--kube-version", default=KUBE_VERSION)
    parser.add_argument("--reject-invalid", action="store_true")
    parser.add_argument("--no-validate", dest="validate", action="store_false")
    parser.add_argument("--no-kubelet", dest="kubelet", action="store_false")
    parser.add_argument("--no-servers", dest="run_servers", action="store_false")
    parser.add_argument("--pod-ip", default="auto", help="'auto': a free 127.x.y.z per pod")
    parser.add_argument("--kubelet-interval", type=float, default=0.1)
    parser.add_argument(
        "--singleuser-python", default=None, help="interpreter of the servers (default: ours)"
    )
    parser.add_argument(
        "--state-file", default="", help="keep the objects here across a restart (as etcd)"
    )
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
