"""``iris-jupyterhub posix ...`` against real registries (SQLite and PostgreSQL)."""

from __future__ import annotations

import itertools
import json
import os
import stat
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text, update

from iris_jupyterhub.cli import main
from iris_jupyterhub.posix import IdentityKey, IdentityRegistry, PosixAccount
from iris_jupyterhub.posix.models import Identity

from .conftest import RegistryFactory

IAM = "https://iris-iam.stfc.ac.uk"
CHECKIN = "https://aai.egi.eu/auth/realms/egi"
HOSTILE_SUBJECT = 'x,"y"\n../../etc/passwd:0:0\u202e'
REPO = Path(__file__).resolve().parents[2]
_databases = itertools.count()


@dataclass
class Result:
    code: int
    out: str
    err: str


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> Result:
    """Run the console script in-process and capture what it prints."""
    code = main(list(argv))
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return Result(code, captured.out, captured.err)


@pytest.fixture
def source(make_registry: RegistryFactory) -> tuple[str, list[PosixAccount]]:
    """A registry with three people (one with a hostile subject) and their accounts."""
    registry = make_registry()
    accounts = [
        registry.map_identity(IdentityKey(IAM, "a1b2"), "alice", ["iris", "iris/lsst"]),
        registry.map_identity(IdentityKey(CHECKIN, "bob@egi.eu"), "bob", ["vo.iris.ac.uk"]),
        registry.map_identity(IdentityKey(IAM, HOSTILE_SUBJECT), "carol:0:0", []),
    ]
    return registry.url, accounts


@pytest.fixture
def fresh_url(request: pytest.FixtureRequest, db_url: str, tmp_path: Path) -> str:
    """Another empty database on the same backend as ``db_url``."""
    if db_url.startswith("sqlite"):
        return f"sqlite:///{tmp_path / f'other{next(_databases)}.sqlite'}"
    server = request.getfixturevalue("pg_server")
    return str(server.create_database(f"cli{next(_databases)}"))


def test_lookup_by_key_uid_and_username(
    capsys: pytest.CaptureFixture[str], source: tuple[str, list[PosixAccount]]
) -> None:
    url, (alice, _, carol) = source
    for selector in (
        ["--issuer", IAM, "--subject", "a1b2"],
        ["--uid", str(alice.uid)],
        ["--username", alice.username],
    ):
        result = run(capsys, "posix", "lookup", "--db-url", url, *selector)
        assert result.code == 0
        shown = json.loads(result.out)
        assert (shown["uid"], shown["gid"], shown["username"]) == (alice.uid, alice.gid, "alice")
        assert [g["canonical"] for g in shown["groups"]] == [None, "iris", "iris/lsst"]
    shown = json.loads(
        run(capsys, "posix", "lookup", "--db-url", url, "--uid", str(carol.uid)).out
    )
    assert shown["subject"] == HOSTILE_SUBJECT


def test_lookup_missing_and_bad_arguments(
    capsys: pytest.CaptureFixture[str], source: tuple[str, list[PosixAccount]]
) -> None:
    url = source[0]
    missing = run(capsys, "posix", "lookup", "--db-url", url, "--username", "nobody")
    assert missing.code == 1
    assert "no such identity" in missing.err
    half_key = run(capsys, "posix", "lookup", "--db-url", url, "--issuer", IAM)
    assert half_key.code == 3
    assert "--subject" in half_key.err
    with pytest.raises(SystemExit) as usage:
        main(["posix", "lookup", "--db-url", url, "--uid", "1", "--username", "a"])
    assert usage.value.code == 2


def pwd_entries(path: Path) -> list[list[str]]:
    lines = path.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == ""
    return [line.split(":") for line in lines[:-1]]


