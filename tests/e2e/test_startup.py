"""Admin mistakes stop the real hub at start-up with a message naming the setting."""

from __future__ import annotations

from pathlib import Path

import pytest

from devstack.hub import HubProcess
from devstack.idp import free_port

pytestmark = pytest.mark.e2e

BASE = """
c.JupyterHub.authenticator_class = "iris-iam"
c.IAMAuthenticator.issuer = "http://127.0.0.1:9/"
c.IAMAuthenticator.client_id = "hub"
c.IAMAuthenticator.client_secret = "s3cret"
c.IAMAuthenticator.allowed_groups = {"iris"}
"""


def start_failure(tmp_path: Path, config: str, env: dict[str, str] | None = None) -> str:
    hub = HubProcess(tmp_path, free_port(), BASE + config, env=env)
    with pytest.raises(RuntimeError, match="jupyterhub exited") as info:
        hub.start(timeout=60)
    hub.stop()
    return str(info.value)


def test_missing_crypt_key_names_the_setting(tmp_path: Path) -> None:
    message = start_failure(tmp_path, "", env={"JUPYTERHUB_CRYPT_KEY": ""})
    assert "JUPYTERHUB_CRYPT_KEY" in message


@pytest.mark.parametrize(
    ("config", "named"),
    [
        ('c.IAMAuthenticator.issuer = "http://iam.example.org/"', "IAMAuthenticator.issuer"),
        ('c.IAMAuthenticator.allowed_groups = {"iris/"}', "IAMAuthenticator.allowed_groups"),
        (
            'c.IAMAuthenticator.required_groups = {"iris:role="}',
            "IAMAuthenticator.required_groups",
        ),
        ('c.IAMAuthenticator.group_claims = {"groups": "csv"}', "IAMAuthenticator.group_claims"),
        (
            'c.IAMAuthenticator.id_token_algorithms = ["HS256"]',
            "IAMAuthenticator.id_token_algorithms",
        ),
        ("c.IAMAuthenticator.id_token_leeway = 100000", "IAMAuthenticator.id_token_leeway"),
        ('c.IAMAuthenticator.client_id = ""', "IAMAuthenticator.client_id"),
    ],
)
def test_bad_config_stops_the_hub_naming_the_trait(
    tmp_path: Path, config: str, named: str
) -> None:
    assert named in start_failure(tmp_path, config)


def test_unknown_checkin_instance(tmp_path: Path) -> None:
    config = """
c.JupyterHub.authenticator_class = "egi-checkin"
c.EGICheckinAuthenticator.client_id = "hub"
c.EGICheckinAuthenticator.checkin_instance = "staging"
"""
    assert "EGICheckinAuthenticator.checkin_instance" in start_failure(tmp_path, config)


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (
            "c.ManilaStorage.enabled = True\nc.ManilaStorage.auth_url = ''",
            "ManilaStorage.auth_url",
        ),
        ("c.SessionAccounting.heartbeat_interval = -5", "SessionAccounting.heartbeat_interval"),
    ],
)
def test_other_components_bad_options_stop_the_hub(
    tmp_path: Path, config: str, named: str
) -> None:
    """The IRIS authenticator checks c.ManilaStorage / c.SessionAccounting at start-up."""
    assert named in start_failure(tmp_path, config, env={"OS_AUTH_URL": ""})
