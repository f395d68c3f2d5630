"""A fake kubelet for the Kubernetes API stand-in (:mod:`devstack.kube`).

It runs inside the stand-in process and talks to the API over HTTP like a real kubelet
(requests carry ``X-Standin-Actor: kubelet`` so the stand-in can tell them apart). Every
``interval`` it lists pods and:

- gives each new Pending pod an address (by default its own free loopback address
  ``127.x.y.z``, so every pod can listen on KubeSpawner's default port 8888), posts the
  ``Scheduled``/``Started`` events, optionally starts the pod's single-user server as a
  local ``python -m jupyterhub.singleuser`` process with the pod's environment (``env``
  values, ``secretKeyRef``, ``configMapKeyRef`` and ``fieldRef`` are resolved) and its
  container port, and patches the pod's status to Running/Ready; an ``emptyDir`` volume
  the container mounts becomes a directory of the pod's own (``<pod dir>/volumes/<name>``)
  and environment values naming a path under its ``mountPath`` are rewritten to it (a local
  process cannot mount, and two pods must not share ``/run/...``);
- stops the process of a pod that was deleted (or marked for deletion);
- reports a process that exits on its own as a terminated container (phase Failed or
  Succeeded), as a real kubelet would with ``restartPolicy: OnFailure`` giving up.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import logging
import os
import random
import signal
import socket
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

log = logging.getLogger("fake-kubelet")

ACTOR_HEADERS = {"X-Standin-Actor": "kubelet", "User-Agent": "standin-kubelet"}
DEFAULT_PORT = 8888
SINGLEUSER = [sys.executable, "-m", "jupyterhub.singleuser"]
_PR_SET_PDEATHSIG = 1

NODE_NAME = "standin-node"
"""The one node of the stand-in: every running pod's ``spec.nodeName``."""


