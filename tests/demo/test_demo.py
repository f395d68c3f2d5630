"""``python -m iris_jupyterhub.demo``: starts, lets a researcher log in, stops everything."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from iris_jupyterhub.demo.processes import alive, descendants, terminate
from tests.stack.hub import REPO_ROOT
from tests.stack.idp import free_port
from tests.stack.login import hub_login

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="process tree read from /proc"),
]


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def _wait_for_line(lines: list[str], needle: str, proc: subprocess.Popen[str], timeout: float):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if any(needle in line for line in lines):
            return
        if proc.poll() is not None:
            break
        time.sleep(0.2)
    pytest.fail(f"demo did not print {needle!r}; output:\n" + "".join(lines))


def test_demo_login_and_clean_stop(tmp_path: Path) -> None:
    port, idp_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "IDP"}
    cmd = [sys.executable, "-m", "iris_jupyterhub.demo", "--port", str(port)]
    cmd += ["--idp-port", str(idp_port), "--workdir", str(tmp_path / "demo")]
    demo = subprocess.Popen(
        cmd,
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own group: SIGINT to it is a terminal's Ctrl-C
    )
    lines: list[str] = []
    assert demo.stdout is not None
    reader = threading.Thread(target=lambda: lines.extend(demo.stdout or []), daemon=True)
    reader.start()
    recorded: dict[int, int] = {}
    try:
        _wait_for_line(lines, f"open {url}", demo, timeout=120)
        output = "".join(lines)
        assert "aresearcher" in output  # the accounts table
        assert "ada-pass" in output

        attempt = hub_login(url, "ada", "ada-pass")
        assert attempt.status == 302, attempt.text
        home = attempt.client.get(f"{url}/hub/home")
        assert home.status_code == 200
        assert "aresearcher" in home.text

        # start a single-user server so that its clean-up is checked too
        attempt.client.get(f"{url}/hub/spawn", follow_redirects=True, timeout=120)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            response = attempt.client.get(f"{url}/user/aresearcher/api")
            if response.status_code == 200 and "version" in response.text:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the single-user server did not start")

        recorded = descendants([demo.pid])
        commands = " | ".join(_cmdline(pid) for pid in recorded)
        for part in ("server.mjs", "-m jupyterhub -f", "configurable-http-proxy", "singleuser"):
            assert part in commands, commands

        os.killpg(demo.pid, signal.SIGINT)
        assert demo.wait(timeout=60) == 0, "".join(lines)
        left = {pid: _cmdline(pid) for pid, start in recorded.items() if alive(pid, start)}
        assert left == {}
        assert "demo stopped" in "".join(lines)
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGKILL)
            demo.wait(timeout=10)
        terminate(recorded, timeout=5)
        reader.join(timeout=5)
