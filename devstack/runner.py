"""Run the demo: the loopback provider, JupyterHub (which starts the proxy), until a signal."""

from __future__ import annotations

import importlib.util
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import IO, Any

import httpx

from .accounts import load_accounts, render_table
from .hubconfig import PROFILE_ANNOTATION, demo_profile_list, render_hub_config
from .idp import IdPError, IdPProcess, default_clients, free_port, make_rsa_jwk
from .kube import CreatedObject, KubeStandIn
from .processes import Recorded, descendants, terminate
from .settings import DemoSettings
from .tls import tls

__all__ = ["DemoError", "run"]


class DemoError(RuntimeError):
    """The demo cannot start or a process it started died (the message says which)."""


class _Stop(Exception):  # noqa: N818 - a control-flow signal, not an error
    """SIGINT or SIGTERM arrived."""


def _raise_stop(signum: int, frame: FrameType | None) -> None:
    raise _Stop(signum)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """Whether a server could listen on ``host:port`` now.

    The test bind uses ``SO_REUSEADDR``, as configurable-http-proxy (node) and the provider
    do: connections left in TIME_WAIT by a demo that just stopped do not count, a socket
    listening on the port (on ``host`` or on all interfaces) does.
    """
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
        return True


def _private_file(path: Path, make: Any) -> str:
    """The content of ``path``, created (mode 0600) with ``make()`` if missing."""
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(make())
    return path.read_text()


