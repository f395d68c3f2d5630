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


@pytest.mark.parametrize(
    ("config", "named"),
    [
        (
            'c.JupyterHub.spawner_class = "iris"\n'
            'c.IRISSpawner.profile_list = [{"display_name": "GPU", "resources": {"gpus": 1}}]',
            "IRISSpawner.profile_list",
        ),
        (  # Zero to JupyterHub writes singleuser.profileList to c.KubeSpawner.profile_list
            'c.JupyterHub.spawner_class = "iris"\n'
            'c.KubeSpawner.profile_list = [{"display_name": "A", "allowed_groups": []}]',
            "IRISSpawner.profile_list",
        ),
        (
            'c.JupyterHub.spawner_class = "iris_jupyterhub.spawner.IRISSpawner"\n'
            'c.IRISSpawner.group_quotas = {"iris/lsst": {"servers": -1}}',
            "IRISSpawner.group_quotas",
        ),
        (  # an IRISSpawner section is checked whatever spawner_class says
            'c.IRISSpawner.gpu_resource = "gpu"',
            "IRISSpawner.gpu_resource",
        ),
    ],
)
def test_bad_spawner_options_stop_the_hub(tmp_path: Path, config: str, named: str) -> None:
    """docs/admin/spawner.md: the profile list is validated when the hub starts."""
    assert named in start_failure(tmp_path, config)


def test_good_spawner_options_start_the_hub(tmp_path: Path) -> None:
    """No Kubernetes configuration is needed to check them."""
    config = """
c.JupyterHub.spawner_class = "iris"
c.KubeSpawner.profile_list = [{"display_name": "Standard", "default": True}]
c.IRISSpawner.profile_list = [
    {"display_name": "GPU", "allowed_groups": ["iris/lsst"], "resources": {"gpu": 1}},
]
c.IRISSpawner.group_quotas = {"iris/lsst": {"servers": 2, "gpu": 4}}
c.IRISSpawner.gpu_resource = "amd.com/gpu"
"""
    hub = HubProcess(tmp_path, free_port(), BASE + config, env={"KUBECONFIG": "/nonexistent"})
    try:
        hub.start(timeout=60)
    finally:
        hub.stop()
