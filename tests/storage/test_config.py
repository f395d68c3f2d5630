"""``ManilaStorage`` options as administrators write them: defaults, environment, mistakes."""

from __future__ import annotations

import logging
from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config
from traitlets.traitlets import TraitError

from iris_jupyterhub.spawner.profiles import validate_profile_list
from iris_jupyterhub.storage.config import ManilaStorage
from iris_jupyterhub.storage.errors import StorageConfigError
from iris_jupyterhub.storage.groups import default_group_mount_path, parse_group_shares
from iris_jupyterhub.storage.spawner import check_config, prepare_storage

OS_VARIABLES = (
    "OS_AUTH_URL",
    "OS_APPLICATION_CREDENTIAL_ID",
    "OS_APPLICATION_CREDENTIAL_SECRET",
    "OS_USERNAME",
    "OS_PASSWORD",
    "OS_USER_DOMAIN_NAME",
    "OS_PROJECT_NAME",
    "OS_PROJECT_DOMAIN_NAME",
    "OS_REGION_NAME",
    "OS_INTERFACE",
)

GOOD = {
    "enabled": True,
    "auth_url": "https://keystone.example.ac.uk:5000/v3",
    "application_credential_id": "ac-id",
    "application_credential_secret": "ac-secret",
    "region_name": "RegionOne",
}


@pytest.fixture(autouse=True)
def no_openstack_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in OS_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def storage(**settings: Any) -> ManilaStorage:
    """Built the way the hub builds it: from a ``c.ManilaStorage`` config section."""
    config = Config()
    for name, value in settings.items():
        setattr(config.ManilaStorage, name, value)
    return ManilaStorage(config=config)


def error_of(**settings: Any) -> str:
    with pytest.raises((ValueError, TraitError)) as info:
        storage(**settings)
    return str(info.value)


def test_disabled_by_default_and_nothing_checked() -> None:
    s = storage()
    assert s.enabled is False
    assert s.auth_url == ""
    assert s.interface == "public"
    assert s.csi_driver == "manila"
    assert s.home_path_for("ada") == "/home/ada"


def test_complete_configuration_is_accepted() -> None:
    s = storage(**GOOD)
    assert s.manila_secret() == {
        "os-authURL": GOOD["auth_url"],
        "os-region": "RegionOne",
        "os-applicationCredentialID": "ac-id",
        "os-applicationCredentialSecret": "ac-secret",
    }
    csi = s.csi_settings("jhub")
    assert (csi.driver, csi.namespace) == ("manila", "jhub")


def test_openstack_environment_variables_are_the_defaults(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OS_AUTH_URL", "https://keystone.example.org/v3")
    monkeypatch.setenv("OS_APPLICATION_CREDENTIAL_ID", "env-id")
    monkeypatch.setenv("OS_APPLICATION_CREDENTIAL_SECRET", "env-secret")
    monkeypatch.setenv("OS_REGION_NAME", "RegionTwo")
    monkeypatch.setenv("OS_INTERFACE", "internalURL")
    s = storage(enabled=True)
    assert s.auth_url == "https://keystone.example.org/v3"
    assert (s.application_credential_id, s.application_credential_secret) == (
        "env-id",
        "env-secret",
    )
    assert (s.region_name, s.interface) == ("RegionTwo", "internal")
    # configuration wins over the environment
    assert storage(enabled=True, region_name="Mine").region_name == "Mine"


def test_password_authentication() -> None:
    s = storage(
        enabled=True,
        auth_url=GOOD["auth_url"],
        region_name="RegionOne",
        username="svc",
        password="pw",
        project_name="iris",
    )
    secret = s.manila_secret()
    assert secret["os-userName"] == "svc"
    assert secret["os-projectName"] == "iris"
    assert secret["os-userDomainName"] == "Default"
    assert "os-applicationCredentialID" not in secret


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        ({**GOOD, "auth_url": ""}, "ManilaStorage.auth_url"),
        ({**GOOD, "auth_url": "keystone:5000"}, "ManilaStorage.auth_url"),
        ({**GOOD, "application_credential_id": ""}, "ManilaStorage.application_credential_id"),
        (
            {**GOOD, "application_credential_secret": ""},
            "ManilaStorage.application_credential_secret",
        ),
        (
            {**GOOD, "application_credential_id": "", "application_credential_secret": ""},
            "ManilaStorage.application_credential_id",
        ),
        ({**GOOD, "interface": "private"}, "ManilaStorage.interface"),
        ({**GOOD, "share_size_gb": 0}, "ManilaStorage.share_size_gb"),
        ({**GOOD, "region_name": ""}, "ManilaStorage.region_name"),
        ({**GOOD, "csi_driver": "nfs"}, "ManilaStorage.csi_driver"),
        ({**GOOD, "csi_driver": "cephfs"}, "ManilaStorage.ceph_cluster_id"),
        ({**GOOD, "mounter": "nfs"}, "ManilaStorage.mounter"),
        ({**GOOD, "namespace": "Not_A_Name"}, "ManilaStorage.namespace"),
        ({**GOOD, "labels": {"app": "bad value!"}}, "ManilaStorage.labels"),
        (
            {**GOOD, "labels": {"app.kubernetes.io/managed-by": "me"}},
            "ManilaStorage.labels",
        ),
        ({**GOOD, "share_name_template": "iris-{kind}"}, "ManilaStorage.share_name_template"),
        (
            {**GOOD, "share_name_template": "iris-{username}-{key}"},
            "ManilaStorage.share_name_template",
        ),
        ({**GOOD, "cephx_id_prefix": "bad prefix"}, "ManilaStorage.cephx_id_prefix"),
        ({**GOOD, "home_mount_path": "home/{username}"}, "ManilaStorage.home_mount_path"),
        ({**GOOD, "home_mount_path": "/home/{uid}"}, "ManilaStorage.home_mount_path"),
        ({**GOOD, "home_mount_path": "/etc"}, "ManilaStorage.home_mount_path"),
        ({**GOOD, "prepare_timeout": 0}, "ManilaStorage.prepare_timeout"),
        ({**GOOD, "retries": 0}, "ManilaStorage.retries"),
        ({**GOOD, "region_name": " RegionOne"}, "ManilaStorage.region_name"),
        (
            {**GOOD, "application_credential_secret": "x\n"},
            "ManilaStorage.application_credential_secret",
        ),
        ({**GOOD, "hub_name": "Hub One"}, "ManilaStorage.hub_name"),
        ({**GOOD, "init_image_pull_policy": "Sometimes"}, "ManilaStorage.init_image_pull_policy"),
        ({**GOOD, "init_image": ""}, "ManilaStorage.init_image"),
        ({**GOOD, "labels": {"app": 1}}, "ManilaStorage.labels"),
        ({**GOOD, "group_shares": {"iris/": {"size_gb": 1}}}, "ManilaStorage.group_shares"),
        (
            {**GOOD, "group_shares": {"iris:role=admin": {"size_gb": 1}}},
            "ManilaStorage.group_shares",
        ),
        ({**GOOD, "group_shares": {"iris": {"size_gb": 0}}}, "ManilaStorage.group_shares"),
        ({**GOOD, "group_shares": {"iris": {"size": 10}}}, "ManilaStorage.group_shares"),
        (
            {**GOOD, "group_shares": {"iris": {"size_gb": 1, "mount_path": "/shared/../etc"}}},
            "ManilaStorage.group_shares",
        ),
        (
            {
                **GOOD,
                "group_shares": {
                    "iris": {"size_gb": 1, "mount_path": "/shared/x"},
                    "dune": {"size_gb": 1, "mount_path": "/shared/x/y"},
                },
            },
            "ManilaStorage.group_shares",
        ),
        (
            {**GOOD, "group_shares": {"iris": {"size_gb": 1, "mount_path": "/home/ada"}}},
            "ManilaStorage.group_shares",
        ),
    ],
)
def test_mistakes_name_the_option(settings: dict[str, Any], named: str) -> None:
    assert named in error_of(**settings)