def _tail(path: Path, lines: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except FileNotFoundError:
        return "(no log)"


class Demo:
    """The processes of one demo run and their orderly start and stop."""

    def __init__(self, settings: DemoSettings) -> None:
        self.settings = settings
        self.idp: IdPProcess | None = None
        self.hub: subprocess.Popen[bytes] | None = None
        self.hub_log_path = settings.workdir / "hub.log"
        self._hub_log: IO[bytes] | None = None
        self.recorded: Recorded = {}
        self.kube: KubeStandIn | None = None
        self._pods_seen = 0

    def _node_bin(self) -> Path:
        bin_dir = self.settings.repo_root / "node_modules" / ".bin"
        if not (bin_dir / "configurable-http-proxy").exists():
            raise DemoError(
                f"{bin_dir}/configurable-http-proxy is missing: run `npm ci` in "
                f"{self.settings.repo_root} (`make demo` does)"
            )
        return bin_dir

    def start_idp(self) -> IdPProcess:
        work = self.settings.workdir
        jwks = json.loads(
            _private_file(
                work / "idp-jwks.json",
                lambda: json.dumps(
                    {n: {"keys": [make_rsa_jwk(f"{n}-demo-key")]} for n in ("iam", "checkin")}
                ),
            )
        )
        (work / "idp.log").write_bytes(b"")
        self.idp = IdPProcess(
            self.settings.repo_root,
            work,
            port=self.settings.idp_port,
            clients=default_clients([self.settings.callback_url]),
            provider_jwks=jwks,
            new_session=True,
        )
        try:
            self.idp.start()
        except IdPError as exc:
            raise DemoError(str(exc)) from exc
        return self.idp

    def start_kube(self) -> KubeStandIn:
        """The Kubernetes API stand-in with its fake kubelet (pods run as local processes)."""
        missing = [m for m in ("kmock", "kubernetes_validate", "kubespawner") if not _has(m)]
        if missing:
            raise DemoError(
                f"the Kubernetes stand-in needs {', '.join(missing)} (Python >= 3.11, "
                "`pip install -e '.[demo,kubernetes]'`); or run with --spawner local"
            )
        self.settings.pods_dir.mkdir(parents=True, exist_ok=True)
        self.kube = KubeStandIn(self.settings.kube_workdir)
        try:
            self.kube.start(timeout=60)
        except RuntimeError as exc:
            raise DemoError(str(exc)) from exc
        return self.kube

    def report_pods(self) -> list[str]:
        """Print a line for, and save, every pod manifest the spawner sent since last time."""
        if self.kube is None or self.kube.proc is None:
            return []
        try:
            pods = self.kube.created("Pod")
        except httpx.HTTPError:
            return []
        lines = []
        for record in pods[self._pods_seen :]:
            path = self.settings.pods_dir / f"{record.name}.json"
            path.write_text(json.dumps(record.manifest, indent=2) + "\n")
            lines.append(describe_pod(record, path))
            lines += [f"    schema error: {error}" for error in record.errors[:10]]
        self._pods_seen = max(self._pods_seen, len(pods))
        for line in lines:
            print(line, flush=True)
        return lines

    def start_hub(self, issuer: str, timeout: float = 90) -> None:
        work = self.settings.workdir
        config = work / "jupyterhub_config.py"
        config.write_text(render_hub_config(self.settings, issuer, free_port(), free_port()))
        crypt_key = _private_file(work / "crypt_key", lambda: secrets.token_hex(32)).strip()
        env = dict(os.environ)
        path = env.get("PATH", "")
        root = str(self.settings.repo_root)
        env.update(
            JUPYTERHUB_CRYPT_KEY=crypt_key,
            PATH=f"{self._node_bin()}{os.pathsep}{path}",
            PYTHONPATH=os.pathsep.join(filter(None, [root, env.get("PYTHONPATH")])),
        )
        if self.kube is not None:
            env.update(self.kube.env)  # KUBECONFIG
        self._hub_log = self.hub_log_path.open("wb")
        self.hub = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=work,
            env=env,
            stdout=self._hub_log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_children()
            try:
                hub_api = f"{self.settings.hub_url}/hub/api/"
                if httpx.get(hub_api, timeout=2, verify=tls()).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise DemoError(
            f"jupyterhub did not answer within {timeout}s; log tail:\n" + self._hub_tail()
        )

    def _hub_tail(self) -> str:
        return f"--- {self.hub_log_path} ---\n{_tail(self.hub_log_path)}"

    def check_children(self) -> None:
        """Record the process tree; raise :class:`DemoError` if the hub, IdP or stand-in died."""
        roots = [p.pid for p in (self.hub,) if p is not None]
        kube_proc = self.kube.proc if self.kube is not None else None
        if kube_proc is not None:
            roots.append(kube_proc.pid)
        if self.idp is not None and self.idp.pid is not None:
            roots.append(self.idp.pid)
        self.recorded.update(descendants(roots))
        if self.hub is not None and self.hub.poll() is not None:
            raise DemoError(f"jupyterhub exited with {self.hub.returncode}\n{self._hub_tail()}")
        if self.idp is not None and not self.idp.running:
            raise DemoError(f"the OIDC provider exited\n--- idp.log ---\n{self.idp.log_tail()}")
        if kube_proc is not None and kube_proc.poll() is not None and self.kube is not None:
            raise DemoError(
                f"the Kubernetes stand-in exited with {kube_proc.returncode}\n"
                f"--- {self.kube.log_path} ---\n{self.kube.log_tail(40)}"
            )

    def stop(self) -> None:
        """Stop the hub (it stops its servers and the proxy), the stand-in (and the
        processes of its pods), the IdP, then any leftover."""
        hub, self.hub = self.hub, None
        if hub is not None:
            self.recorded.update(descendants([hub.pid]))
            if hub.poll() is None:
                hub.send_signal(signal.SIGTERM)
                try:
                    hub.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    os.killpg(hub.pid, signal.SIGKILL)
                    hub.wait(timeout=10)
        kube, self.kube = self.kube, None
        if kube is not None:
            if kube.proc is not None:
                self.recorded.update(descendants([kube.proc.pid]))
            kube.stop()
        if self.idp is not None:
            self.idp.close()
            self.idp = None
        terminate(self.recorded)
        if self._hub_log is not None:
            self._hub_log.close()
            self._hub_log = None


def _has(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def _quantity(value: object) -> str:
    return str(value) if value is not None else "-"


def describe_pod(record: CreatedObject, path: Path) -> str:
    """One line about a pod manifest: who, which profile, uid/gid, limits, schema errors."""
    manifest = record.manifest
    meta = manifest.get("metadata") or {}
    annotations = meta.get("annotations") or {}
    spec = manifest.get("spec") or {}
    security = spec.get("securityContext") or {}
    containers = spec.get("containers") or [{}]
    limits = (containers[0].get("resources") or {}).get("limits") or {}
    shown = ", ".join(f"{k}={_quantity(v)}" for k, v in sorted(limits.items())) or "none"
    return (
        f"pod {record.namespace}/{record.name}: "
        f"user={annotations.get('hub.jupyter.org/username', '?')} "
        f"profile={annotations.get(PROFILE_ANNOTATION) or '-'} "
        f"uid={_quantity(security.get('runAsUser'))} "
        f"runAsGroup={_quantity(security.get('runAsGroup'))} "
        f"limits[{shown}] schema_errors={len(record.errors)} -> {path}"
    )


def _profiles_text(settings: DemoSettings) -> list[str]:
    lines = []
    for profile in demo_profile_list(settings.provider):
        groups = profile.get("allowed_groups")
        who = f"members of {', '.join(groups)}" if groups else "everyone"
        lines.append(f"    {profile['slug']:<14} {profile['display_name']}  ({who})")
    return lines


def _banner(settings: DemoSettings, issuer: str) -> str:
    accounts = load_accounts(settings.users_file, settings.provider)
    work = settings.workdir
    logs = [work / "hub.log", work / "idp.log"]
    if settings.spawner == "kube":
        logs.append(settings.kube_workdir / "kube-standin.log")
        spawner = [
            "  spawner:       IRISSpawner against a local Kubernetes API stand-in; its fake",
            "                 kubelet runs each pod as a local jupyterhub-singleuser process",
            f"  pod specs:     every pod manifest is written to {settings.pods_dir}/<pod>.json",
            "                 and summarised here (user, profile, uid, runAsGroup, limits)",
            "  profiles:",
            *_profiles_text(settings),
        ]
    else:
        spawner = ["  spawner:       SimpleLocalProcessSpawner (local processes, no profiles)"]
    return "\n".join(
        [
            "",
            f"iris-jupyterhub demo: open {settings.hub_url}",
            f"  provider:      {issuer}  ({settings.provider.idp_name})",
            f"  authenticator: {settings.provider.authenticator}",
            *spawner,
            f"  logs:          {'  '.join(str(p) for p in logs)}",
            "",
            "Demo accounts (password = <login>-pass):",
            render_table(accounts),
            "",
            "Ctrl-C stops everything.",
        ]
    )


def run(settings: DemoSettings) -> int:
    """Start everything, print the URL and accounts, wait; 0 after SIGINT/SIGTERM."""
    if not port_is_free(settings.port):
        print(f"port {settings.port} is in use: stop what uses it or pass --port", file=sys.stderr)
        return 2
    settings.workdir.mkdir(parents=True, exist_ok=True)
    previous = {s: signal.signal(s, _raise_stop) for s in (signal.SIGINT, signal.SIGTERM)}
    demo = Demo(settings)
    code = 0
    try:
        print(f"starting the OIDC provider on port {settings.idp_port} ...", flush=True)
        issuer = demo.start_idp().issuer(settings.provider.idp_name)
        if settings.spawner == "kube":
            print("starting the Kubernetes API stand-in and its fake kubelet ...", flush=True)
            demo.start_kube()
        print("starting JupyterHub and configurable-http-proxy ...", flush=True)
        demo.start_hub(issuer)
        print(_banner(settings, issuer), flush=True)
        while True:
            demo.check_children()
            demo.report_pods()
            time.sleep(0.5)
    except _Stop:
        print("\nstopping ...", flush=True)
    except DemoError as exc:
        print(f"\ndemo failed: {exc}", file=sys.stderr, flush=True)
        code = 1
    finally:
        for sig in previous:
            signal.signal(sig, signal.SIG_IGN)
        demo.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    print("demo stopped", flush=True)
    return code
