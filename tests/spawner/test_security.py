"""Pod security settings from a POSIX identity, as Kubernetes API data."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from iris_jupyterhub.spawner.errors import SpawnRequestError
from iris_jupyterhub.spawner.security import pod_security

ALICE: dict[str, Any] = {
    "uid": 2000001,
    "gid": 2000001,
    "username": "alice",
    "groups": [
        {"name": "alice", "gid": 2000001},
        {"name": "iris", "gid": 3000001},
        {"name": "lsst", "gid": 3000002},
    ],
}


def test_personal_group_by_default() -> None:
    settings = pod_security(ALICE, None)
    assert settings.pod_security_context == {
        "runAsUser": 2000001,
        "runAsGroup": 2000001,
        "fsGroup": 2000001,
        "supplementalGroups": [2000001, 3000001, 3000002],
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert settings.container_security_context == {
        "runAsUser": 2000001,
        "runAsGroup": 2000001,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert settings.environment == {
        "NB_USER": "alice",
        "NB_UID": "2000001",
        "NB_GID": "2000001",
        "HOME": "/home/alice",
    }
    assert (settings.group, settings.notice) == ("alice", None)
    assert pod_security(ALICE, "").group == "alice"


def test_chosen_group_is_primary_and_fs_group() -> None:
    settings = pod_security(ALICE, "lsst")
    assert settings.pod_security_context["runAsGroup"] == 3000002
    assert settings.pod_security_context["fsGroup"] == 3000002
    assert settings.container_security_context["runAsGroup"] == 3000002
    assert settings.pod_security_context["supplementalGroups"] == [2000001, 3000001, 3000002]
    assert settings.environment["NB_GID"] == "3000002"
    assert settings.group == "lsst"


@pytest.mark.parametrize("group", ["dune", "root", "ALICE"])
def test_group_the_user_is_not_in_is_forbidden(group: str) -> None:
    with pytest.raises(SpawnRequestError) as caught:
        pod_security(ALICE, group)
    assert caught.value.status == 403
    assert "alice, iris, lsst" in caught.value.message


def test_stale_group_falls_back_to_personal_with_notice() -> None:
    settings = pod_security(ALICE, "dune", stale_fallback=True)
    assert settings.group == "alice"
    assert settings.pod_security_context["fsGroup"] == 2000001
    assert settings.notice is not None
    assert "'dune'" in settings.notice


def test_non_text_group_is_a_bad_request() -> None:
    with pytest.raises(SpawnRequestError) as caught:
        pod_security(ALICE, 3000001)  # type: ignore[arg-type]
    assert caught.value.status == 400


def changed(**change: Any) -> dict[str, Any]:
    posix = copy.deepcopy(ALICE)
    posix.update(change)
    return posix


@pytest.mark.parametrize(
    "posix",
    [
        None,
        {},
        changed(uid=0),
        changed(uid="2000001"),
        changed(gid=True),
        changed(uid=2**31),
        changed(username="../root"),
        changed(username=None),
        changed(groups=None),
        changed(groups=[{"name": "x"}]),
        changed(groups=[{"name": "wheel ", "gid": 3000003}]),
        changed(groups=[{"name": "root", "gid": 0}]),
    ],
)
def test_missing_or_invalid_posix_identity_is_a_clear_error(posix: Any) -> None:
    with pytest.raises(SpawnRequestError) as caught:
        pod_security(posix, None)
    assert caught.value.status == 500
    assert "log out and log in again" in caught.value.message
    assert "auth_state['posix']" in str(caught.value)
