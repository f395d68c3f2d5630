"""``python -m devstack``: starts, lets a researcher log in and spawn a profile
against the Kubernetes stand-in, stops everything."""

from __future__ import annotations

import html
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from devstack.hub import REPO_ROOT
from devstack.idp import free_port
from devstack.login import hub_login
from devstack.processes import alive, descendants, terminate
from iris_jupyterhub.posix import IdentityRegistry

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(not Path("/proc").is_dir(), reason="process tree read from /proc"),
]

GPU_PROFILE = "gpu"
LSST_GROUP = "iris-lsst"  # POSIX name of iris/lsst


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


def test_demo_login_spawn_profile_and_clean_stop(tmp_path: Path) -> None:
    pytest.importorskip("kmock", reason="the Kubernetes stand-in needs kmock (Python >= 3.11)")
    workdir = tmp_path / "demo"
    port, idp_port = free_port(), free_port()
    url = f"http://127.0.0.1:{port}"
    env = {k: v for k, v in os.environ.items() if k != "IDP"}
    cmd = [sys.executable, "-m", "devstack", "--port", str(port)]
    cmd += ["--idp-port", str(idp_port), "--workdir", str(workdir)]
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
        assert f"{workdir / 'pods'}/<pod>.json" in output  # where the pod specs go

        attempt = hub_login(url, "ada", "ada-pass")
        assert attempt.status == 302, attempt.text
        home = attempt.client.get(f"{url}/hub/home")
        assert home.status_code == 200
        assert "aresearcher" in home.text

        # the spawn form, as a browser gets it: her profiles and groups, the form's action
        form = attempt.client.get(f"{url}/hub/spawn", timeout=60)
        assert form.status_code == 200, form.text
        for slug in ("standard", "lsst-analysis", GPU_PROFILE):
            assert f'value="{slug}"' in form.text
        assert f'value="{LSST_GROUP}"' in form.text
        action = re.search(r'<form[^>]*action="([^"]+)"', form.text)
        assert action is not None, form.text
        assert "_xsrf=" in action.group(1)
        posted = attempt.client.post(
            url + html.unescape(action.group(1)),
            data={"profile": GPU_PROFILE, "group": LSST_GROUP},
            timeout=60,
        )
        assert posted.status_code == 302, posted.text
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            response = attempt.client.get(f"{url}/user/aresearcher/api")
            if response.status_code == 200 and "version" in response.text:
                break
            time.sleep(0.5)
        else:
            pytest.fail("the single-user server did not start\n" + "".join(lines))

        # the pod the spawner sent: printed, and written to <workdir>/pods/<pod>.json
        _wait_for_line(lines, "pod jhub/jupyter-aresearcher:", demo, timeout=10)
        line = next(x for x in lines if "pod jhub/jupyter-aresearcher:" in x)
        assert "profile=gpu" in line, line
        assert "nvidia.com/gpu=1" in line, line
        assert "schema_errors=0" in line, line
        manifests = [json.loads(p.read_text()) for p in (workdir / "pods").glob("*.json")]
        assert len(manifests) == 1
        spec = manifests[0]["spec"]
        registry = IdentityRegistry(db_url=f"sqlite:///{workdir}/iris-identities.sqlite")
        account = registry.lookup_username("aresearcher")
        assert account is not None
        lsst_gid = next(g.gid for g in account.groups if g.name == LSST_GROUP)
        assert spec["securityContext"]["runAsUser"] == account.uid
        assert spec["securityContext"]["runAsGroup"] == lsst_gid
        assert f"uid={account.uid} runAsGroup={lsst_gid}" in line
        limits = spec["containers"][0]["resources"]["limits"]
        assert str(limits["nvidia.com/gpu"]) == "1"

        recorded = descendants([demo.pid])
        commands = " | ".join(_cmdline(pid) for pid in recorded)
        parts = ("server.mjs", "-m jupyterhub -f", "configurable-http-proxy", "singleuser")
        for part in (*parts, "-m devstack.kube"):
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