def test_group_credentials_half_missing_is_refused_even_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OS_APPLICATION_CREDENTIAL_ID", "env-id")
    settings = {k: v for k, v in GOOD.items() if not k.startswith("application")}
    assert "ManilaStorage.application_credential_secret" in error_of(**settings)


def test_cephfs_driver_with_a_cluster_id() -> None:
    s = storage(**{**GOOD, "csi_driver": "cephfs", "ceph_cluster_id": "ceph-1", "region_name": ""})
    csi = s.csi_settings("jhub")
    assert (csi.driver, csi.ceph_cluster_id, csi.manila_secret) == ("cephfs", "ceph-1", None)


def test_group_shares_defaults_and_explicit_settings() -> None:
    shares = parse_group_shares(
        {
            "iris/lsst": {"size_gb": 500},
            "dune": {"size_gb": 10, "mount_path": "/data/dune", "share_type": "ssd"},
            "iris": {"size_gb": 1, "read_only": True},
        }
    )
    assert shares["iris/lsst"].mount_path == "/shared/iris-lsst"
    assert shares["iris/lsst"].share_type is None
    assert (shares["dune"].mount_path, shares["dune"].share_type) == ("/data/dune", "ssd")
    assert shares["iris"].read_only is True
    # a group and its sub-group never get nested mount points
    assert default_group_mount_path("iris") == "/shared/iris"
    assert not shares["iris/lsst"].mount_path.startswith(shares["iris"].mount_path + "/")


def test_profile_storage_key() -> None:
    base = {"display_name": "Standard", "slug": "standard"}
    with_storage, without = validate_profile_list([base, {**base, "slug": "x", "storage": False}])
    assert with_storage.storage is True
    assert without.storage is False
    with pytest.raises(ValueError, match="storage must be true or false"):
        validate_profile_list([{**base, "storage": "no"}])
    with pytest.raises(ValueError, match="did you mean 'storage'"):
        validate_profile_list([{**base, "storrage": False}])


async def test_a_spawn_with_a_broken_configuration_fails_with_a_500_and_a_log_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = Config()
    config.ManilaStorage.enabled = True  # no auth_url, no credentials
    spawner = SimpleNamespace(config=config, log=logging.getLogger("spawner"), namespace="jhub")
    with pytest.raises(StorageConfigError) as info:
        await prepare_storage(spawner, {}, profile_storage=True)
    assert info.value.status == 500
    assert "storage is misconfigured" in info.value.user_message
    assert "ManilaStorage.auth_url" in caplog.text


async def test_storage_off_or_opted_out_does_nothing() -> None:
    spawner = SimpleNamespace(config=Config(), log=logging.getLogger("spawner"))
    assert await prepare_storage(spawner, {}, profile_storage=True) is None
    config = Config()
    for name, value in GOOD.items():
        setattr(config.ManilaStorage, name, value)
    spawner = SimpleNamespace(config=config, log=logging.getLogger("spawner"))
    assert await prepare_storage(spawner, {}, profile_storage=False) is None


def test_check_config_names_the_option() -> None:
    config = Config()
    config.ManilaStorage.enabled = True
    config.ManilaStorage.auth_url = GOOD["auth_url"]
    with pytest.raises(ValueError, match=r"ManilaStorage\.application_credential_id"):
        check_config(config)