def test_export_passwd_and_group_files(
    capsys: pytest.CaptureFixture[str], source: tuple[str, list[PosixAccount]], tmp_path: Path
) -> None:
    url, accounts = source
    out = tmp_path / "etc" / "passwd"
    out.parent.mkdir()
    out.write_text("old\n")
    out.chmod(0o600)
    home = "/ceph/home/{username}"
    result = run(capsys, "posix", "export", "--db-url", url, "--format", "passwd",
                 "--out", str(out), "--home-template", home)  # fmt: skip
    assert result.code == 0
    assert result.out == ""
    assert stat.S_IMODE(out.stat().st_mode) == 0o644
    assert sorted(p.name for p in out.parent.iterdir()) == ["passwd"]  # no temporary left
    entries = pwd_entries(out)
    assert all(len(entry) == 7 for entry in entries)
    assert {(e[0], int(e[2]), int(e[3]), e[5]) for e in entries} == {
        (a.username, a.uid, a.gid, f"/ceph/home/{a.username}") for a in accounts
    }

    group = tmp_path / "etc" / "group"
    assert run(capsys, "posix", "export", "--db-url", url, "--format", "group",
               "--out", str(group)).code == 0  # fmt: skip
    groups = {}
    for line in group.read_text().splitlines():
        name, _, gid, members = line.split(":")
        groups[name] = (int(gid), members.split(",") if members else [])
    alice = accounts[0]
    for person in accounts:  # personal groups, the user as member
        assert groups[person.username] == (person.gid, [person.username])
    iris = alice.groups[1]
    assert groups[iris.name] == (iris.gid, ["alice"])
    assert len(groups) == 3 + 3


def test_json_export_import_round_trip(
    capsys: pytest.CaptureFixture[str],
    source: tuple[str, list[PosixAccount]],
    fresh_url: str,
    tmp_path: Path,
) -> None:
    url, accounts = source
    exported = tmp_path / "identities.json"
    assert run(capsys, "posix", "export", "--db-url", url, "--format", "json",
               "--out", str(exported)).code == 0  # fmt: skip
    imported = run(capsys, "posix", "import", str(exported), "--format", "json",
                   "--db-url", fresh_url)  # fmt: skip
    assert imported.code == 0, imported.err
    assert imported.out.endswith("3 added, 0 unchanged, 0 conflicts\n")
    again = run(capsys, "posix", "export", "--db-url", fresh_url, "--format", "json")
    assert again.out == exported.read_text()
    registry = IdentityRegistry(db_url=fresh_url)
    try:
        copied = {a.key: a for a in registry.iter_accounts()}
    finally:
        registry.close()
    for original in accounts:
        copy = copied[original.key]
        assert (copy.uid, copy.gid, copy.username) == (
            original.uid,
            original.gid,
            original.username,
        )
        assert copy.groups == original.groups
        assert copy.pinned
    repeat = run(capsys, "posix", "import", str(exported), "--format", "json",
                 "--db-url", fresh_url)  # fmt: skip
    assert repeat.code == 0
    assert repeat.out.endswith("0 added, 3 unchanged, 0 conflicts\n")


def test_passwd_and_identity_map_round_trip(
    capsys: pytest.CaptureFixture[str],
    source: tuple[str, list[PosixAccount]],
    fresh_url: str,
    tmp_path: Path,
) -> None:
    url = source[0]
    passwd, identity_map = tmp_path / "passwd", tmp_path / "map.csv"
    for fmt, path in (("passwd", passwd), ("csv", identity_map)):
        assert run(capsys, "posix", "export", "--db-url", url, "--format", fmt,
                   "--out", str(path)).code == 0  # fmt: skip
    result = run(capsys, "posix", "import", str(passwd), "--format", "passwd",
                 "--map", str(identity_map), "--db-url", fresh_url)  # fmt: skip
    assert result.code == 0, result.err
    for fmt, path in (("passwd", passwd), ("csv", identity_map)):
        assert run(capsys, "posix", "export", "--db-url", fresh_url, "--format", fmt).out == (
            path.read_text()
        )
    no_map = run(capsys, "posix", "import", str(passwd), "--format", "passwd",
                 "--db-url", fresh_url)  # fmt: skip
    assert no_map.code == 3
    assert "--map" in no_map.err


