"""A throwaway PostgreSQL server from Debian's packages, for tests that need a real one.

``initdb`` and ``pg_ctl`` are found under ``/usr/lib/postgresql/<version>/bin`` and run as
the unprivileged ``postgres`` user when the tests run as root. Data, socket and log live in
a temporary directory that is removed on :meth:`PostgresServer.stop`.
"""

from __future__ import annotations

import glob
import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from devstack.idp import free_port

__all__ = ["PostgresServer", "find_pg_bin", "postgres_server"]


def find_pg_bin() -> Path | None:
    """The newest ``/usr/lib/postgresql/<version>/bin`` with ``initdb``, or None."""
    found = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda p: int(Path(p).parts[-3]) if Path(p).parts[-3].isdigit() else 0,
    )
    return Path(found[-1]).parent if found else None


class PostgresServer:
    """``initdb`` + ``pg_ctl`` on a random loopback port; ``url`` names one database."""

    def __init__(self, database: str = "registry", user: str = "postgres") -> None:
        bin_dir = find_pg_bin()
        if bin_dir is None:
            raise RuntimeError("PostgreSQL is not installed: apt-get install -y postgresql")
        self.bin_dir = bin_dir
        self.database = database
        self.os_user = user
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="iris-pg-"))
        self.data = self.root / "data"
        self.socket_dir = self.root / "run"
        self.log = self.root / "postgres.log"
        self.socket_dir.mkdir()
        if os.geteuid() == 0:
            shutil.chown(self.root, user)
            shutil.chown(self.socket_dir, user)

    def _run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        prefix = ["runuser", "-u", self.os_user, "--"] if os.geteuid() == 0 else []
        return subprocess.run(
            [*prefix, *args], check=check, capture_output=True, text=True, timeout=120
        )

    @property
    def url(self) -> str:
        """SQLAlchemy URL of the test database."""
        return self.url_for(self.database)

    def url_for(self, database: str) -> str:
        """SQLAlchemy URL of another database on this server."""
        return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/{database}"

    def init(self) -> None:
        """Create the cluster (trust authentication, loopback only)."""
        self._run(
            str(self.bin_dir / "initdb"), "-D", str(self.data), "-U", "postgres",
            "--auth=trust", "--encoding=UTF8", "--no-sync",
        )  # fmt: skip

    def start(self) -> None:
        """Start the server and wait until it accepts connections."""
        options = (
            f"-p {self.port} -c listen_addresses=127.0.0.1 -c fsync=off "
            f"-c synchronous_commit=off -c full_page_writes=off "
            f"-c unix_socket_directories={self.socket_dir} -c max_connections=200"
        )
        self._run(
            str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
            "-o", options, "-w", "-t", "60", "start",
        )  # fmt: skip

    def stop(self) -> None:
        """Stop the server (fast shutdown); the data directory stays."""
        self._run(str(self.bin_dir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop",
                  check=False)  # fmt: skip

    def create_database(self, name: str) -> str:
        """Create database ``name`` and return its URL."""
        self._run(
            str(self.bin_dir / "psql"), "-h", str(self.socket_dir), "-p", str(self.port),
            "-U", "postgres", "-d", "postgres", "-v", "ON_ERROR_STOP=1",
            "-c", f'CREATE DATABASE "{name}"',
        )  # fmt: skip
        return self.url_for(name)

    def remove(self) -> None:
        """Stop the server and delete its directory."""
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    def wait_ready(self, timeout: float = 30) -> None:
        """Wait until ``pg_isready`` succeeds."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            ready = self._run(
                str(self.bin_dir / "pg_isready"), "-h", "127.0.0.1", "-p", str(self.port),
                check=False,
            )  # fmt: skip
            if ready.returncode == 0:
                return
            time.sleep(0.1)
        raise RuntimeError(f"PostgreSQL did not start; see {self.log}")


@contextmanager
def postgres_server(database: str = "registry") -> Iterator[PostgresServer]:
    """A running server with ``database`` created; removed afterwards."""
    server = PostgresServer(database)
    try:
        server.init()
        server.start()
        server.wait_ready()
        server.create_database(database)
        yield server
    finally:
        server.remove()
