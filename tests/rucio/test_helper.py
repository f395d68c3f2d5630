"""The client helper: the right token for each instance, and a sentence when there is none.

The tests with the real Rucio client (``rucio==41.5.1``) run it in the Rucio virtualenv
(``$IRIS_RUCIO_VENV`` or ``<repo>/.venv-rucio``, as :mod:`devstack.rucio` finds it) against
two HTTP endpoints that record what the client sends; they are skipped, saying so, when
that virtualenv is missing. Whether Rucio accepts the token is the whole-stack test's.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import subprocess
import textwrap
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from iris_jupyterhub.rucio import client, instances, read_token, token_file
from iris_jupyterhub.rucio.clientcfg import render_rucio_cfg, settings_from_env
from iris_jupyterhub.rucio.files import write_private, write_token
from iris_jupyterhub.rucio.helper import RucioTokenUnavailableError

ROOT = Path(__file__).resolve().parents[2]
RUCIO_VENV = Path(os.environ.get("IRIS_RUCIO_VENV") or ROOT / ".venv-rucio")
RUCIO_PYTHON = RUCIO_VENV / "bin" / "python"


def environment(directory: Path, ral_url: str, cam_url: str) -> dict[str, str]:
    listed = [
        {
            "name": "ral",
            "display_name": "RAL",
            "rucio_host": ral_url,
            "account": "alice",
            "default": True,
        },
        {"name": "cam", "display_name": "Cam", "rucio_host": cam_url, "vo": "", "account": ""},
    ]
    return {
        "IRIS_RUCIO_DIR": str(directory),
        "IRIS_RUCIO_INSTANCES": json.dumps(listed),
        "BEARER_TOKEN_FILE": str(directory / "ral.token"),
        "RUCIO_CONFIG": str(directory / "rucio.cfg"),
    }


def write_files(environ: dict[str, str]) -> None:
    """What the extension writes at start-up and on its first renewal."""
    settings = settings_from_env(environ)
    assert settings is not None
    settings.directory.mkdir(mode=0o700, exist_ok=True)
    for instance in settings.instances:
        files = settings.files(instance)
        write_private(files.config, render_rucio_cfg(instance, files.token))
        write_token(files.token, f"eyJ{instance.name}.first.token")
    default = settings.default
    write_private(settings.rucio_cfg, render_rucio_cfg(default, settings.files(default).token))


# -- without the Rucio client ------------------------------------------------------------


def test_the_helper_finds_each_instance_s_token(tmp_path: Path) -> None:
    environ = environment(tmp_path, "https://rucio.ral.example", "https://rucio.cam.example")
    write_files(environ)
    assert instances(environ) == ["ral", "cam"]
    assert token_file(None, environ) == tmp_path / "ral.token"
    assert read_token("cam", environ) == "eyJcam.first.token"
    with pytest.raises(
        RucioTokenUnavailableError, match=r"no Rucio instance called 'lsst'.*ral, cam"
    ):
        token_file("lsst", environ)


def test_without_rucio_the_helper_says_so() -> None:
    with pytest.raises(RucioTokenUnavailableError, match="Rucio is not set up in this server"):
        instances({})
    with pytest.raises(RucioTokenUnavailableError, match="set-up of this server is broken"):
        instances({"IRIS_RUCIO_INSTANCES": "[", "IRIS_RUCIO_DIR": "/run/iris-rucio"})


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (
            {
                "state": "refused",
                "reason": "login_required",
                "message": "Your sign-in has expired",
            },
            r"No Rucio token for ral: Your sign-in has expired\. Log out of the hub",
        ),
        (
            {"state": "unavailable", "reason": "unreachable", "message": "Connection refused"},
            r"at the moment \(Connection refused\)\. The server keeps asking",
        ),
        (None, "the server's Rucio extension has not written one"),
    ],
)
def test_a_missing_token_is_explained_from_the_status_file(
    tmp_path: Path, status: dict[str, str] | None, expected: str
) -> None:
    environ = environment(tmp_path, "https://rucio.ral.example", "https://rucio.cam.example")
    if status is not None:
        (tmp_path / "ral.status.json").write_text(json.dumps({"instance": "ral", **status}))
    with pytest.raises(RucioTokenUnavailableError, match=expected):
        read_token("ral", environ)


@pytest.mark.skipif(importlib.util.find_spec("rucio") is not None, reason="rucio is installed")
def test_without_the_rucio_client_the_helper_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    environ = environment(tmp_path, "https://rucio.ral.example", "https://rucio.cam.example")
    write_files(environ)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ImportError, match="pip install rucio-clients"):
        client()


# -- with the real Rucio client ----------------------------------------------------------


@dataclass
class Recorder:
    """A Rucio server's ``/accounts/<name>`` that records the headers it was sent."""

    name: str
    seen: list[dict[str, str]] = field(default_factory=list)
    port: int = 0
    server: HTTPServer | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Recorder:
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        self.server = HTTPServer(Application([(r"/accounts/(.*)", _Accounts, {"recorder": self})]))
        self.server.add_sockets(sockets)
        return self


