"""A real Rucio server (``rucio==41.5.1``, SQLite, werkzeug) trusting the test IdP.

The server runs from its own virtualenv, ``.venv-rucio`` in the repository root (``make
.venv-rucio/.installed``, pinned by ``requirements-rucio.txt``; ``IRIS_RUCIO_VENV`` points
elsewhere), never the hub's: Rucio pins its own SQLAlchemy, Flask and alembic. The same venv is
the tests' notebook environment: it holds the Rucio client and the hub stack's
``jupyterhub-singleuser``/``jupyter_server``, and gets this library from ``PYTHONPATH``.

:class:`RucioServer` writes the server's ``rucio.cfg`` (``[oidc] idpsecrets`` with one entry
per trusted issuer, each with its ``SCIM`` client as Rucio requires, ``expected_audience``), an
``alembic.ini``, bootstraps the database (:mod:`devstack.rucio_setup`: accounts with scope
``user.<account>``, OIDC identities ``SUB=…, ISS=…``, quotas, two or more POSIX RSEs under
the work directory with distances between them) and serves the REST API on a loopback port.
It is a context manager like the other stand-ins; :meth:`stop` and :meth:`start` again keep the
database (a "Rucio is down" fault).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from .idp import free_port

__all__ = [
    "RucioAccount",
    "RucioError",
    "RucioServer",
    "client_config",
    "rucio_venv",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
RUCIO_VERSION = "41.5.1"


class RucioError(RuntimeError):
    """The Rucio venv is missing, or the server failed to bootstrap or start."""


def rucio_venv(repo_root: Path = REPO_ROOT) -> Path:
    """The Rucio virtualenv (``$IRIS_RUCIO_VENV`` or ``<repo>/.venv-rucio``), checked."""
    venv = Path(os.environ.get("IRIS_RUCIO_VENV") or repo_root / ".venv-rucio")
    if not (venv / "bin" / "rucio").exists():
        raise RucioError(
            f"no Rucio virtualenv at {venv}: run `make .venv-rucio/.installed` in {repo_root} "
            "(rucio, jupyterhub-singleuser and jupyter_server pinned by requirements-rucio.txt)"
        )
    return venv


@dataclass
class RucioAccount:
    """A Rucio user account mapped to OIDC identities (``(sub, issuer)`` pairs)."""

    account: str
    identities: list[tuple[str, str]]
    email: str = ""
    quota_bytes: int = 10**12

    def spec(self) -> dict[str, object]:
        return {
            "account": self.account,
            "email": self.email or f"{self.account}@example.org",
            "identities": [{"sub": sub, "iss": iss} for sub, iss in self.identities],
            "quota_bytes": self.quota_bytes,
        }


def client_config(
    rucio_host: str, account: str, token_file: Path | None = None, vo: str = "def"
) -> str:
    """A client ``rucio.cfg`` for bearer tokens (``auth_type = oidc``).

    The client reads the token from ``$BEARER_TOKEN_FILE`` (WLCG discovery) or, without it,
    from ``auth_token_file_path`` = ``token_file``.
    """
    lines = [
        "[client]",
        f"rucio_host = {rucio_host}",
        f"auth_host = {rucio_host}",
        "auth_type = oidc",
        f"account = {account}",
        f"vo = {vo}",
        "request_retries = 1",
    ]
    if token_file is not None:
        lines.append(f"auth_token_file_path = {token_file}")
    return "\n".join(lines) + "\n"


@dataclass
class RucioServer:
    """Bootstrap and serve a Rucio server in ``workdir`` (see the module docstring).

    ``issuers`` maps an idpsecrets name to an issuer string, used verbatim (IAM's keeps its
    trailing slash); ``client_id``/``client_secret`` are Rucio's own client at the IdP (the
    server only uses it to introspect tokens that lack ``aud`` or ``scope``).
    """

    workdir: Path
    issuers: dict[str, str]
    accounts: list[RucioAccount]
    rses: tuple[str, ...] = ("RAL_USERDISK", "CAM_USERDISK")
    audience: str = "rucio"
    client_id: str = "rucio"
    client_secret: str = "rucio-s3cret"
    host: str = "127.0.0.1"
    port: int = field(default_factory=free_port)
    _proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    _bootstrapped: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self.workdir = Path(self.workdir).resolve()
        self.venv = rucio_venv()
        self.python = self.venv / "bin" / "python"
        self.config_path = self.workdir / "etc" / "rucio.cfg"
        self.log_path = self.workdir / "rucio.log"

    @property
    def url(self) -> str:
        """The REST API's base URL (``rucio_host`` and ``auth_host`` of a client)."""
        return f"http://{self.host}:{self.port}"

    def rse_path(self, rse: str) -> Path:
        """The directory behind a POSIX RSE."""
        return self.workdir / "rses" / rse

    # -- configuration ----------------------------------------------------------------------

    def _site_packages(self) -> Path:
        found = sorted(self.venv.glob("lib/python3*/site-packages/rucio"))
        if not found:
            raise RucioError(f"rucio is not installed in {self.venv}")
        return found[-1].parent

    def idpsecrets(self) -> dict[str, object]:
        """``[oidc] idpsecrets``: one entry per issuer; Rucio ignores an entry without SCIM."""
        client = {"client_id": self.client_id, "client_secret": self.client_secret}
        return {
            name: {
                "issuer": issuer,
                **client,
                "redirect_uris": [f"{self.url}/auth/oidc_token"],
                "SCIM": dict(client),
            }
            for name, issuer in self.issuers.items()
        }

    def write_config(self) -> None:
        """Write ``rucio.cfg``, ``alembic.ini`` and ``idpsecrets.json`` under ``etc/``."""
        etc = self.config_path.parent
        etc.mkdir(parents=True, exist_ok=True)
        (etc / "idpsecrets.json").write_text(json.dumps(self.idpsecrets(), indent=2))
        database = f"sqlite:///{self.workdir / 'rucio.db'}"
        template = self.venv / "rucio" / "etc" / "alembic.ini.template"
        logging_sections = template.read_text().split("# Logging configuration", 1)[1]
        migrations = self._site_packages() / "rucio" / "db" / "sqla" / "migrate_repo"
        (etc / "alembic.ini").write_text(
            f"[alembic]\nsqlalchemy.url = {database}\nscript_location = {migrations}/\n"
            + logging_sections
        )
        admin = next(iter(self.issuers))
        self.config_path.write_text(
            "[common]\n"
            f"logdir = {self.workdir}\nloglevel = DEBUG\n"
            "[database]\n"
            f"default = {database}\n"
            "[alembic]\n"
            f"cfg = {etc / 'alembic.ini'}\n"
            "[policy]\npermission = generic\nschema = generic\n"
            "[bootstrap]\nuserpass_identity = ddmlab\nuserpass_pwd = secret\n"
            "userpass_email = rucio-admin@example.org\n"
            "[oidc]\n"
            f"idpsecrets = {etc / 'idpsecrets.json'}\n"
            f"admin_issuer = {admin}\n"
            f"expected_audience = {self.audience}\n"
            "expected_scope = openid profile\n"
            "[api]\nendpoints = \n"
        )

    def _setup(self) -> list[str]:
        return [str(self.python), "-m", "devstack.rucio_setup"]

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RUCIO_", "BEARER_"))}
        env["RUCIO_CONFIG"] = str(self.config_path)
        env["PYTHONPATH"] = str(REPO_ROOT)
        return env

    def bootstrap(self) -> None:
        """Configure, create the RSE directories and build the database (once)."""
        if self._bootstrapped:
            return
        self.write_config()
        for rse in self.rses:
            self.rse_path(rse).mkdir(parents=True, exist_ok=True)
        spec = {
            "accounts": [account.spec() for account in self.accounts],
            "rses": [{"name": rse, "path": str(self.rse_path(rse))} for rse in self.rses],
        }
        spec_path = self.workdir / "bootstrap.json"
        spec_path.write_text(json.dumps(spec, indent=2))
        done = subprocess.run(
            [*self._setup(), "bootstrap", str(spec_path)],
            env=self._env(),
            cwd=self.workdir,
            capture_output=True,
            check=False,
            text=True,
            timeout=300,
        )
        if done.returncode != 0:
            raise RucioError(f"Rucio bootstrap failed:\n{done.stdout}\n{done.stderr}")
        self._bootstrapped = True

    # -- process ----------------------------------------------------------------------------

    def start(self, timeout: float = 60) -> RucioServer:
        """Bootstrap if needed, start serving and wait until ``/ping`` answers."""
        if self._proc is not None:
            raise RucioError("Rucio server already started")
        self.bootstrap()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                [*self._setup(), "serve", self.host, f"{self.port}"],
                env=self._env(),
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + timeout
        while True:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                raise RucioError(f"Rucio server exited with {code}:\n{self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/ping", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RucioError(f"Rucio server not ready after {timeout}s:\n{self.log_tail()}")
            time.sleep(0.2)

    def stop(self) -> None:
        """Stop serving (SIGTERM, then SIGKILL); the database and RSEs stay."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def log_tail(self, lines: int = 40) -> str:
        """The last lines of the server's log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"

    def __enter__(self) -> RucioServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- client side ------------------------------------------------------------------------

    def rucio(
        self,
        *args: str,
        config: Path,
        token_file: Path | None = None,
        env: dict[str, str] | None = None,
        timeout: float = 120,
    ) -> subprocess.CompletedProcess[str]:
        """Run the ``rucio`` command line of the Rucio venv with a client ``config``.

        ``token_file`` is passed as ``BEARER_TOKEN_FILE``; stdin is closed, so a client that
        would start an interactive login fails instead of waiting.
        """
        run_env = {k: v for k, v in os.environ.items() if not k.startswith(("RUCIO_", "BEARER_"))}
        run_env.update(env or {})
        run_env["RUCIO_CONFIG"] = str(config)
        if token_file is not None:
            run_env["BEARER_TOKEN_FILE"] = str(token_file)
        return subprocess.run(
            [str(self.venv / "bin" / "rucio"), *args],
            env=run_env,
            stdin=subprocess.DEVNULL,
            capture_output=True,
            check=False,
            text=True,
            timeout=timeout,
        )