def test_import_conflicts_are_reported_and_skipped(
    capsys: pytest.CaptureFixture[str], source: tuple[str, list[PosixAccount]], tmp_path: Path
) -> None:
    url, (alice, bob, _) = source
    csv = tmp_path / "site.csv"
    csv.write_text(
        "issuer,subject,username,uid,gid\n"
        f"{IAM},someone-else,mallory,{alice.uid},\n"  # alice's uid
        f"{CHECKIN},bob@egi.eu,bob,{bob.uid + 1},\n"  # bob already has another uid
        f"{IAM},dave-1,dave,1234567,\n"
    )
    result = run(capsys, "posix", "import", str(csv), "--format", "csv", "--db-url", url)
    assert result.code == 1
    assert "1 added, 0 unchanged, 2 conflicts" in result.out
    assert "conflicts (not imported) (2):" in result.err
    lookup = run(capsys, "posix", "lookup", "--db-url", url, "--uid", str(alice.uid))
    assert json.loads(lookup.out)["username"] == "alice"  # never overwritten
    dave = json.loads(run(capsys, "posix", "lookup", "--db-url", url, "--username", "dave").out)
    assert dave["uid"] == 1234567
    assert dave["pinned"]


def test_import_with_bad_lines_imports_nothing_unless_partial(
    capsys: pytest.CaptureFixture[str], db_url: str, tmp_path: Path
) -> None:
    csv = tmp_path / "site.csv"
    csv.write_text(f"{IAM},e1,erin,1300001\n{IAM},f1,Frank!,1300002\n{IAM},g1,gina\n")
    refused = run(capsys, "posix", "import", str(csv), "--format", "csv", "--db-url", db_url)
    assert refused.code == 1
    assert "nothing imported" in refused.err
    assert "line 2:" in refused.err
    assert "line 3:" in refused.err
    missing = run(capsys, "posix", "lookup", "--db-url", db_url, "--username", "erin")
    assert missing.code == 1
    partial = run(capsys, "posix", "import", str(csv), "--format", "csv", "--partial",
                  "--db-url", db_url)  # fmt: skip
    assert partial.code == 1
    assert "1 added" in partial.out
    assert run(capsys, "posix", "lookup", "--db-url", db_url, "--username", "erin").code == 0


def test_pin(capsys: pytest.CaptureFixture[str], source: tuple[str, list[PosixAccount]]) -> None:
    url, (alice, _, _) = source
    args = ["posix", "pin", "--db-url", url, "--issuer", IAM, "--subject", "site-user"]
    added = run(capsys, *args, "--uid", "1400000", "--username", "siteuser", "--gid", "1400000")
    assert added.code == 0
    assert added.out.startswith("added: siteuser uid=1400000 gid=1400000")
    same = run(capsys, *args, "--uid", "1400000", "--username", "siteuser", "--gid", "1400000")
    assert same.code == 0
    assert same.out.startswith("unchanged:")
    taken = run(capsys, *args[:-1], "other", "--uid", str(alice.uid))
    assert taken.code == 1
    assert "pin refused (1):" in taken.err
    assert "alice" in taken.err


def test_check_reports_a_tampered_row(
    capsys: pytest.CaptureFixture[str], source: tuple[str, list[PosixAccount]]
) -> None:
    url, (alice, _, _) = source
    clean = run(capsys, "posix", "check", "--db-url", url)
    assert clean.code == 0
    assert clean.out == "ok: no integrity problems\n"
    engine = create_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text("DROP INDEX ix_posix_identities_uid"))
            connection.execute(
                update(Identity).where(Identity.username == "bob").values(uid=alice.uid)
            )
    finally:
        engine.dispose()
    tampered = run(capsys, "posix", "check", "--db-url", url)
    assert tampered.code == 2
    assert "duplicate-uid" in tampered.out
    assert "1 integrity problem" in tampered.err
    assert "alice" in tampered.out
    assert "bob" in tampered.out


def populate(url: str, subject: str) -> int:
    registry = IdentityRegistry(db_url=url)
    try:
        return registry.map_identity(IdentityKey(IAM, subject), subject, []).uid
    finally:
        registry.close()


