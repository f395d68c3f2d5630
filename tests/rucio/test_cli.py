"""``iris-jupyterhub rucio identities`` on a real registry database and hub config file."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest

from iris_jupyterhub.cli import main
from iris_jupyterhub.posix import IdentityRegistry
from iris_jupyterhub.posix.accounts import IdentityKey
from iris_jupyterhub.rucio import validate_instances
from iris_jupyterhub.rucio.cli import identity_lines

IAM = "https://iris-iam.stfc.ac.uk/"
CONFIG = f"""
c.IAMAuthenticator.issuer = {IAM!r}
c.RucioTokens.instances = [
    {{"name": "ral", "rucio_host": "https://rucio.example.ac.uk", "groups": ["iris/lsst"]}},
    {{"name": "cam", "rucio_host": "https://rucio.cam.example.ac.uk", "groups": ["dune"],
      "account": "cam-{{username}}"}},
]
"""


@pytest.fixture
def hub(tmp_path: Path) -> tuple[str, Path]:
    url = f"sqlite:///{tmp_path / 'identities.sqlite'}"
    registry = IdentityRegistry(db_url=url)
    try:
        registry.map_identity(IdentityKey(IAM, "sub-ada"), "ada", ["iris", "iris/lsst", "dune"])
        registry.map_identity(IdentityKey(IAM, "sub-bob"), "bob", ["iris"])
        registry.map_identity(IdentityKey("https://other.example", "sub-eve"), "eve", ["dune"])
    finally:
        registry.close()
    config = tmp_path / "jupyterhub_config.py"
    config.write_text(CONFIG)
    return url, config


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_prints_rucio_admin_lines_for_members(
    hub: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, config = hub
    code, out, err = run(
        capsys,
        *("rucio", "identities", "--db-url", url, "--config", str(config)),
        *("--email", "{username}@example.ac.uk"),
    )
    assert code == 0, err
    assert out.splitlines() == [
        "# ral (https://rucio.example.ac.uk)",
        "rucio-admin identity add --account ada --type OIDC "
        "--id 'SUB=sub-ada, ISS=https://iris-iam.stfc.ac.uk/' --email ada@example.ac.uk",
        "# cam (https://rucio.cam.example.ac.uk)",
        "rucio-admin identity add --account cam-ada --type OIDC "
        "--id 'SUB=sub-ada, ISS=https://iris-iam.stfc.ac.uk/' --email ada@example.ac.uk",
        "rucio-admin identity add --account cam-eve --type OIDC "
        "--id 'SUB=sub-eve, ISS=https://other.example' --email eve@example.ac.uk",
    ]
    # each line is what rucio-admin's parser takes (rucio 41.5.1: identity add --account
    # --type --id --email)
    words = shlex.split(out.splitlines()[1])
    assert words[words.index("--id") + 1] == "SUB=sub-ada, ISS=https://iris-iam.stfc.ac.uk/"
    assert "issuer 'https://other.example' is not configured here" in err
    assert "3 identities for 2 instance(s)" in err


def test_accounts_first_and_one_instance(
    hub: tuple[str, Path], capsys: pytest.CaptureFixture[str]
) -> None:
    url, config = hub
    code, out, _ = run(
        capsys,
        *("rucio", "identities", "--db-url", url, "--config", str(config)),
        *("--email", "{account}@rucio.example", "--instance", "ral", "--add-accounts"),
        *("--account", "u-{username}"),
    )
    assert code == 0
    assert out.splitlines() == [
        "# ral (https://rucio.example.ac.uk)",
        "rucio-admin account add --type USER --email u-ada@rucio.example u-ada",
        "rucio-admin identity add --account u-ada --type OIDC "
        "--id 'SUB=sub-ada, ISS=https://iris-iam.stfc.ac.uk/' --email u-ada@rucio.example",
    ]


@pytest.mark.parametrize(
    ("extra", "problem"),
    [
        (("--email", "nobody"), "must be an address template"),
        (("--email", "{name}@x"), "must be an address template"),
        (("--email", "a@x", "--account", "{user}"), "--account: account '{user}' uses {user}"),
        (("--email", "a@x", "--instance", "nowhere"), "no Rucio instance to onboard"),
    ],
)
def test_usage_errors_are_one_line(
    hub: tuple[str, Path],
    capsys: pytest.CaptureFixture[str],
    extra: tuple[str, ...],
    problem: str,
) -> None:
    url, config = hub
    code, out, err = run(
        capsys, "rucio", "identities", "--db-url", url, "--config", str(config), *extra
    )
    assert code == 3
    assert out == ""
    assert err.startswith("iris-jupyterhub rucio identities: ")
    assert problem in err
    assert len(err.splitlines()) == 1


def test_without_instances_in_the_config(
    hub: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = hub
    empty = tmp_path / "empty_config.py"
    empty.write_text("")
    code, _, err = run(
        capsys, "rucio", "identities", "--db-url", url, "--config", str(empty), "--email", "a@x"
    )
    assert code == 3
    assert "c.RucioTokens.instances" in err


def test_nobody_to_onboard_needs_attention(
    hub: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = hub
    config = tmp_path / "other_config.py"
    config.write_text(
        "c.RucioTokens.instances = [{'name': 'x', 'rucio_host': 'https://r.example', "
        "'groups': ['lhcb', 'iris:role=manager']}]\n"
    )
    code, out, err = run(
        capsys, "rucio", "identities", "--db-url", url, "--config", str(config), "--email", "a@x"
    )
    assert (code, out) == (1, "")
    assert "rules with a role match no one here" in err


def test_identity_lines_skip_deleted_and_duplicates() -> None:
    from iris_jupyterhub.posix.accounts import PosixAccount, PosixGroup

    key = IdentityKey(IAM, "s")
    groups = (PosixGroup("ada", 1, None), PosixGroup("iris", 2, "iris"))
    live = PosixAccount(key, 1, 1, "ada", groups)
    gone = PosixAccount(IdentityKey(IAM, "t"), 3, 3, "old", groups, deleted=True)
    instances = validate_instances(
        [
            {"name": "a", "rucio_host": "https://a.example", "groups": ["iris"]},
            {"name": "b", "rucio_host": "https://b.example", "groups": ["iris"]},
        ]
    )
    lines, warnings = identity_lines([live, live, gone], instances, [IAM], "{username}@x")
    # the same account name at two Rucio instances: one line for each instance
    assert [(line.account, line.instance) for line in lines] == [("ada", "a"), ("ada", "b")]
    assert warnings == []


def test_a_user_at_two_instances_gets_a_line_under_each(
    hub: tuple[str, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    url, _ = hub
    config = tmp_path / "two_config.py"
    config.write_text(
        f"c.IAMAuthenticator.issuer = {IAM!r}\n"
        "c.RucioTokens.instances = [\n"
        "    {'name': 'ral', 'rucio_host': 'https://rucio.ral.example', 'groups': ['iris']},\n"
        "    {'name': 'cam', 'rucio_host': 'https://rucio.cam.example', 'groups': ['dune']},\n"
        "]\n"
    )
    code, out, err = run(
        capsys,
        *("rucio", "identities", "--db-url", url, "--config", str(config)),
        *("--email", "{username}@example.ac.uk"),
    )
    assert code == 0, err
    ada = (
        "rucio-admin identity add --account ada --type OIDC "
        "--id 'SUB=sub-ada, ISS=https://iris-iam.stfc.ac.uk/' --email ada@example.ac.uk"
    )
    assert out.splitlines() == [
        "# ral (https://rucio.ral.example)",
        ada,
        "rucio-admin identity add --account bob --type OIDC "
        "--id 'SUB=sub-bob, ISS=https://iris-iam.stfc.ac.uk/' --email bob@example.ac.uk",
        "# cam (https://rucio.cam.example)",
        ada,
        "rucio-admin identity add --account eve --type OIDC "
        "--id 'SUB=sub-eve, ISS=https://other.example' --email eve@example.ac.uk",
    ]
    assert "4 identities for 2 instance(s)" in err
