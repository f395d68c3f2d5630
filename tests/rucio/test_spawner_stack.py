"""IRISSpawner with Rucio, through the real hub against the Kubernetes stand-in: the pod's
environment and token directory, profiles that opt out, users in no Rucio group, and the
server's own API token fetching its user's Rucio token."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from devstack.configs import IRIS_SPAWNER_CONFIG, IRIS_SPAWNER_PROFILES
from devstack.kube import KubeStandIn
from devstack.stacks import KubeStack, start_kube_stack

pytestmark = pytest.mark.e2e

INSTANCES = [
    {
        "name": "ral",
        "rucio_host": "https://rucio.ral.example.ac.uk",
        "groups": ["iris/lsst"],
        "account": "{username}",
    }
]
PROFILES = [
    *IRIS_SPAWNER_PROFILES,
    {"display_name": "No Rucio", "slug": "no-rucio", "rucio": False},
]
CONFIG = (
    IRIS_SPAWNER_CONFIG
    + f"""
from iris_jupyterhub.rucio import configure_hub
configure_hub(c, {INSTANCES!r})
c.IRISSpawner.profile_list = {PROFILES!r}
"""
)
RUCIO_ENV = {
    "IRIS_RUCIO_DIR",
    "IRIS_RUCIO_INSTANCES",
    "BEARER_TOKEN_FILE",
    "RUCIO_CONFIG",
    "RUCIO_OIDC_AUTH",
    "RUCIO_OIDC_FILE_NAME",
}


@pytest.fixture(scope="module")
def ks(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeStack]:
    kube = KubeStandIn(tmp_path_factory.mktemp("kube"))
    kube.start()
    try:
        stack = start_kube_stack(tmp_path_factory.mktemp("hub"), kube, CONFIG)
        try:
            for who in ("ada", "bob"):
                assert stack.login(who).status == 302
            yield stack
        finally:
            stack.stop()
    finally:
        kube.stop()


def spawn(ks: KubeStack, name: str, options: dict[str, Any]) -> dict[str, Any]:
    r = ks.start_server(name, options)
    assert r.status_code in (201, 202), r.text
    ks.wait_ready(name)
    pod = ks.pod_manifests_of(name)[-1]
    assert not ks.kube.validation_errors()
    return pod


def env_of(pod: dict[str, Any]) -> dict[str, str]:
    return {e["name"]: e.get("value", "") for e in pod["spec"]["containers"][0]["env"]}


def test_member_gets_the_environment_and_an_in_memory_directory(ks: KubeStack) -> None:
    pod = spawn(ks, "aresearcher", {})
    try:
        env = env_of(pod)
        assert env["IRIS_RUCIO_DIR"] == "/run/iris-rucio"
        assert env["BEARER_TOKEN_FILE"] == "/run/iris-rucio/ral.token"
        assert env["RUCIO_CONFIG"] == "/run/iris-rucio/rucio.cfg"
        assert env["RUCIO_OIDC_AUTH"] == "file"
        assert env["RUCIO_OIDC_FILE_NAME"] == "/run/iris-rucio/ral.token"
        [instance] = json.loads(env["IRIS_RUCIO_INSTANCES"])  # braces survived KubeSpawner
        posix = ks.hub.api("GET", "/users/aresearcher").json()["auth_state"]["posix"]
        assert instance["account"] == posix["username"]
        assert instance["default"] is True
        volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "iris-rucio")
        assert volume["emptyDir"]["medium"] == "Memory"
        mounts = pod["spec"]["containers"][0]["volumeMounts"]
        assert {"name": "iris-rucio", "mountPath": "/run/iris-rucio"} in mounts
        # the server's own token fetches its user's Rucio token; the pod holds no token
        server_token = env["JUPYTERHUB_API_TOKEN"]
        r = httpx.get(
            f"{ks.hub.url}/hub/api/iris/rucio/ral/token",
            headers={"Authorization": f"token {server_token}"},
            timeout=30,
        )
        assert r.status_code == 200, r.text
        state = ks.hub.api("GET", "/users/aresearcher").json()["auth_state"]
        manifest = json.dumps(pod)
        for secret in (state["refresh_token"], state["access_token"], r.json()["access_token"]):
            assert secret not in manifest
    finally:
        ks.stop_server("aresearcher")


def test_a_profile_can_opt_out(ks: KubeStack) -> None:
    pod = spawn(ks, "aresearcher", {"profile": "no-rucio"})
    try:
        assert not RUCIO_ENV & set(env_of(pod))
        assert all(v["name"] != "iris-rucio" for v in pod["spec"].get("volumes", []))
    finally:
        ks.stop_server("aresearcher")


def test_user_in_no_rucio_group_gets_nothing(ks: KubeStack) -> None:
    pod = spawn(ks, "bbuilder", {})
    try:
        assert not RUCIO_ENV & set(env_of(pod))
    finally:
        ks.stop_server("bbuilder")
