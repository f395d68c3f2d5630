"""IRISSpawner's hooks answer a researcher with the HTTP error JupyterHub renders.

A real IRISSpawner, built in-process as the hub builds one (KubeSpawner only reads a
kubeconfig in ``__init__``; nothing here reaches a cluster). Whatever the failure (a
request, the hub's profile list, storage), the hook raises a
:class:`tornado.web.HTTPError` whose ``jupyterhub_message`` is the researcher's sentence,
never the bare :class:`~iris_jupyterhub.errors.UserFacingError`, which JupyterHub would
show as a generic 500.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
from kubernetes_asyncio.config import kube_config
from tornado.web import HTTPError
from traitlets.config import Config

from iris_jupyterhub.spawner import IRISSpawner

POSIX = {
    "uid": 2000001,
    "gid": 2000001,
    "username": "ada",
    "groups": [{"name": "ada", "gid": 2000001}, {"name": "iris", "gid": 3000001}],
}
AUTH_STATE = {"groups": ["iris"], "posix": POSIX}
PROFILES = [{"display_name": "Standard", "slug": "standard", "default": True}]
INVALID_PROFILES = [{"display_name": "Standard", "slug": "standard", "resources": {"cpu": -1}}]


class User:
    """The part of ``jupyterhub.user.User`` a spawner uses outside ``start()``."""

    def __init__(self, auth_state: dict[str, Any]) -> None:
        self.name = "ada"
        self.id = 1
        self.url = "/user/ada/"
        self.db = None
        self._auth_state = auth_state

    async def get_auth_state(self) -> dict[str, Any]:
        return self._auth_state


class Handler:
    """An API request with a body: the options are judged as fresh, not saved."""

    class request:  # noqa: N801  (the attribute tornado's handler has)
        method = "POST"
        body = b"{}"


@pytest.fixture
def kubeconfig(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A kubeconfig naming an unreachable cluster, for KubeSpawner's ``__init__``.

    ``kubernetes_asyncio`` reads ``$KUBECONFIG`` once, when it is imported (earlier in a
    test session), so its default location is pointed at the file too.
    """
    path = tmp_path / "kubeconfig"
    path.write_text(
        json.dumps(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [{"name": "none", "cluster": {"server": "http://127.0.0.1:9"}}],
                "users": [{"name": "hub", "user": {"token": "none"}}],
                "contexts": [{"name": "none", "context": {"cluster": "none", "user": "hub"}}],
                "current-context": "none",
            }
        )
    )
    monkeypatch.setenv("KUBECONFIG", str(path))
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", str(path))


def make_spawner(config: Config | None = None, **traits: Any) -> IRISSpawner:
    spawner = IRISSpawner(
        _mock=True, user=User(AUTH_STATE), config=config or Config(), namespace="jhub", **traits
    )
    spawner.handler = Handler()
    return spawner


MISCONFIGURED = (
    "The hub's profile list is misconfigured, so servers cannot be started. "
    "The hub administrators have been told; please contact them."
)


def invalid_profiles(spawner: Any) -> list[dict[str, Any]]:
    return INVALID_PROFILES


@pytest.mark.usefixtures("kubeconfig")
async def test_the_form_of_a_misconfigured_callable_profile_list_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    spawner = make_spawner(profile_list=invalid_profiles)
    with pytest.raises(HTTPError) as caught:
        await spawner.get_options_form()
    assert caught.value.status_code == 500
    assert caught.value.jupyterhub_message == MISCONFIGURED  # type: ignore[attr-defined]
    assert "IRISSpawner.profile_list is invalid" in caplog.text  # the detail is logged


@pytest.mark.usefixtures("kubeconfig")
async def test_a_spawn_with_a_misconfigured_callable_profile_list_says_so() -> None:
    spawner = make_spawner(profile_list=invalid_profiles)
    with pytest.raises(HTTPError) as caught:
        await spawner.load_user_options()
    assert caught.value.status_code == 500
    assert caught.value.jupyterhub_message == MISCONFIGURED  # type: ignore[attr-defined]


@pytest.mark.usefixtures("kubeconfig")
async def test_an_unknown_profile_is_a_400_with_the_sentence() -> None:
    spawner = make_spawner(profile_list=PROFILES)
    spawner.user_options = {"profile": "gpu"}
    with pytest.raises(HTTPError) as caught:
        await spawner.load_user_options()
    assert caught.value.status_code == 400
    assert "gpu" in caught.value.jupyterhub_message  # type: ignore[attr-defined]


@pytest.mark.usefixtures("kubeconfig")
async def test_options_on_a_hub_without_profiles_are_a_400_with_a_next_step() -> None:
    spawner = make_spawner(profile_list=[])
    spawner.user_options = {"profile": "gpu"}
    with pytest.raises(HTTPError) as caught:
        await spawner.load_user_options()
    assert caught.value.status_code == 400
    assert caught.value.jupyterhub_message == (  # type: ignore[attr-defined]
        "This hub offers no profiles to choose from. Please contact the hub administrators."
    )


@pytest.mark.usefixtures("kubeconfig")
async def test_a_storage_failure_is_its_status_with_the_sentence(
    caplog: pytest.LogCaptureFixture,
) -> None:
    config = Config()
    config.ManilaStorage.enabled = True  # no auth_url, no credentials: misconfigured
    spawner = make_spawner(config, profile_list=PROFILES)
    with caplog.at_level(logging.ERROR), pytest.raises(HTTPError) as caught:
        await spawner.load_user_options()
    assert caught.value.status_code == 500
    assert "storage is misconfigured" in caught.value.jupyterhub_message  # type: ignore[attr-defined]
    assert "ManilaStorage.auth_url" in caplog.text
