"""Rucio in notebooks, whole stack: the real hub, proxy, IdP, Kubernetes stand-in and Rucio.

The IdP issues 20-second access tokens. IRISSpawner starts each researcher's server on the
stand-in, whose fake kubelet runs it as a local process of the notebook environment
(``.venv-rucio``: the Rucio client, jupyterhub-singleuser) with the Rucio extension enabled,
the pod's environment, and its in-memory ``/run/iris-rucio`` volume as a directory of its own.
Commands run "in the notebook" with the server process's own environment (``/proc/<pid>/environ``)
and its home as working directory. The real Rucio server (:mod:`devstack.rucio`) trusts the
IdP and maps ``ada`` and ``carol`` to the accounts of their POSIX usernames.

Skipped when ``.venv-rucio`` is missing (``make .venv-rucio/.installed``).
"""

from __future__ import annotations

import json
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from devstack.configs import IRIS_SPAWNER_CONFIG
from devstack.idp import DEFAULT_CLIENT_SECRET
from devstack.kube import KubeStandIn
from devstack.rucio import RucioAccount, RucioServer
from devstack.stacks import KubeStack, start_kube_stack
from tests.rucio.realrucio import TOKEN_TTL, idp_sub, require_rucio_venv

pytestmark = pytest.mark.e2e

EXTENSION_ARGS = [
    "--ServerApp.jpserver_extensions=iris_jupyterhub.rucio.extension=True",
    # renew with half the lifetime left: a 20 s token in the file always has ~5 s or more
    "--RucioTokenFiles.renew_fraction=0.5",
]
USERS = {"ada": "aresearcher", "carol": "cadmin", "bob": "bbuilder"}
"""IdP login -> POSIX username (= Rucio account). Bob is in no Rucio group."""


def hub_config(rucio_url: str) -> str:
    instances = [
        {
            "name": "ral",
            "display_name": "RAL Rucio (test)",
            "rucio_host": rucio_url,
            "groups": ["iris/lsst", "iris/admins"],
            "account": "{username}",
        }
    ]
    return (
        IRIS_SPAWNER_CONFIG
        + f"""
from iris_jupyterhub.rucio import configure_hub
configure_hub(c, {instances!r})
c.RucioTokens.renewal_margin = 10
c.IRISSpawner.args = {EXTENSION_ARGS!r}
"""
    )


