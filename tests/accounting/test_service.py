"""The accounting service: what it plans, and one real run into an XDMoD directory and a dirq."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

from dirq.QueueSimple import QueueSimple
from traitlets.config import Config

from devstack.hub import REPO_ROOT
from iris_jupyterhub.accounting import AccountingStore
from iris_jupyterhub.accounting.config import SessionAccounting
from iris_jupyterhub.accounting.service import plan_exports

from .conftest import at, session

NOW = at(2026, 3, 2, 12, 30, 0)


def settings(**values: object) -> SessionAccounting:
    config = Config()
    for key, value in values.items():
        config.SessionAccounting[key] = value
    return SessionAccounting(config=config)


def test_plan() -> None:
    both = settings(site_name="IRIS-TEST", xdmod_out_dir="/srv/xdmod", export_days=2)
    jobs = plan_exports(NOW, both, last_apel_day=None)
    assert [(j.format, j.start, j.end, j.out) for j in jobs] == [
        ("xdmod", at(2026, 2, 28), NOW, "/srv/xdmod"),
        ("apel", at(2026, 2, 1), NOW, "/var/spool/apel/outgoing"),
    ]
    # APEL once a day
    assert [j.format for j in plan_exports(NOW, both, last_apel_day=NOW.date())] == ["xdmod"]
    assert [j.format for j in plan_exports(NOW + timedelta(days=1), both, NOW.date())] == [
        "xdmod",
        "apel",
    ]
    # nothing configured, nothing to do
    assert plan_exports(NOW, settings(), None) == []


def test_one_run_writes_xdmod_and_apel(tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'iris-identities.sqlite'}"
    store = AccountingStore.from_url(db)
    try:
        # relative to the real clock: one ended yesterday, one still running
        today = datetime.now(timezone.utc).replace(hour=0, minute=0, second=0, microsecond=0)
        store.open_session(session(1, start=today - timedelta(hours=20)))
        store.close_session(f"{1:032x}", today - timedelta(hours=18), "stopped")
        store.open_session(session(2, start=today - timedelta(hours=2)))
    finally:
        store.close()
    config = tmp_path / "jupyterhub_config.py"
    spool = tmp_path / "apel"
    xdmod = tmp_path / "xdmod"
    config.write_text(
        "c = get_config()  # noqa\n"
        f"c.SessionAccounting.db_url = {db!r}\n"
        "c.SessionAccounting.site_name = 'IRIS-TEST'\n"
        f"c.SessionAccounting.apel_spool_dir = {str(spool)!r}\n"
        f"c.SessionAccounting.xdmod_out_dir = {str(xdmod)!r}\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "iris_jupyterhub.accounting.service", "--config", str(config),
         "--once"],
        capture_output=True, text=True, cwd=REPO_ROOT, timeout=120, check=False,
    )  # fmt: skip
    assert r.returncode == 0, r.stderr
    [xdmod_file] = list(xdmod.iterdir())
    lines = xdmod_file.read_text().splitlines()
    assert len(lines) == 1  # the ended session; the running one is not a job yet
    assert lines[0].split("|")[2] == "iris-test"  # resource: the site name
    queue = QueueSimple(str(spool))
    messages = []
    for name in queue:
        if queue.lock(name):
            messages.append(queue.get(name))
            queue.unlock(name)
    text = "".join(m.decode() if isinstance(m, bytes) else m for m in messages)
    assert text.startswith("APEL-cloud-message: v0.4")
    assert f"VMUUID: {1:032x}" in text
    assert f"VMUUID: {2:032x}" in text
    assert "SiteName: IRIS-TEST" in text


def test_service_command_for_the_cli(tmp_path: Path) -> None:
    import argparse

    from iris_jupyterhub.accounting.service import add_service_command

    parser = argparse.ArgumentParser()
    add_service_command(parser.add_subparsers(dest="command", required=True))
    db = f"sqlite:///{tmp_path / 'empty.sqlite'}"
    args = parser.parse_args(["service", "--db-url", db, "--once"])
    assert args.handler(args) == 0  # nothing configured to export: an empty round
