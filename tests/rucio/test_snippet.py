"""``jupyterhub_config.d/60-rucio.py``, loaded the ways a hub loads it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from jupyterhub.app import JupyterHub

from iris_jupyterhub.rucio import SCOPE, USER_SCOPE
from iris_jupyterhub.snippets import SnippetSettingError
from tests.snippets.loaders import load

WAYS = ["plain", "subconfig", "extraFiles", "extraConfig"]
INSTANCES = [{"name": "ral", "rucio_host": "https://rucio.example.ac.uk", "groups": ["iris"]}]


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith(("IRIS_", "OS_")):
            monkeypatch.delenv(name)


@pytest.mark.parametrize("how", WAYS)
def test_loads_every_way(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRIS_RUCIO_INSTANCE_LIST", json.dumps(INSTANCES))
    monkeypatch.setenv("IRIS_RUCIO_RENEWAL_MARGIN", "60")
    monkeypatch.setenv("IRIS_RUCIO_NOTEBOOK_DIR", "/run/rucio")
    c = load("60-rucio.py", how, tmp_path, monkeypatch)
    assert c.RucioTokens.instances == INSTANCES
    assert c.RucioTokens.renewal_margin == 60
    assert c.RucioTokens.notebook_dir == "/run/rucio"
    hub = JupyterHub(config=c)  # the values as the hub reads them
    assert SCOPE in hub.custom_scopes
    assert USER_SCOPE in hub.extra_user_scopes
    assert USER_SCOPE in c.Spawner.server_token_scopes
    assert not any("admin:auth_state" in s for s in c.Spawner.server_token_scopes)


@pytest.mark.parametrize("how", ["extraFiles", "extraConfig"])
def test_from_chart_values(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    custom = {"rucio": {"instances": INSTANCES, "renewalMargin": 30}}
    c = load("60-rucio.py", how, tmp_path, monkeypatch, custom=custom)
    assert c.RucioTokens.instances == INSTANCES
    assert c.RucioTokens.renewal_margin == 30


@pytest.mark.parametrize("how", ["plain", "extraFiles"])
def test_instances_are_required(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(
        SnippetSettingError, match=r"60-rucio\.py: IRIS_RUCIO_INSTANCE_LIST is not set"
    ):
        load("60-rucio.py", how, tmp_path, monkeypatch)


def test_a_bad_instance_stops_the_hub(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRIS_RUCIO_INSTANCE_LIST", json.dumps([{**INSTANCES[0], "vo": "long"}]))
    from iris_jupyterhub.startup import check_config

    c = load("60-rucio.py", "plain", tmp_path, monkeypatch)
    with pytest.raises(ValueError, match=r"RucioTokens\.instances\[0\] \('ral'\): vo 'long'"):
        check_config(c)