class _Accounts(RequestHandler):
    def initialize(self, recorder: Recorder) -> None:
        self.recorder = recorder

    def get(self, account: str) -> None:
        headers = self.request.headers
        self.recorder.seen.append(
            {
                "token": headers.get("X-Rucio-Auth-Token", ""),
                "account": headers.get("X-Rucio-Account", "-"),
                "vo": headers.get("X-Rucio-VO", ""),
            }
        )
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"account": account, "server": self.recorder.name}))


@pytest.fixture
async def servers() -> AsyncIterator[tuple[Recorder, Recorder]]:
    if not RUCIO_PYTHON.exists():
        pytest.skip(f"no Rucio virtualenv at {RUCIO_VENV} (make .venv-rucio/.installed)")
    ral, cam = Recorder("ral").start(), Recorder("cam").start()
    yield ral, cam
    for recorder in (ral, cam):
        assert recorder.server is not None
        recorder.server.stop()


SCRIPT = textwrap.dedent(
    """
    import os, sys
    from pathlib import Path
    from rucio.client import Client
    from iris_jupyterhub.rucio import client
    directory = Path(os.environ["IRIS_RUCIO_DIR"])
    step = sys.argv[1]
    if step == "helper":
        client().whoami()
        client("cam").whoami()
    elif step == "plain":
        Client().whoami()  # the default instance, from RUCIO_CONFIG and BEARER_TOKEN_FILE
        # another instance by hand: BEARER_TOKEN_FILE (ral's) wins over its own file
        Client(rucio_host=os.environ["CAM_URL"], auth_host=os.environ["CAM_URL"]).whoami()
    elif step == "renewal":
        kept = client()
        (directory / "ral.token").write_text("eyJral.renewed.token")  # what a renewal does
        kept.whoami()      # a client made before the renewal: the old token
        client().whoami()  # a new client: the new one
    """
)


async def run_rucio(step: str, environ: dict[str, str]) -> None:
    env = {
        **{
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("RUCIO", "BEARER", "IRIS_RUCIO"))
        },
        **environ,
        "PYTHONPATH": str(ROOT),
    }
    process = await asyncio.create_subprocess_exec(
        str(RUCIO_PYTHON),
        "-c",
        SCRIPT,
        step,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = await process.communicate()
    assert process.returncode == 0, err.decode()


async def test_the_helper_sends_each_instance_its_own_token(
    tmp_path: Path, servers: tuple[Recorder, Recorder]
) -> None:
    ral, cam = servers
    environ = environment(tmp_path / "rucio", ral.url, cam.url)
    write_files(environ)
    await run_rucio("helper", environ)
    assert ral.seen == [{"token": "eyJral.first.token", "account": "alice", "vo": "def"}]
    assert cam.seen == [{"token": "eyJcam.first.token", "account": "-", "vo": "def"}]


async def test_a_plain_client_for_another_instance_sends_the_default_token(
    tmp_path: Path, servers: tuple[Recorder, Recorder]
) -> None:
    """Why the helper exists: the client's token discovery reads BEARER_TOKEN_FILE first."""
    ral, cam = servers
    environ = environment(tmp_path / "rucio", ral.url, cam.url)
    write_files(environ)
    await run_rucio("plain", {**environ, "CAM_URL": cam.url})
    assert ral.seen == [{"token": "eyJral.first.token", "account": "alice", "vo": "def"}]
    assert cam.seen[0]["token"] == "eyJral.first.token", "the wrong instance's token"
    assert cam.seen[0]["account"] == "alice", "and the default instance's account"


async def test_a_client_keeps_its_token_and_a_new_one_reads_the_renewed_file(
    tmp_path: Path, servers: tuple[Recorder, Recorder]
) -> None:
    ral, cam = servers
    environ = environment(tmp_path / "rucio", ral.url, cam.url)
    write_files(environ)
    await run_rucio("renewal", environ)
    assert [seen["token"] for seen in ral.seen] == ["eyJral.first.token", "eyJral.renewed.token"]