def test_database_is_found_in_a_fixed_order(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("IRIS_REGISTRY_DB_URL", raising=False)
    urls = {name: f"sqlite:///{tmp_path / name}.sqlite" for name in ("flag", "config", "env")}
    for name, url in urls.items():
        populate(url, name)
    populate("sqlite:///iris-identities.sqlite", "default")  # the default, in the cwd
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        "c = get_config()  # noqa\n"
        f"c.IdentityRegistry.db_url = {urls['config']!r}\n"
        "c.JupyterHub.authenticator_class = 'iris-iam'\n"
    )

    def found(*options: str) -> str:
        result = run(capsys, "posix", "export", "--format", "csv", *options)
        assert result.code == 0, result.err
        return result.out.splitlines()[1].split(",")[1].strip('"')

    assert found() == "default"
    monkeypatch.setenv("IRIS_REGISTRY_DB_URL", urls["env"])
    assert found() == "env"
    assert found("--config", str(config)) == "config"
    assert found("--config", str(config), "--db-url", urls["flag"]) == "flag"
    assert found("--db-url", urls["flag"]) == "flag"
    help_text = subprocess.run(
        [sys.executable, "-m", "iris_jupyterhub.cli", "posix", "export", "--help"],
        capture_output=True, text=True, check=True, cwd=REPO,
    ).stdout  # fmt: skip
    assert "IRIS_REGISTRY_DB_URL" in help_text
    assert "--config" in help_text


def test_config_supplies_ranges_and_bad_config_is_an_error(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = f"sqlite:///{tmp_path / 'r.sqlite'}"
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        "c = get_config()  # noqa\n"
        "c.IdentityRegistry.uid_range = (5_000_000, 5_999_999)\n"
        "c.IdentityRegistry.gid_range = (5_000_000, 6_999_999)\n"
    )
    overlap = run(capsys, "posix", "check", "--db-url", url, "--config", str(config))
    assert overlap.code == 3
    assert "overlaps" in overlap.err
    config.write_text("c = get_config(\n")
    broken = run(capsys, "posix", "check", "--db-url", url, "--config", str(config))
    assert broken.code == 3
    assert "SyntaxError" in broken.err
    gone = run(capsys, "posix", "check", "--config", str(tmp_path / "missing.py"))
    assert gone.code == 3
    assert "does not exist" in gone.err


def test_json_import_warns_when_group_gids_differ(
    capsys: pytest.CaptureFixture[str], source: tuple[str, list[PosixAccount]], tmp_path: Path
) -> None:
    exported = tmp_path / "identities.json"
    exported.write_text(
        run(capsys, "posix", "export", "--db-url", source[0], "--format", "json").out
    )
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(
        "c = get_config()  # noqa\nc.IdentityRegistry.gid_range = (1500000000, 1599999999)\n"
    )
    url = f"sqlite:///{tmp_path / 'elsewhere.sqlite'}"
    result = run(capsys, "posix", "import", str(exported), "--format", "json",
                 "--db-url", url, "--config", str(config))  # fmt: skip
    assert result.code == 1
    assert "3 added, 0 unchanged, 0 conflicts" in result.out
    assert "groups with another gid than in the file (3):" in result.err
    assert "group 'iris': gid 15" in result.err


def test_registry_errors_exit_3_without_traceback(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    unreachable = f"sqlite:///{tmp_path / 'no' / 'such' / 'dir.sqlite'}"
    result = run(capsys, "posix", "lookup", "--db-url", unreachable, "--uid", "1")
    assert result.code == 3
    assert "unavailable" in result.err
    missing = run(capsys, "posix", "import", str(tmp_path / "nope.csv"), "--format", "csv",
                  "--db-url", unreachable)  # fmt: skip
    assert missing.code == 3
    assert "nope.csv" in missing.err


def test_console_script_in_a_subprocess(
    source: tuple[str, list[PosixAccount]], tmp_path: Path
) -> None:
    url, accounts = source
    env = {**os.environ, "IRIS_REGISTRY_DB_URL": url}
    command = [sys.executable, "-m", "iris_jupyterhub.cli", "posix"]
    done = subprocess.run([*command, "export", "--format", "passwd"], capture_output=True,
                          text=True, env=env, cwd=tmp_path, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert [line.split(":")[0] for line in done.stdout.splitlines()] == sorted(
        (a.username for a in accounts), key=lambda name: next(
            a.uid for a in accounts if a.username == name)
    )  # fmt: skip
    failed = subprocess.run([*command, "lookup", "--uid", "1", "--db-url", "sqlite:////no/x.db"],
                            capture_output=True, text=True, cwd=tmp_path, check=False)  # fmt: skip
    assert failed.returncode == 3
    assert "Traceback" not in failed.stderr
    assert failed.stderr.count("\n") == 1
