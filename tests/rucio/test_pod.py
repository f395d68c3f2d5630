"""The Rucio part of a notebook pod, as plain data, validated as a Kubernetes manifest."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devstack.kube_checks import validate_manifest
from iris_jupyterhub.rucio import rucio_pod, validate_instances
from iris_jupyterhub.rucio.pod import rucio_traits
from iris_jupyterhub.spawner.profiles import validate_profile_list

INSTANCES = validate_instances(
    [
        {
            "name": "ral",
            "display_name": "RAL Rucio",
            "rucio_host": "https://rucio.ral.example.ac.uk",
            "auth_host": "https://rucio-auth.ral.example.ac.uk",
            "vo": "def",
            "ca_cert": "/etc/pki/tls/certs/ca-bundle.crt",
            "groups": ["iris/lsst"],
            "account": "{username}",
        },
        {"name": "cam", "rucio_host": "https://rucio.cam.example.ac.uk", "groups": ["dune"]},
    ]
)
ADA = {"groups": ["iris", "iris/lsst", "dune"], "posix": {"username": "ada"}}


def pod(extra: dict[str, Any]) -> dict[str, Any]:
    env = [{"name": k, "value": v} for k, v in extra["environment"].items()]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "jupyter-ada"},
        "spec": {
            "containers": [
                {
                    "name": "notebook",
                    "image": "quay.io/jupyter/base-notebook:latest",
                    "env": env,
                    "volumeMounts": extra.get("volume_mounts", []),
                }
            ],
            "volumes": extra.get("volumes", []),
        },
    }


def test_environment_volume_and_mount() -> None:
    result = rucio_pod(INSTANCES, ADA, "aresearcher", "/run/iris-rucio")
    assert result is not None
    env = result.environment
    assert env["IRIS_RUCIO_DIR"] == "/run/iris-rucio"
    assert env["BEARER_TOKEN_FILE"] == "/run/iris-rucio/ral.token"
    assert env["RUCIO_CONFIG"] == "/run/iris-rucio/rucio.cfg"
    assert env["RUCIO_OIDC_AUTH"] == "file"
    assert env["RUCIO_OIDC_FILE_NAME"] == "/run/iris-rucio/ral.token"
    assert json.loads(env["IRIS_RUCIO_INSTANCES"]) == [
        {
            "name": "ral",
            "display_name": "RAL Rucio",
            "rucio_host": "https://rucio.ral.example.ac.uk",
            "auth_host": "https://rucio-auth.ral.example.ac.uk",
            "vo": "def",
            "account": "ada",
            "ca_cert": "/etc/pki/tls/certs/ca-bundle.crt",
            "default": True,
        },
        {
            "name": "cam",
            "display_name": "cam",
            "rucio_host": "https://rucio.cam.example.ac.uk",
            "auth_host": "https://rucio.cam.example.ac.uk",
            "vo": None,
            "account": None,
            "ca_cert": None,
            "default": False,
        },
    ]
    assert result.volumes == [
        {"name": "iris-rucio", "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}
    ]
    assert result.volume_mounts == [{"name": "iris-rucio", "mountPath": "/run/iris-rucio"}]
    assert validate_manifest(pod(rucio_traits(result, {}))) == []


def test_only_the_users_instances_and_the_first_is_the_default() -> None:
    result = rucio_pod(INSTANCES, {"groups": ["dune"]}, "dan", "/run/iris-rucio")
    assert result is not None
    assert [i["name"] for i in json.loads(result.environment["IRIS_RUCIO_INSTANCES"])] == ["cam"]
    assert result.environment["BEARER_TOKEN_FILE"] == "/run/iris-rucio/cam.token"
    assert rucio_pod(INSTANCES, {"groups": ["iris"]}, "bob", "/run/iris-rucio") is None
    assert rucio_pod([], ADA, "aresearcher", "/run/iris-rucio") is None


def test_no_volume_when_the_directory_is_given_otherwise() -> None:
    result = rucio_pod(INSTANCES, ADA, "aresearcher", "/srv/tokens", volume=False)
    assert result is not None
    assert (result.volumes, result.volume_mounts) == ([], [])
    assert rucio_traits(result, {}).keys() == {"environment"}


def test_no_token_anywhere_in_the_pod() -> None:
    state = {**ADA, "access_token": "AT-secret", "refresh_token": "RT-secret"}
    state["rucio"] = {"ral": {"access_token": "RUCIO-secret", "expires_at": 1}}
    result = rucio_pod(INSTANCES, state, "aresearcher", "/run/iris-rucio")
    assert result is not None
    text = json.dumps(pod(rucio_traits(result, {})))
    assert "secret" not in text


def test_merged_into_existing_traits_brace_escaped() -> None:
    result = rucio_pod(INSTANCES, ADA, "aresearcher", "/run/iris-rucio")
    assert result is not None
    current = {
        "environment": {"EXISTING": "kept"},
        "volumes": [{"name": "iris-rucio", "emptyDir": {}}, {"name": "other", "emptyDir": {}}],
        "volume_mounts": {"other": {"name": "other", "mountPath": "/other"}},
    }
    traits = rucio_traits(result, current)
    assert traits["environment"]["EXISTING"] == "kept"
    # KubeSpawner expands {username}-style templates in env values: the JSON is escaped
    escaped = traits["environment"]["IRIS_RUCIO_INSTANCES"]
    assert escaped.startswith("[{{")
    assert escaped.format() == result.environment["IRIS_RUCIO_INSTANCES"]
    assert [v["name"] for v in traits["volumes"]] == ["other", "iris-rucio"]
    assert traits["volume_mounts"]["iris-rucio"]["mountPath"] == "/run/iris-rucio"
    assert traits["volume_mounts"]["other"]["mountPath"] == "/other"


@pytest.mark.parametrize(("value", "expected"), [(None, True), (True, True), (False, False)])
def test_profile_key_rucio(value: bool | None, expected: bool) -> None:
    profile: dict[str, Any] = {"display_name": "Standard"}
    if value is not None:
        profile["rucio"] = value
    [validated] = validate_profile_list([profile])
    assert validated.rucio is expected


def test_profile_key_rucio_must_be_a_flag() -> None:
    with pytest.raises(ValueError, match="rucio must be true or false"):
        validate_profile_list([{"display_name": "Standard", "rucio": "no"}])
    with pytest.raises(ValueError, match="did you mean 'rucio'"):
        validate_profile_list([{"display_name": "Standard", "ruico": False}])
