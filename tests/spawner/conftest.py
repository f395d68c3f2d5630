"""Fixtures: the IdP + a real hub spawning with KubeSpawner against the Kubernetes stand-in.

- ``kube``: one :class:`~devstack.kube.KubeStandIn` per module (fake kubelet on, pods run
  as local ``jupyterhub.singleuser`` processes on their own loopback addresses).
- ``kube_hub_config``: extra hub config appended after :data:`KUBE_HUB_CONFIG`; override
  this fixture in a test module (module scope) to set e.g. the spawner class or profiles.
- ``kube_stack``: a :class:`KubeStack` (IdP + hub + proxy wired to ``kube``); its teardown
  stops the hub (and so KubeSpawner's reflectors) before the stand-in goes away.
- ``kube_stack_factory(extra_config="")``: more hubs against the same stand-in.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from devstack.hub import HubProcess
from devstack.kube import DEFAULT_NAMESPACE, KubeStandIn
from devstack.login import LoginAttempt
from tests.e2e.conftest import IAM_HUB_CONFIG, Stack, login, start_stack

KUBE_NAMESPACE = DEFAULT_NAMESPACE
KUBE_IMAGE = "quay.io/jupyter/base-notebook:latest"

#: Appended after the IdP config; HubProcess's base config sets a local-process spawner.
KUBE_HUB_CONFIG = f"""
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.namespace = "{KUBE_NAMESPACE}"
c.KubeSpawner.image = "{KUBE_IMAGE}"
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
c.KubeSpawner.args = []
c.KubeSpawner.start_timeout = 60
c.KubeSpawner.http_timeout = 60
"""


@dataclass
class KubeStack:
    """An IdP and a KubeSpawner hub wired to the stand-in, with server-lifecycle helpers."""

    stack: Stack
    kube: KubeStandIn
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def hub(self) -> HubProcess:
        return self.stack.hub

    def login(self, who: str, **kwargs: Any) -> LoginAttempt:
        """Log in through the IdP as ``who`` (password ``<who>-pass``)."""
        return login(self.stack, who, **kwargs)

    def token(self, username: str) -> str:
        """An API token of ``username`` (created once, as the admin test service)."""
        if username not in self.tokens:
            r = self.hub.api("POST", f"/users/{username}/tokens", json={})
            assert r.status_code == 201, r.text
            self.tokens[username] = r.json()["token"]
        return self.tokens[username]

    def user_request(self, username: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """``url`` relative to the public hub URL, with ``username``'s token."""
        headers = {"Authorization": f"token {self.token(username)}", **kwargs.pop("headers", {})}
        return httpx.request(method, f"{self.hub.url}{url}", headers=headers, timeout=30, **kwargs)

    def start_server(
        self, username: str, user_options: dict[str, Any] | None = None, server_name: str = ""
    ) -> httpx.Response:
        """``POST /hub/api/users/{name}/server`` as the user (body: the user options)."""
        path = (
            f"/hub/api/users/{username}/servers/{server_name}"
            if server_name
            else (f"/hub/api/users/{username}/server")
        )
        return self.user_request(username, "POST", path, json=user_options or {})

    def server_model(self, username: str, server_name: str = "") -> dict[str, Any] | None:
        r = self.user_request(username, "GET", f"/hub/api/users/{username}")
        r.raise_for_status()
        model: dict[str, Any] | None = r.json().get("servers", {}).get(server_name)
        return model

    def wait_ready(
        self, username: str, server_name: str = "", timeout: float = 60
    ) -> dict[str, Any]:
        """Wait until the server is ready; fail early if the spawn failed."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            model = self.server_model(username, server_name)
            if model and model.get("ready"):
                return model
            if model is None or not model.get("pending"):
                # neither pending nor ready: the spawn failed (or never started)
                raise AssertionError(
                    f"server of {username} not starting: {model}\n{self.hub.log_tail(40)}"
                )
            time.sleep(0.2)
        raise AssertionError(
            f"server of {username} not ready in {timeout}s\n{self.hub.log_tail()}"
        )

    def stop_server(
        self, username: str, server_name: str = "", timeout: float = 60
    ) -> httpx.Response:
        """``DELETE`` the server and wait until the hub no longer lists it."""
        path = (
            f"/hub/api/users/{username}/servers/{server_name}"
            if server_name
            else (f"/hub/api/users/{username}/server")
        )
        r = self.user_request(username, "DELETE", path)
        deadline = time.monotonic() + timeout
        while self.server_model(username, server_name) is not None:
            if time.monotonic() > deadline:
                raise AssertionError(f"server of {username} did not stop\n{self.hub.log_tail()}")
            time.sleep(0.2)
        return r

    def pods_of(self, username: str, namespace: str = KUBE_NAMESPACE) -> list[dict[str, Any]]:
        """Live pods whose ``hub.jupyter.org/username`` annotation is ``username``."""
        return [
            pod for pod in self.kube.list_pods(namespace)
            if (pod["metadata"].get("annotations") or {}).get("hub.jupyter.org/username")
            == username
        ]  # fmt: skip

    def pod_manifests_of(self, username: str) -> list[dict[str, Any]]:
        """Every pod manifest the spawner sent for ``username`` (oldest first), as sent."""
        return [
            r.manifest for r in self.kube.created("Pod")
            if (r.manifest["metadata"].get("annotations") or {}).get("hub.jupyter.org/username")
            == username
        ]  # fmt: skip


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeStandIn]:
    """The Kubernetes API stand-in with its fake kubelet, for the whole module."""
    standin = KubeStandIn(tmp_path_factory.mktemp("kube"))
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture(scope="module")
def kube_hub_config() -> str:
    """Extra hub config after :data:`KUBE_HUB_CONFIG` (override per module)."""
    return ""


@pytest.fixture(scope="module")
def kube_stack_factory(
    tmp_path_factory: pytest.TempPathFactory, kube: KubeStandIn
) -> Iterator[Callable[..., KubeStack]]:
    """``make(extra_config="", provider="iam")``: IdP + hub on ``kube``; all stopped at the end."""
    started: list[KubeStack] = []

    def make(extra_config: str = "", provider: str = "iam") -> KubeStack:
        if provider != "iam":
            raise ValueError("only the IAM provider is wired here; add its config first")
        config = IAM_HUB_CONFIG + KUBE_HUB_CONFIG + extra_config
        stack = start_stack(tmp_path_factory.mktemp("kubehub"), provider, config, kube.env)
        started.append(KubeStack(stack=stack, kube=kube))
        return started[-1]

    yield make
    for item in started:  # hubs (and their reflectors) first; the stand-in after (``kube``)
        item.hub.stop()
        item.stack.idp.stop()


@pytest.fixture(scope="module")
def kube_stack(kube_stack_factory: Callable[..., KubeStack], kube_hub_config: str) -> KubeStack:
    """IdP + hub (KubeSpawner) + proxy against the module's stand-in."""
    return kube_stack_factory(kube_hub_config)
