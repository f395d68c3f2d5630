"""IRISSpawner through the real hub against the Kubernetes stand-in: pods, 400s and 403s."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from devstack.configs import IRIS_SPAWNER_CONFIG as CONFIG
from devstack.hub import spawn_page_status
from devstack.stacks import KubeStack

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def kube_hub_config() -> str:
    return CONFIG


@pytest.fixture(scope="module")
def ks(kube_stack: KubeStack) -> KubeStack:
    for who in ("ada", "bob"):
        assert kube_stack.login(who).status == 302
    return kube_stack


def posix(ks: KubeStack, name: str) -> dict[str, Any]:
    return dict(ks.hub.api("GET", f"/users/{name}").json()["auth_state"]["posix"])


def gid_of(account: dict[str, Any], group: str) -> int:
    return next(int(g["gid"]) for g in account["groups"] if g["name"] == group)


def spawn_and_get_pod(ks: KubeStack, name: str, options: dict[str, Any]) -> dict[str, Any]:
    r = ks.start_server(name, options)
    assert r.status_code in (201, 202), r.text
    ks.wait_ready(name)
    pod = ks.pod_manifests_of(name)[-1]
    assert not ks.kube.validation_errors()
    return pod


def test_default_profile_runs_as_the_users_posix_identity(ks: KubeStack) -> None:
    pod = spawn_and_get_pod(ks, "aresearcher", {})
    try:
        account = posix(ks, "aresearcher")
        spec = pod["spec"]
        security = spec["securityContext"]
        assert security["runAsUser"] == account["uid"]
        assert security["runAsGroup"] == account["gid"]
        assert security["fsGroup"] == account["gid"]
        assert sorted(security["supplementalGroups"]) == sorted(
            g["gid"] for g in account["groups"]
        )
        assert security["runAsNonRoot"] is True
        assert security["seccompProfile"] == {"type": "RuntimeDefault"}
        container = spec["containers"][0]
        assert container["image"] == "quay.io/jupyter/base-notebook:latest"
        c_sec = container["securityContext"]
        assert c_sec["allowPrivilegeEscalation"] is False
        assert c_sec["capabilities"]["drop"] == ["ALL"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["NB_USER"] == account["username"]
        assert env["NB_UID"] == str(account["uid"])
        assert env["HOME"] == f"/home/{account['username']}"
        assert container["resources"]["limits"]["cpu"] in ("1", "1.0", 1)
    finally:
        ks.stop_server("aresearcher")


def test_gpu_profile_with_chosen_group(ks: KubeStack) -> None:
    pod = spawn_and_get_pod(ks, "aresearcher", {"profile": "lsst-gpu", "group": "iris-lsst"})
    try:
        account = posix(ks, "aresearcher")
        assert pod["spec"]["securityContext"]["runAsGroup"] == gid_of(account, "iris-lsst")
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == "1"
        assert limits["example.com/fpga"] == "1"  # merged, not overwritten
        assert pod["spec"]["nodeSelector"]["nvidia.com/gpu.present"] == "true"
        assert any(t.get("key") == "nvidia.com/gpu" for t in pod["spec"]["tolerations"])
    finally:
        ks.stop_server("aresearcher")


def test_vetted_custom_image(ks: KubeStack) -> None:
    image = "quay.io/jupyter/minimal-notebook:2026-11-01"
    pod = spawn_and_get_pod(
        ks, "bbuilder", {"profile": "standard", "image--unlisted-choice": image}
    )
    try:
        assert pod["spec"]["containers"][0]["image"] == image
    finally:
        ks.stop_server("bbuilder")


@pytest.mark.parametrize(
    ("options", "status", "text"),
    [
        ({"profile": "no-such-profile"}, 400, "no-such-profile"),
        ({"profile": "standard", "image": "nope"}, 400, "nope"),
        ({"profile": "lsst-gpu"}, 403, ""),
        ({"profile": "standard", "image--unlisted-choice": "quay.io/jupyter/x;rm"}, 400, ""),
        ({"profile": "standard", "image--unlisted-choice": "docker.io/evil/x:1"}, 400, ""),
        ({"profile": "standard", "kubespawner_override": {"uid": 0}}, 400, ""),
        ({"profile": "standard", "uid": 0}, 400, ""),
        ({"profile": "standard", "group": "iris-lsst"}, 403, ""),
        ({"profile": "standard", "group": "aresearcher"}, 403, ""),
        ({"profile": "standard", "group": "dune"}, 403, ""),
    ],
)
def test_forged_api_requests_get_a_clear_4xx(
    ks: KubeStack, options: dict[str, Any], status: int, text: str
) -> None:
    before = len(ks.kube.created_pods())
    r = ks.start_server("bbuilder", options)
    assert r.status_code == status, r.text
    assert text in r.json()["message"]
    assert len(ks.kube.created_pods()) == before
    assert ks.server_model("bbuilder") is None


def test_group_quota_refuses_with_the_limit_named(ks: KubeStack) -> None:
    r = ks.start_server("aresearcher", {"profile": "standard", "group": "dune"})
    assert r.status_code == 403, r.text
    assert "limit of 0 running servers" in r.json()["message"]


def test_stale_saved_options_fall_back_to_defaults(ks: KubeStack) -> None:
    # bob's last request is saved; later he asks for a server without options
    r = ks.start_server("bbuilder", {"profile": "standard", "image": "scipy"})
    assert r.status_code in (201, 202), r.text
    ks.wait_ready("bbuilder")
    ks.stop_server("bbuilder")
    # the saved choice is kept while it is still valid
    r = ks.user_request("bbuilder", "POST", "/hub/api/users/bbuilder/server")
    assert r.status_code in (201, 202), r.text
    ks.wait_ready("bbuilder")
    ks.stop_server("bbuilder")
    assert ks.pod_manifests_of("bbuilder")[-1]["spec"]["containers"][0]["image"].endswith(
        "scipy-notebook:latest"
    )


def test_form_shows_only_what_the_user_may_use(ks: KubeStack) -> None:
    ada = ks.login("ada")
    ada_form = ada.client.get(f"{ks.hub.url}/hub/spawn").text
    bob = ks.login("bob")
    bob_form = bob.client.get(f"{ks.hub.url}/hub/spawn").text
    assert "LSST GPU" in ada_form
    assert "LSST GPU" not in bob_form
    assert 'name="group"' in ada_form
    assert "iris-lsst" in ada_form
    assert "Run as group" in ada_form


def test_saved_choice_no_longer_allowed_falls_back_with_a_notice(
    kube_stack_factory: Callable[..., KubeStack],
) -> None:
    # spawns answer 202 at once, so the progress stream (the "starting" page) can be read
    fast = "\nc.JupyterHub.tornado_settings = {'slow_spawn_timeout': 0.05}\n"
    ks = kube_stack_factory(CONFIG + fast)
    assert ks.login("ada").status == 302
    r = ks.start_server("aresearcher", {"profile": "lsst-gpu", "group": "iris-lsst"})
    assert r.status_code == 202, r.text
    ks.wait_ready("aresearcher")
    ks.stop_server("aresearcher")
    user = ks.stack.user("ada")
    user["userinfo"]["groups"] = ["iris"]
    user["id_token"]["wlcg.groups"] = ["/iris"]
    ks.stack.idp.upsert_user("iam", user)
    try:
        # no options in the request: JupyterHub reuses the saved lsst-gpu ones
        r = ks.user_request("aresearcher", "POST", "/hub/api/users/aresearcher/server")
        assert r.status_code == 202, r.text
        events = ks.user_request(
            "aresearcher", "GET", "/hub/api/users/aresearcher/server/progress"
        ).text
        assert "is no longer available" in events
        ks.wait_ready("aresearcher")
        pod = ks.pod_manifests_of("aresearcher")[-1]
        assert "nvidia.com/gpu" not in pod["spec"]["containers"][0]["resources"].get("limits", {})
        account = posix(ks, "aresearcher")
        assert pod["spec"]["securityContext"]["runAsGroup"] == account["gid"]
    finally:
        ks.stop_server("aresearcher")
        ks.stack.idp.upsert_user("iam", ks.stack.user("ada"))


def test_query_string_spawn_of_a_forbidden_profile_is_403(ks: KubeStack) -> None:
    bob = ks.login("bob")
    before = len(ks.kube.created_pods())
    r = bob.client.get(f"{ks.hub.url}/hub/spawn/bbuilder?profile=lsst-gpu")
    assert r.status_code == spawn_page_status(403), r.text[:500]
    assert "lsst-gpu" in r.text
    assert len(ks.kube.created_pods()) == before