@dataclass
class Notebook:
    """A researcher's running server: its process, home, environment and log."""

    username: str
    pid: int
    home: Path
    log_path: Path
    env: dict[str, str] = field(default_factory=dict)

    @property
    def rucio_dir(self) -> Path:
        return Path(self.env["IRIS_RUCIO_DIR"])

    @property
    def token_file(self) -> Path:
        return Path(self.env["BEARER_TOKEN_FILE"])

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def run(
        self, venv: Path, *argv: str, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """Run ``argv`` (``rucio`` / ``python`` of the notebook venv) as a notebook terminal."""
        return subprocess.run(
            [str(venv / "bin" / argv[0]), *argv[1:]],
            env=self.env,
            cwd=self.home,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )


@dataclass
class RucioStack:
    ks: KubeStack
    rucio: RucioServer
    venv: Path
    notebooks: dict[str, Notebook] = field(default_factory=dict)

    def server_token(self, username: str) -> str:
        return self.notebooks[username].env["JUPYTERHUB_API_TOKEN"]

    def endpoint(self, token: str) -> httpx.Response:
        return httpx.get(
            f"{self.ks.hub.url}/hub/api/iris/rucio/ral/token",
            headers={"Authorization": f"token {token}"},
            timeout=30,
        )

    def auth_state(self, username: str) -> dict[str, Any]:
        state: dict[str, Any] = self.ks.hub.api("GET", f"/users/{username}").json()["auth_state"]
        return state


def process_env(pid: int) -> dict[str, str]:
    """The environment a process was started with (``/proc/<pid>/environ``)."""
    raw = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    return dict(item.decode().split("=", 1) for item in raw if b"=" in item)


def notebook_of(ks: KubeStack, username: str) -> Notebook:
    [pod] = ks.pods_of(username)
    [run] = [r for r in ks.kube.kubelet_pods() if r["name"] == pod["metadata"]["name"]]
    log_path = Path(run["log"])
    return Notebook(
        username, run["pid"], log_path.parent / "home", log_path, process_env(run["pid"])
    )


def wait_until(condition: Any, what: str, timeout: float = 90) -> None:
    """Poll ``condition`` until true; fail after ``timeout`` (a hang guard, not a speed check)."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def rs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RucioStack]:
    venv = require_rucio_venv()
    kube = KubeStandIn(
        tmp_path_factory.mktemp("kube"), singleuser_python=str(venv / "bin" / "python")
    )
    kube.start()
    rucio = RucioServer(tmp_path_factory.mktemp("rucio"), issuers={}, accounts=[])
    try:
        ks = start_kube_stack(
            tmp_path_factory.mktemp("hub"),
            kube,
            hub_config(rucio.url),
            provider_options={"iam": {"ttl": {"AccessToken": TOKEN_TTL}}},
        )
        try:
            idp = ks.stack.idp
            rucio.issuers = {"iam": idp.issuer("iam")}
            rucio.accounts = [
                RucioAccount(USERS[login], [(idp_sub("iam", login), idp.issuer("iam"))])
                for login in ("ada", "carol")
            ]
            failed: list[BaseException] = []

            def start_rucio() -> None:
                try:
                    rucio.start(timeout=240)
                except BaseException as error:  # reported below
                    failed.append(error)

            starting = threading.Thread(target=start_rucio)  # meanwhile: logins, spawns
            starting.start()
            stack = RucioStack(ks, rucio, venv)
            for login, username in USERS.items():
                assert ks.login(login).status == 302
                r = ks.start_server(username)
                assert r.status_code in (201, 202), r.text
            for username in USERS.values():
                ks.wait_ready(username, timeout=120)
                stack.notebooks[username] = notebook_of(ks, username)
            starting.join()
            if failed:
                raise failed[0]
            yield stack
        finally:
            ks.stop()
    finally:
        rucio.stop()
        kube.stop()


def whoami(rs: RucioStack, username: str) -> str:
    """``rucio whoami`` in the notebook's terminal: the account name."""
    done = rs.notebooks[username].run(rs.venv, "rucio", "whoami")
    assert done.returncode == 0, done.stdout + done.stderr
    account = [line for line in done.stdout.splitlines() if line.startswith("account ")]
    assert account, done.stdout
    return account[0].split(":", 1)[1].strip()


NEW_CLIENT = """
import json
from rucio.client import Client
from iris_jupyterhub.rucio import client
print(json.dumps([Client().whoami()["account"], client().whoami()["account"]]))
"""


def new_clients_whoami(rs: RucioStack, username: str) -> list[str]:
    """In a notebook kernel: a new ``Client()`` and the library's ``client()`` helper."""
    done = rs.notebooks[username].run(rs.venv, "python", "-c", NEW_CLIENT)
    assert done.returncode == 0, done.stdout + done.stderr
    accounts: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return accounts


def test_rucio_keeps_working_across_three_token_lifetimes(rs: RucioStack) -> None:
    notebook = rs.notebooks["aresearcher"]
    wait_until(notebook.token_file.exists, "the first token file")
    first = notebook.token_file.read_text()
    first_exp = jwt.decode(first, options={"verify_signature": False})["exp"]
    seen = {first}
    rounds = 0
    while time.time() < first_exp + 2 * TOKEN_TTL + 2 or rounds < 4:  # three expiries
        assert whoami(rs, "aresearcher") == "aresearcher"
        assert new_clients_whoami(rs, "aresearcher") == ["aresearcher", "aresearcher"]
        seen.add(notebook.token_file.read_text())
        rounds += 1
    assert time.time() > first_exp + 2 * TOKEN_TTL, "three token lifetimes have passed"
    claims = [jwt.decode(t, options={"verify_signature": False}) for t in seen]
    assert len({c["exp"] for c in claims}) >= 3, claims
    assert {c["aud"] for c in claims} == {"rucio"}
    assert {c["sub"] for c in claims} == {idp_sub("iam", "ada")}
    # nobody did anything: one login, no new one; the hub renewed with the refresh token
    assert "Rucio: ral token written to" in notebook.log()


def test_a_file_from_the_home_goes_into_rucio_and_is_replicated(rs: RucioStack) -> None:
    notebook = rs.notebooks["aresearcher"]
    (notebook.home / "spectra.csv").write_text("wavelength,flux\n656.3,1.0\n")
    # Rucio's generic policy lets only admins change a replica's state afterwards, so the
    # replica is registered once the file is stored
    upload = notebook.run(
        rs.venv, "rucio", "upload", "--register-after-upload", "--rse", "RAL_USERDISK",
        "--scope", "user.aresearcher", "spectra.csv",
    )  # fmt: skip
    assert upload.returncode == 0, upload.stdout + upload.stderr
    assert "Successfully uploaded file spectra.csv" in upload.stderr, upload.stderr
    assert "ERROR" not in upload.stderr, upload.stderr
    [stored] = rs.rucio.rse_path("RAL_USERDISK").rglob("spectra.csv")
    assert stored.read_text() == "wavelength,flux\n656.3,1.0\n"
    listing = notebook.run(
        rs.venv, "python", "-c",
        "from rucio.client import Client; import json; print(json.dumps(list(Client()"
        ".list_replicas([{'scope': 'user.aresearcher', 'name': 'spectra.csv'}]))))",
    )  # fmt: skip
    assert listing.returncode == 0, listing.stderr
    [replica] = json.loads(listing.stdout.strip().splitlines()[-1])
    assert replica["states"] == {"RAL_USERDISK": "AVAILABLE"}
    rule = notebook.run(
        rs.venv, "rucio", "rule", "add", "--copies", "1", "--rses", "CAM_USERDISK",
        "user.aresearcher:spectra.csv",
    )  # fmt: skip
    assert rule.returncode == 0, rule.stdout + rule.stderr
    rule_id = rule.stdout.strip().splitlines()[-1]
    rules = notebook.run(rs.venv, "rucio", "rule", "list", "--did", "user.aresearcher:spectra.csv")
    assert rules.returncode == 0, rules.stderr
    assert rule_id in rules.stdout, rules.stdout
    assert "CAM_USERDISK" in rules.stdout, rules.stdout


def test_no_refresh_token_or_client_secret_reaches_the_notebook(rs: RucioStack) -> None:
    state = rs.auth_state("aresearcher")
    secrets = {
        "refresh token": state["refresh_token"],
        "login access token": state["access_token"],
        "client secret": DEFAULT_CLIENT_SECRET,
    }
    notebook = rs.notebooks["aresearcher"]
    answer = rs.endpoint(rs.server_token("aresearcher"))
    assert answer.status_code == 200, answer.text
    places = {
        "the server's environment": "\0".join(f"{k}={v}" for k, v in notebook.env.items()),
        "the endpoint's answer": answer.text,
        "the server log": notebook.log(),
        "the hub log": rs.ks.hub.log_text(),
    }
    files = [p for root in (notebook.rucio_dir, notebook.home) for p in root.rglob("*")]
    assert notebook.token_file in files
    for path in files:
        if path.is_file():
            places[str(path)] = path.read_text(errors="replace")
    for what, secret in secrets.items():
        for where, text in places.items():
            if where == "the hub log" and what == "client secret":
                continue  # the hub's own configuration may name it; never a notebook's
            assert secret not in text, f"{what} found in {where}"
    # no token in an environment variable; the token file is private
    assert not [k for k, v in notebook.env.items() if v.count(".") == 2 and len(v) > 100]
    assert notebook.token_file.stat().st_mode & 0o077 == 0


def test_another_users_server_gets_only_its_own_token(rs: RucioStack) -> None:
    carol = rs.notebooks["cadmin"]
    ada_token = rs.notebooks["aresearcher"].token_file.read_text()
    answer = rs.endpoint(rs.server_token("cadmin"))
    assert answer.status_code == 200, answer.text
    assert answer.json()["account"] == "cadmin"
    claims = jwt.decode(answer.json()["access_token"], options={"verify_signature": False})
    assert claims["sub"] == idp_sub("iam", "carol")
    assert ada_token not in answer.text
    # Carol's server cannot read Ada's user model, auth state or server
    r = httpx.get(
        f"{rs.ks.hub.url}/hub/api/users/aresearcher",
        headers={"Authorization": f"token {rs.server_token('cadmin')}"},
        timeout=30,
    )
    assert r.status_code in (403, 404), r.text
    assert ada_token not in r.text
    assert rs.auth_state("aresearcher")["refresh_token"] not in r.text
    assert whoami(rs, "cadmin") == "cadmin"
    wait_until(carol.token_file.exists, "Carol's token file")
    assert carol.token_file.read_text() != ada_token


def test_user_in_no_rucio_group_gets_no_token_and_a_clear_message(rs: RucioStack) -> None:
    bob = rs.notebooks["bbuilder"]
    assert not [k for k in bob.env if k.startswith(("IRIS_RUCIO", "RUCIO_", "BEARER_TOKEN"))]
    assert "IRIS_RUCIO_INSTANCES is not set, so no Rucio token files are kept" in bob.log()
    answer = rs.endpoint(rs.server_token("bbuilder"))
    assert answer.status_code == 403, answer.text
    body = answer.json()
    assert body["reason"] == "not_in_group"
    assert "ral" in body["message"] or "RAL" in body["message"], body


def test_rucio_down_gives_the_clients_error_and_tokens_stay_fresh(rs: RucioStack) -> None:
    notebook = rs.notebooks["aresearcher"]
    rs.rucio.stop()
    before = notebook.token_file.read_text()
    done = notebook.run(rs.venv, "rucio", "whoami")  # rucio 41's CLI exits 0 even then
    assert "Cannot connect to the Rucio server" in done.stdout + done.stderr
    done = notebook.run(
        rs.venv, "python", "-c", "from rucio.client import Client; Client().whoami()"
    )
    assert done.returncode != 0
    assert "Connection refused" in done.stderr, done.stderr
    wait_until(lambda: notebook.token_file.read_text() != before, "a renewed token")
    assert "Rucio: could not" not in notebook.log()
    assert "login_required" not in notebook.log()


def test_revoked_refresh_token_removes_the_token_file_and_says_why(rs: RucioStack) -> None:
    notebook = rs.notebooks["aresearcher"]
    idp = rs.ks.stack.idp
    revoke = httpx.post(
        idp.issuer("iam") + "revoke",
        data={
            "token": rs.auth_state("aresearcher")["refresh_token"],
            "token_type_hint": "refresh_token",
            "client_id": "hub",
            "client_secret": DEFAULT_CLIENT_SECRET,
        },
        timeout=10,
    )
    assert revoke.status_code == 200, revoke.text
    wait_until(lambda: not notebook.token_file.exists(), "the token file to go", timeout=60)
    said = "Rucio: no ral token (login_required"
    wait_until(lambda: said in notebook.log(), "the server log to say why")
    assert "Log out of the hub" in notebook.log()
    assert "refused the refresh token (invalid_grant" in rs.ks.hub.log_text()
    # nothing loops: the refusal is logged once and not asked again at once
    time.sleep(5)
    assert notebook.log().count(said) == 1
    status = json.loads((notebook.rucio_dir / "ral.status.json").read_text())
    assert "login_required" in json.dumps(status)
