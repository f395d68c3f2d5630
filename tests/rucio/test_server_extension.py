"""A real Jupyter Server with the extension enabled, against a real HTTP hub endpoint.

The server runs as a subprocess (``python -m jupyter_server``) with the environment the
spawner gives a researcher's server; the hub's token endpoint is :class:`TokenHub` on the
test's event loop. The deadlines below only stop a hung test; nothing asserts how fast.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import signal
import stat
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pytest

from devstack.idp import free_port

from .support import API_TOKEN, TokenHub

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = "iris_jupyterhub.rucio.extension"
# Other installed server extensions, off: faster, and their output is not this test's.
OTHERS = ("jupyterlab", "jupyter_lsp", "notebook_shim", "jupyter_server_terminals", "notebook")
HANG_GUARD = 180.0  # seconds; only so that a broken server cannot hang the test run
INSTANCES = [
    {
        "name": "ral",
        "display_name": "RAL",
        "rucio_host": "https://rucio.ral.example",
        "auth_host": "https://rucio-auth.ral.example",
        "vo": "",
        "account": "alice",
        "ca_cert": "",
        "default": True,
    },
    {
        "name": "cam",
        "display_name": "Cambridge",
        "rucio_host": "https://rucio.cam.example",
        "auth_host": "https://rucio.cam.example",
        "vo": "cam",
        "account": "",
        "ca_cert": "",
        "default": False,
    },
]


@dataclass
class Server:
    process: asyncio.subprocess.Process
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")


async def wait_for(condition: Callable[[], bool], what: str, server: Server | None = None) -> None:
    """Poll ``condition`` (every 50 ms) until it holds; fail after the hang guard."""
    loop = asyncio.get_running_loop()
    give_up = loop.time() + HANG_GUARD
    while not condition():
        if server is not None and server.process.returncode is not None:
            pytest.fail(f"the server exited while waiting for {what}:\n{server.log()}")
        if loop.time() > give_up:
            pytest.fail(f"gave up waiting for {what}" + (f":\n{server.log()}" if server else ""))
        await asyncio.sleep(0.05)


def server_env(tmp_path: Path, hub: TokenHub | None, rucio_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("JUPYTER", "IRIS_RUCIO"))}
    home = tmp_path / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home),
        JUPYTER_CONFIG_DIR=str(home / ".jupyter"),
        JUPYTER_DATA_DIR=str(home / ".local/share/jupyter"),
        JUPYTER_RUNTIME_DIR=str(home / ".local/share/jupyter/runtime"),
        PYTHONPATH=str(ROOT),
    )
    if hub is not None:
        env.update(
            IRIS_RUCIO_DIR=str(rucio_dir),
            IRIS_RUCIO_INSTANCES=json.dumps(INSTANCES),
            JUPYTERHUB_API_URL=hub.api_url,
            JUPYTERHUB_API_TOKEN=API_TOKEN,
            BEARER_TOKEN_FILE=str(rucio_dir / "ral.token"),
            RUCIO_CONFIG=str(rucio_dir / "rucio.cfg"),
        )
    return env


def open_log(path: Path) -> BinaryIO:
    return path.open("wb")


@pytest.fixture
async def start_server(tmp_path: Path) -> AsyncIterator[Callable[..., object]]:
    started: list[Server] = []

    async def start(
        hub: TokenHub | None, rucio_dir: Path, *options: str, environ: dict[str, str] | None = None
    ) -> Server:
        env = server_env(tmp_path, hub, rucio_dir)
        if environ is not None:  # a hub of its own: the caller gives its environment
            env.update(environ, IRIS_RUCIO_DIR=str(rucio_dir))
        log_path = tmp_path / f"server-{len(started)}.log"
        with open_log(log_path) as log:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "jupyter_server",
                "--no-browser",
                "--ip=127.0.0.1",
                f"--port={free_port()}",
                "--ServerApp.token=test-server-token",
                f"--ServerApp.root_dir={tmp_path / 'home'}",
                "--allow-root",  # containers of the test run may be root; the server is ours
                f"--ServerApp.jpserver_extensions={EXTENSION}=True",
                *(f"--ServerApp.jpserver_extensions={name}=False" for name in OTHERS),
                *options,
                env=env,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=log,
                stderr=log,
            )
        server = Server(process, log_path)
        started.append(server)
        return server

    yield start
    for server in started:
        if server.process.returncode is None:
            server.process.kill()
            await server.process.wait()


@pytest.fixture
async def hub() -> AsyncIterator[TokenHub]:
    hub = TokenHub(lifetime=8).start()
    yield hub
    await hub.stop()


async def stop(server: Server) -> int:
    server.process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(server.process.wait(), HANG_GUARD)


async def test_the_token_file_is_kept_fresh_and_removed_when_refused(
    tmp_path: Path, hub: TokenHub, start_server: Callable[..., object]
) -> None:
    rucio_dir = tmp_path / "run" / "iris-rucio"
    server: Server = await start_server(  # type: ignore[misc]
        hub,
        rucio_dir,
        "--RucioTokenFiles.renew_fraction=0.5",
        "--RucioTokenFiles.recheck_interval=1",
    )
    token = rucio_dir / "ral.token"
    seen: list[bytes] = []

    def read() -> bool:
        try:
            seen.append(token.read_bytes())
        except FileNotFoundError:
            return False
        return True

    await wait_for(read, "the first token file", server)
    # Both instances' files; the directory and the files private.
    await wait_for((rucio_dir / "cam.token").exists, "the second instance's token")
    assert stat.S_IMODE(rucio_dir.stat().st_mode) == 0o700
    for name in ("ral.token", "cam.token", "ral.cfg", "cam.cfg", "rucio.cfg"):
        assert stat.S_IMODE((rucio_dir / name).stat().st_mode) == 0o600, name
    assert (rucio_dir / "cam.token").read_text() == hub.latest("cam").token
    assert "auth_token_file_path = " + str(token) in (rucio_dir / "rucio.cfg").read_text()

    # Three renewals, each before the token it replaces expired; every read whole.
    await wait_for(
        lambda: read() and len([i for i in hub.issued if i.instance == "ral"]) >= 4,
        "3 renewals",
        server,
    )
    issued = [i for i in hub.issued if i.instance == "ral"]
    for earlier, later in itertools.pairwise(issued):
        assert later.at < earlier.expires_at, "renewed only after the token had expired"
    tokens = {i.token.encode() for i in issued}
    assert seen
    assert all(s in tokens for s in seen), "a read that was not exactly one issued token"
    assert not any(s.endswith(b"\n") for s in seen)
    await wait_for(
        lambda: token.read_text() == hub.latest("ral").token, "the newest token on disk"
    )

    # login_required: the file goes, the log says why once, re-checks are slow and quiet.
    hub.mode = "login_required"
    await wait_for(lambda: not token.exists(), "the token file to be removed", server)
    refused_before = len([r for r in hub.requests if r.instance == "ral" and r.status == 403])
    await wait_for(
        lambda: (
            len([r for r in hub.requests if r.instance == "ral" and r.status == 403])
            >= refused_before + 3
        ),
        "three slow re-checks",
        server,
    )
    assert not token.exists()
    log = server.log()
    assert log.count("Rucio: no ral token (login_required: ") == 1, log
    assert "Log out of the hub" in log
    status = json.loads((rucio_dir / "ral.status.json").read_text())
    assert (status["state"], status["reason"]) == ("refused", "login_required")

    # Logging in again brings it back without restarting the server.
    hub.mode = "ok"
    await wait_for(token.exists, "the token to come back", server)
    await wait_for(lambda: "Rucio: ral token is back in" in server.log(), "the log line")
    assert token.read_text() in {i.token for i in hub.issued}

    # No token outlives the server.
    assert await stop(server) == 0
    assert not token.exists()
    assert not (rucio_dir / "cam.token").exists()
    assert not any(i.token in server.log() for i in hub.issued), "a token in the server log"


async def test_without_rucio_instances_the_extension_does_nothing(
    tmp_path: Path, start_server: Callable[..., object]
) -> None:
    rucio_dir = tmp_path / "run" / "iris-rucio"
    server: Server = await start_server(None, rucio_dir)  # type: ignore[misc]
    await wait_for(
        lambda: "Rucio: IRIS_RUCIO_INSTANCES is not set" in server.log(), "the info line", server
    )
    await wait_for(
        lambda: "Jupyter Server" in server.log() and "is running at" in server.log(),
        "the server",
        server,
    )
    assert not rucio_dir.exists()
    assert await stop(server) == 0
    assert "Traceback" not in server.log()


async def test_a_token_directory_that_is_a_symbolic_link_gets_no_files(
    tmp_path: Path, hub: TokenHub, start_server: Callable[..., object]
) -> None:
    # Whoever creates IRIS_RUCIO_DIR first could point it at a directory they can read
    # (or swap rucio.cfg in it to send the token elsewhere): the server writes nothing.
    target = tmp_path / "attacker"
    target.mkdir(mode=0o700)
    rucio_dir = tmp_path / "iris-rucio"
    rucio_dir.symlink_to(target)
    server: Server = await start_server(hub, rucio_dir)  # type: ignore[misc]
    await wait_for(
        lambda: f"Rucio: no token files, {rucio_dir} is not usable: " in server.log(),
        "the error line",
        server,
    )
    await wait_for(lambda: "is running at" in server.log(), "the server", server)
    assert "is a symbolic link" in server.log()
    assert list(target.iterdir()) == []
    assert not hub.requests, "no token asked for"
    assert await stop(server) == 0
