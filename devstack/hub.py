"""A real JupyterHub process with the real configurable-http-proxy, for whole-stack tests."""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import httpx

from .tls import tls

REPO_ROOT = Path(__file__).resolve().parents[1]


def node_bin_path() -> str:
    """PATH with the repo's node_modules/.bin first (configurable-http-proxy)."""
    bin_dir = REPO_ROOT / "node_modules" / ".bin"
    if not (bin_dir / "configurable-http-proxy").exists():
        raise RuntimeError("configurable-http-proxy is missing: run `npm ci` (or `make install`)")
    return f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"


def spawn_page_status(refused: int) -> int:
    """The HTTP status of the spawn page shown again with a refusal (an ``HTTPError`` raised
    from the spawner's options, ``refused``): JupyterHub >= 5.4 answers with that status
    (jupyterhub/jupyterhub#5146), 5.3 (the z2jh 4.2.0 hub) with 200. Either way the spawn is
    refused and the form shows the message again."""
    from jupyterhub import version_info

    return refused if tuple(version_info[:2]) >= (5, 4) else 200


class HubProcess:
    """Start ``jupyterhub`` with a generated config in ``workdir``; drive it over HTTP.

    ``config`` is Python source appended to a base config that sets ports, database,
    proxy and a local-process spawner; it can refer to ``c`` as usual.
    """

    def __init__(self, workdir: Path, port: int, config: str, env: dict[str, str] | None = None):
        self.workdir = workdir
        self.port = port
        self.config = config
        self.env = env or {}
        # an explicit (even empty) JUPYTERHUB_CRYPT_KEY in ``env`` is kept as given
        self.crypt_key = self.env.get("JUPYTERHUB_CRYPT_KEY", secrets.token_hex(32))
        self.proc: subprocess.Popen[bytes] | None = None
        self.log_path = workdir / "hub.log"
        self.api_token = secrets.token_hex(16)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def write_config(self) -> Path:
        from devstack.idp import free_port

        self.workdir.mkdir(parents=True, exist_ok=True)
        path = self.workdir / "jupyterhub_config.py"
        allow_root = "['--allow-root']" if os.geteuid() == 0 else "[]"
        base = f"""
            c = get_config()  # noqa
            c.JupyterHub.ip = "127.0.0.1"
            c.JupyterHub.port = {self.port}
            c.JupyterHub.hub_ip = "127.0.0.1"
            c.JupyterHub.hub_port = {free_port()}
            c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{free_port()}"
            c.ConfigurableHTTPProxy.should_start = True
            c.JupyterHub.db_url = "sqlite:///{self.workdir}/jupyterhub.sqlite"
            c.JupyterHub.cookie_secret_file = "{self.workdir}/cookie_secret"
            c.JupyterHub.pid_file = "{self.workdir}/hub.pid"
            c.ConfigurableHTTPProxy.pid_file = "{self.workdir}/proxy.pid"
            c.JupyterHub.spawner_class = "jupyterhub.spawner.SimpleLocalProcessSpawner"
            c.SimpleLocalProcessSpawner.home_dir_template = "{self.workdir}/home/{{username}}"
            c.Spawner.cmd = ["{sys.executable}", "-m", "jupyterhub.singleuser"]
            c.Spawner.args = {allow_root}
            c.Spawner.start_timeout = 60
            c.Spawner.http_timeout = 60
            c.JupyterHub.cleanup_servers = True
            c.JupyterHub.services = [{{"name": "tests", "api_token": "{self.api_token}"}}]
            c.JupyterHub.load_roles = [{{"name": "tests", "services": ["tests"],
                "scopes": ["admin:users", "admin:groups", "admin:servers", "admin:auth_state",
                           "list:users", "read:users", "read:roles", "tokens", "access:servers"]}}]
        """
        path.write_text(textwrap.dedent(base) + "\n" + textwrap.dedent(self.config))
        return path

    def start(self, timeout: float = 60) -> None:
        config = self.write_config()
        env = dict(os.environ)
        env.update(self.env)
        env.update(JUPYTERHUB_CRYPT_KEY=self.crypt_key, PATH=node_bin_path())
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
        log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", str(config)],
            cwd=self.workdir,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"jupyterhub exited ({self.proc.returncode}):\n{self.log_tail()}"
                )
            try:
                r = httpx.get(f"{self.url}/hub/api/", timeout=2, verify=tls())
                if r.status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
        self.stop()
        raise RuntimeError(f"jupyterhub did not answer within {timeout}s:\n{self.log_tail()}")

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()

    def kill(self) -> None:
        """SIGKILL the hub and its proxy, as a crash would: no cleanup, servers keep running.

        ``start()`` afterwards brings the hub back on the same database and secrets.
        """
        if self.proc is None:
            return
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait(timeout=10)
        self.proc = None

    def log_tail(self, lines: int = 60) -> str:
        if not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def api(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """Call the hub REST API as the test service (admin scopes)."""
        headers = {"Authorization": f"token {self.api_token}"}
        return httpx.request(
            method,
            f"{self.url}/hub/api{path}",
            headers=headers,
            timeout=30,
            verify=tls(),
            **kwargs,
        )

    def cleanup_home(self) -> None:
        shutil.rmtree(self.workdir / "home", ignore_errors=True)
