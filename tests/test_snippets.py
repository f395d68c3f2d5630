"""The ``jupyterhub_config.d/`` templates, loaded as a plain hub and inside z2jh."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.snippets.loaders import load

WAYS = ["plain", "subconfig", "extraFiles", "extraConfig"]

IAM_ENV = {
    "IRIS_HUB_URL": "https://hub.example.ac.uk/",
    "IRIS_IAM_CLIENT_ID": "hub-client",
    "IRIS_IAM_CLIENT_SECRET": "s3cret",
    "IRIS_IAM_ALLOWED_GROUPS": "iris, iris/lsst",
}


@pytest.mark.parametrize("how", WAYS)
def test_iam_loads_every_way(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in IAM_ENV.items():
        monkeypatch.setenv(key, value)
    c = load("10-iris-iam.py", how, tmp_path, monkeypatch)
    assert c.JupyterHub.authenticator_class == "iris-iam"
    assert c.IAMAuthenticator.client_id == "hub-client"
    assert c.IAMAuthenticator.oauth_callback_url == "https://hub.example.ac.uk/hub/oauth_callback"
    assert c.IAMAuthenticator.allowed_groups == {"iris", "iris/lsst"}
