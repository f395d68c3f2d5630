"""One default database for the hub, ``iris-jupyterhub posix`` and ``iris-jupyterhub accounting``.

Given the same ``jupyterhub_config.py`` (the hub's database elsewhere than the working
directory, no ``c.IdentityRegistry.db_url``), the hub's registry (the authenticators'
:func:`~iris_jupyterhub.auth.posix_mapping.make_registry`), the ``posix`` commands and
the ``accounting`` commands must all open the same SQLite file.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from jupyterhub.app import JupyterHub
from jupyterhub.auth import Authenticator
from traitlets.config.loader import PyFileConfigLoader

from iris_jupyterhub.accounting import AccountingStore
from iris_jupyterhub.auth.posix_mapping import make_registry
from iris_jupyterhub.cli import main
from iris_jupyterhub.db import hub_db_url, registry_db_url
from iris_jupyterhub.posix import IdentityKey

from ..accounting.conftest import session

KEY = IdentityKey("https://iris-iam.stfc.ac.uk", "a1b2-c3d4")


def test_hub_posix_and_accounting_commands_open_the_same_default_database(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hub_dir = tmp_path / "sub"
    hub_dir.mkdir()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # commands run from another directory than the hub's
    monkeypatch.delenv("IRIS_REGISTRY_DB_URL", raising=False)
    config_file = tmp_path / "jupyterhub_config.py"
    config_file.write_text(
        "c = get_config()  # noqa\n"
        f"c.JupyterHub.db_url = 'sqlite:///{hub_dir / 'jupyterhub.sqlite'}'\n"
    )
    config = PyFileConfigLoader(config_file.name, path=str(tmp_path)).load_config()

    # the hub: the authenticator's registry, parented by the JupyterHub application
    hub = JupyterHub(config=config)
    registry = make_registry(Authenticator(parent=hub))
    try:
        account = registry.map_identity(KEY, "ada", ["iris"])
        AccountingStore(registry.engine).open_session(session(1, hub_user="ada"))
    finally:
        registry.close()
    expected = hub_dir / "iris-identities.sqlite"
    assert registry.url == f"sqlite:///{expected}"
    assert expected.is_file()

    lookup = ["posix", "lookup", "--issuer", KEY.issuer, "--subject", KEY.subject]
    posix = main([*lookup, "--config", str(config_file)])
    out, err = capsys.readouterr()
    assert posix == 0, err
    assert f'"uid": {account.uid}' in out

    accounting = main(["accounting", "list", "--open", "--config", str(config_file)])
    out, err = capsys.readouterr()
    assert accounting == 0, err
    assert f"{1:032x}" in out
    assert list(elsewhere.iterdir()) == []  # no second database in the working directory


def test_the_rule_first_match_wins() -> None:
    config = PyFileConfigLoader("none.py", path="/nonexistent").config  # empty
    assert hub_db_url(config) == "sqlite:///jupyterhub.sqlite"  # JupyterHub's default
    assert registry_db_url(config) == "sqlite:///iris-identities.sqlite"
    config.JupyterHub.db_url = "/srv/hub/jupyterhub.sqlite"  # a file name: SQLite
    assert hub_db_url(config) == "sqlite:////srv/hub/jupyterhub.sqlite"
    assert registry_db_url(config) == "sqlite:////srv/hub/iris-identities.sqlite"
    running = "sqlite:////var/lib/hub/jupyterhub.sqlite"  # the running hub's wins
    assert (
        registry_db_url(config, hub_db=running) == "sqlite:////var/lib/hub/iris-identities.sqlite"
    )
    assert (
        registry_db_url(config, hub_db="sqlite:///:memory:") == "sqlite:///iris-identities.sqlite"
    )
    env = {"IRIS_REGISTRY_DB_URL": "sqlite:////env.sqlite"}
    assert registry_db_url(config) == "sqlite:////srv/hub/iris-identities.sqlite"  # hub: no env
    assert registry_db_url(config, environ=env) == "sqlite:////env.sqlite"
    config.IdentityRegistry.db_url = "postgresql+psycopg://db/reg"
    assert registry_db_url(config, environ=env) == "postgresql+psycopg://db/reg"
    assert registry_db_url(config, environ=env, explicit="sqlite:////x") == "sqlite:////x"