def _now() -> str:
    return datetime.datetime.now(tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _port_free(ip: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        try:
            s.bind((ip, port))
        except OSError:
            return False
        return True


#: Runs the pod's command after asking the kernel to SIGTERM it when the stand-in dies
#: (PR_SET_PDEATHSIG), without a ``preexec_fn``.
_DIE_WITH_PARENT = (
    "import ctypes, os, sys; ctypes.CDLL(None).prctl(1, 15); os.execv(sys.argv[1], sys.argv[1:])"
)


def empty_dir_mounts(pod: dict[str, Any], pod_dir: Path) -> dict[str, Path]:
    """``mountPath`` -> local directory for each ``emptyDir`` volume of the first container."""
    spec = pod["spec"]
    empty = {v["name"] for v in spec.get("volumes") or [] if "emptyDir" in v}
    mounts = spec["containers"][0].get("volumeMounts") or []
    return {
        m["mountPath"].rstrip("/"): pod_dir / "volumes" / m["name"]
        for m in mounts
        if m.get("name") in empty and m.get("mountPath", "").startswith("/")
    }


def local_paths(env: dict[str, str], mounts: dict[str, Path]) -> dict[str, str]:
    """``env`` with values that are a mount path, or a path under one, moved to its directory."""
    moved = dict(env)
    for key, value in env.items():
        for mount, local in mounts.items():
            if value == mount or value.startswith(f"{mount}/"):
                moved[key] = str(local) + value[len(mount) :]
                break
    return moved


def singleuser_command(container: dict[str, Any], python: str | None = None) -> list[str]:
    """The local command for a container: ``jupyterhub-singleuser`` (or the image's CMD) maps
    to ``python -m jupyterhub.singleuser`` with the container's own arguments kept.

    ``python`` is the interpreter standing in for the image (default: this one, whose
    environment holds the hub stack; the Rucio tests use ``.venv-rucio``'s, the notebook
    environment with the Rucio client)."""
    argv = [*(container.get("command") or []), *(container.get("args") or [])]
    rest: list[str] = []
    for i, arg in enumerate(argv):
        if arg == "jupyterhub.singleuser" or Path(arg).name == "jupyterhub-singleuser":
            rest = argv[i + 1 :]
            break
    server = [python, *SINGLEUSER[1:]] if python else SINGLEUSER
    cmd = [*server, *[a for a in rest if a.startswith("-")]]
    if os.geteuid() == 0 and "--allow-root" not in cmd:
        cmd.append("--allow-root")
    return cmd


@dataclass
class PodRun:
    """A pod the kubelet has started."""

    namespace: str
    name: str
    uid: str
    ip: str
    port: int
    home: Path
    log_path: Path
    started_at: str
    proc: asyncio.subprocess.Process | None = None
    exit_reported: bool = False
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)

    def describe(self) -> dict[str, Any]:
        return {
            "namespace": self.namespace,
            "name": self.name,
            "uid": self.uid,
            "ip": self.ip,
            "port": self.port,
            "pid": self.proc.pid if self.proc else None,
            "returncode": self.proc.returncode if self.proc else None,
            "log": str(self.log_path),
            "cmd": self.cmd,
        }


class FakeKubelet:
    """Turns Pending pods into Running ones (and local processes); see the module doc."""

    def __init__(
        self,
        api_url: str,
        workdir: Path,
        *,
        run_servers: bool = True,
        pod_ip: str = "auto",
        interval: float = 0.1,
        singleuser_python: str | None = None,
        lister: Callable[[], list[dict[str, Any]]] | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        self.singleuser_python = singleuser_python
        #: reads the live pods without HTTP (the stand-in's own store, same process): a
        #: list over HTTP every ``interval`` serialises every pod, which at a thousand pods
        #: costs the stand-in more than the hub's own calls
        self.lister = lister
        self.workdir = workdir
        self.run_servers = run_servers
        self.pod_ip = pod_ip
        self.interval = interval
        self.pods: dict[str, PodRun] = {}
        self._task: asyncio.Task[None] | None = None
        self._session: Any = None

    def describe(self) -> list[dict[str, Any]]:
        return [run.describe() for run in self.pods.values()]

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await asyncio.gather(*(self._kill(run) for run in self.pods.values()))
        self.pods.clear()

    # -- HTTP --------------------------------------------------------------------------
    async def _request(self, method: str, path: str, body: Any = None) -> Any:
        headers = dict(ACTOR_HEADERS)
        if method == "PATCH":
            headers["Content-Type"] = "application/merge-patch+json"
        async with self._session.request(
            method, f"{self.api_url}{path}", json=body, headers=headers
        ) as r:
            if r.status == 404:
                return None
            r.raise_for_status()
            return await r.json()

    # -- the loop --------------------------------------------------------------------------
    async def _run(self) -> None:
        import aiohttp

        async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session:
            self._session = session
            while True:
                try:
                    await self._sync()
                except asyncio.CancelledError:
                    raise
                except Exception:
                    log.exception("kubelet sync failed")
                await asyncio.sleep(self.interval)

    async def _sync(self) -> None:
        if self.lister is not None:
            pods = self.lister()
        else:
            listing = await self._request("GET", "/api/v1/pods")
            pods = listing["items"] if listing else []
        live = {}
        for pod in pods:
            meta = pod.get("metadata", {})
            uid = meta.get("uid", "")
            if meta.get("deletionTimestamp"):
                continue
            live[uid] = pod
            if uid not in self.pods and pod.get("status", {}).get("phase") == "Pending":
                await self._start_pod(pod)
        for uid in [u for u in self.pods if u not in live]:
            run = self.pods.pop(uid)
            log.info("pod %s/%s deleted: stopping", run.namespace, run.name)
            await self._kill(run)
        for run in self.pods.values():
            if run.proc is not None and run.proc.returncode is not None and not run.exit_reported:
                run.exit_reported = True
                await self._report_exit(run, live[run.uid])

    def _allocate_ip(self, port: int) -> str:
        if self.pod_ip != "auto":
            return self.pod_ip
        taken = {run.ip for run in self.pods.values()}
        for _ in range(200):
            ip = (
                f"127.{random.randint(100, 199)}.{random.randint(0, 255)}.{random.randint(2, 254)}"  # noqa: S311
            )
            if ip not in taken and _port_free(ip, port):
                return ip
        raise RuntimeError("no free loopback address for a pod")

    async def _resolve_env(self, pod: dict[str, Any], ip: str) -> dict[str, str]:
        namespace = pod["metadata"]["namespace"]
        container = pod["spec"]["containers"][0]
        env: dict[str, str] = {}
        for var in container.get("env") or []:
            name = var["name"]
            if "value" in var:
                env[name] = str(var["value"])
                continue
            source = var.get("valueFrom") or {}
            if ref := source.get("secretKeyRef"):
                secret = await self._request(
                    "GET", f"/api/v1/namespaces/{namespace}/secrets/{ref['name']}"
                )
                data = (secret or {}).get("data") or {}
                if ref["key"] in data:
                    env[name] = base64.b64decode(data[ref["key"]]).decode()
                elif ref["key"] in ((secret or {}).get("stringData") or {}):
                    env[name] = secret["stringData"][ref["key"]]
            elif ref := source.get("configMapKeyRef"):
                cm = await self._request(
                    "GET", f"/api/v1/namespaces/{namespace}/configmaps/{ref['name']}"
                )
                if cm and ref["key"] in (cm.get("data") or {}):
                    env[name] = cm["data"][ref["key"]]
            elif ref := source.get("fieldRef"):
                values = {
                    "metadata.name": pod["metadata"]["name"],
                    "metadata.namespace": namespace,
                    "metadata.uid": pod["metadata"]["uid"],
                    "status.podIP": ip,
                    "status.hostIP": "127.0.0.1",
                    "spec.nodeName": NODE_NAME,
                }
                env[name] = values.get(ref.get("fieldPath", ""), "")
        return env

    async def _start_pod(self, pod: dict[str, Any]) -> None:
        meta = pod["metadata"]
        namespace, name, uid = meta["namespace"], meta["name"], meta["uid"]
        container = pod["spec"]["containers"][0]
        ports = container.get("ports") or [{}]
        port = int(ports[0].get("containerPort") or DEFAULT_PORT)
        ip = self._allocate_ip(port)
        pod_dir = self.workdir / "pods" / f"{namespace}-{name}-{uid[:8]}"
        home = pod_dir / "home"
        home.mkdir(parents=True, exist_ok=True)
        run = PodRun(namespace, name, uid, ip, port, home, pod_dir / "server.log", _now())
        self.pods[uid] = run
        await self._event(pod, "Scheduled", f"Successfully assigned {namespace}/{name}")
        if self.run_servers:
            await self._run_server(pod, run)
        await self._event(pod, "Started", f"Started container {container.get('name', '')}")
        # the scheduler's binding sets spec.nodeName; the stand-in has one node
        await self._request(
            "PATCH",
            f"/api/v1/namespaces/{namespace}/pods/{name}",
            {"spec": {"nodeName": NODE_NAME}, "status": _running_status(pod, run)},
        )

    async def _run_server(self, pod: dict[str, Any], run: PodRun) -> None:
        """Start the pod's single-user server as a local process on ``run.ip:run.port``."""
        env = await self._resolve_env(pod, run.ip)
        if service_url := env.get("JUPYTERHUB_SERVICE_URL"):
            parts = urlsplit(service_url)
            env["JUPYTERHUB_SERVICE_URL"] = urlunsplit(
                parts._replace(netloc=f"{run.ip}:{parts.port or run.port}")
            )
        base_env = {
            k: v for k, v in os.environ.items()
            if k in {"PATH", "LANG", "LC_ALL", "PYTHONPATH", "TMPDIR", "SSL_CERT_FILE"}
        }  # fmt: skip
        mounts = empty_dir_mounts(pod, run.home.parent)
        for local in mounts.values():
            local.mkdir(parents=True, exist_ok=True)
        run.env = {**base_env, **local_paths(env, mounts), "HOME": str(run.home)}
        run.cmd = singleuser_command(pod["spec"]["containers"][0], self.singleuser_python)
        with run.log_path.open("ab") as out:
            run.proc = await asyncio.create_subprocess_exec(
                sys.executable,
                "-c",
                _DIE_WITH_PARENT,
                *run.cmd,
                cwd=run.home,
                env=run.env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=out,
                stderr=asyncio.subprocess.STDOUT,
                start_new_session=True,  # own group: stopping the pod stops its children
            )
        log.info(
            "pod %s/%s: pid %s on %s:%s", run.namespace, run.name, run.proc.pid, run.ip, run.port
        )

    async def _report_exit(self, run: PodRun, pod: dict[str, Any]) -> None:
        if run.proc is None:
            return
        code = run.proc.returncode or 0
        log.info("pod %s/%s: process exited with %s", run.namespace, run.name, code)
        finished = _now()
        statuses = [
            {
                **cs,
                "ready": False,
                "started": False,
                "state": {
                    "terminated": {
                        "exitCode": code,
                        "reason": "Completed" if code == 0 else "Error",
                        "startedAt": run.started_at,
                        "finishedAt": finished,
                    }
                },
            }
            for cs in pod.get("status", {}).get("containerStatuses", [])
        ]
        conditions = [
            {**c, "status": "False"} if c["type"] in {"Ready", "ContainersReady"} else c
            for c in pod.get("status", {}).get("conditions", [])
        ]
        status = {
            "phase": "Succeeded" if code == 0 else "Failed",
            "containerStatuses": statuses,
            "conditions": conditions,
        }
        await self._request(
            "PATCH", f"/api/v1/namespaces/{run.namespace}/pods/{run.name}", {"status": status}
        )

    async def _event(self, pod: dict[str, Any], reason: str, message: str) -> None:
        meta = pod["metadata"]
        now = _now()
        event = {
            "apiVersion": "v1",
            "kind": "Event",
            "metadata": {"generateName": f"{meta['name']}.", "namespace": meta["namespace"]},
            "involvedObject": {
                "apiVersion": "v1",
                "kind": "Pod",
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta["uid"],
            },
            "reason": reason,
            "message": message,
            "type": "Normal",
            "source": {"component": "standin-kubelet"},
            "firstTimestamp": now,
            "lastTimestamp": now,
            "count": 1,
        }
        await self._request("POST", f"/api/v1/namespaces/{meta['namespace']}/events", event)

    async def _kill(self, run: PodRun, grace: float = 5) -> None:
        proc = run.proc
        if proc is None or proc.returncode is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            await asyncio.wait_for(proc.wait(), grace)
        except asyncio.TimeoutError:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            await proc.wait()


def _running_status(pod: dict[str, Any], run: PodRun) -> dict[str, Any]:
    """The ``status`` of a pod whose containers all run (every condition true, no restarts)."""
    return {
        "phase": "Running",
        "hostIP": "127.0.0.1",
        "podIP": run.ip,
        "podIPs": [{"ip": run.ip}],
        "startTime": run.started_at,
        "conditions": [
            {"type": t, "status": "True", "lastTransitionTime": run.started_at}
            for t in ("PodScheduled", "Initialized", "ContainersReady", "Ready")
        ],
        "containerStatuses": [
            {
                "name": c.get("name", ""),
                "image": c.get("image", ""),
                "imageID": f"standin://{c.get('image', '')}",
                "containerID": f"standin://{run.uid}/{c.get('name', '')}",
                "ready": True,
                "started": True,
                "restartCount": 0,
                "state": {"running": {"startedAt": run.started_at}},
            }
            for c in pod["spec"]["containers"]
        ],
    }
