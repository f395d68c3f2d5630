"""A Kubernetes API stand-in that a real JupyterHub with KubeSpawner can spawn against.

No kube-apiserver can run here, so the API is kmock's ``KubernetesEmulator`` (an in-memory
object store with list/watch/create/patch/delete over HTTP), served by aiohttp in a separate
process (``python -m devstack.kube --port 0 --ready-file F``) and extended with what
KubeSpawner relies on:

- ``?watch=True`` (kubernetes_asyncio) is normalised to ``watch=true`` (what kmock matches);
- objects get ``uid``, ``resourceVersion``, ``creationTimestamp`` and ``generateName``
  names; pods start with ``status.phase = Pending``; lists carry a ``resourceVersion``;
- label and field selectors are applied to lists and watches, and ``timeoutSeconds`` ends
  a watch, so KubeSpawner's reflectors behave as against a real API server;
- every object created is recorded as sent, with the errors from
  :func:`validate_manifest` (``kubernetes-validate``, strict schemas of :data:`KUBE_VERSION`);
- a :class:`~devstack.kubelet.FakeKubelet` in the same process runs pods as local
  ``jupyterhub.singleuser`` processes and reports them Running.

:class:`KubeStandIn` starts that process (for the tests and ``make demo``), writes a
kubeconfig for the hub (``KUBECONFIG``; KubeSpawner reads it once per process) and reads
objects and records back.
Stop the hub (and so KubeSpawner's reflectors) before :meth:`KubeStandIn.stop`.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from .kube_checks import (
    DEFAULT_NAMESPACE,
    KUBE_VERSION,
    KUBELET_AGENT,
    REPO_ROOT,
    RESOURCES,
    CreatedObject,
    field_selector_matches,
    label_selector_matches,
    validate_manifest,
)
from .kube_server import main
from .tls import tls

__all__ = [
    "DEFAULT_NAMESPACE",
    "KUBELET_AGENT",
    "KUBE_VERSION",
    "REPO_ROOT",
    "RESOURCES",
    "CreatedObject",
    "KubeStandIn",
    "field_selector_matches",
    "label_selector_matches",
    "main",
    "validate_manifest",
]

# --------------------------------------------------------------------------------------
# The test-side handle
# --------------------------------------------------------------------------------------


@dataclass
class KubeStandIn:
    """Run the stand-in process; a kubeconfig for the hub; read objects and records back.

    ``run_servers``: the fake kubelet starts ``jupyterhub.singleuser`` for each pod (else it
    only reports pods Running). ``pod_ip``: ``"auto"`` gives every pod its own free
    loopback address (so pods keep KubeSpawner's default port 8888), or a fixed address.
    ``singleuser_python``: the interpreter that runs the servers (default the stand-in's;
    the Rucio tests use the notebook environment ``.venv-rucio``).
    ``keep_state``: the objects survive :meth:`stop` + :meth:`start` (written to
    ``workdir/kube-state.json`` at stop, read back at start), as a real API server's do
    in etcd; :meth:`start` again keeps the port, so a hub's kubeconfig stays valid.
    """

    workdir: Path
    namespace: str = DEFAULT_NAMESPACE
    kubelet: bool = True
    run_servers: bool = True
    pod_ip: str = "auto"
    kube_version: str = KUBE_VERSION
    reject_invalid: bool = False
    keep_state: bool = False
    validate: bool = True  # False: objects are recorded without schema checks (scale runs)
    port: int = 0
    singleuser_python: str | None = None
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
            sys.executable, "-m", "devstack.kube", "--port", str(self.port),
            "--ready-file", str(ready), "--workdir", str(self.workdir),
            "--kube-version", self.kube_version, "--pod-ip", self.pod_ip,
            "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        cmd += [] if self.kubelet else ["--no-kubelet"]
        cmd += [] if self.run_servers else ["--no-servers"]
        cmd += ["--reject-invalid"] if self.reject_invalid else []
        cmd += ["--singleuser-python", self.singleuser_python] if self.singleuser_python else []
        cmd += ["--state-file", str(self.workdir / "kube-state.json")] if self.keep_state else []
        cmd += [] if self.validate else ["--no-validate"]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
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
        return httpx.request(method, f"{self.url}{path}", timeout=10, verify=tls(), **kwargs)

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
