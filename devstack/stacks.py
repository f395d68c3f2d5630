"""Whole stacks for the tests and the benchmarks: the loopback IdP, a real hub and proxy, and
(for spawning) the Kubernetes stand-in.

* :func:`start_stack`: an :class:`~devstack.idp.IdPProcess` and a
  :class:`~devstack.hub.HubProcess` wired to it, as a :class:`Stack` (stop both when done);
* :class:`KubeStack`: a :class:`Stack` whose hub spawns on a
  :class:`~devstack.kube.KubeStandIn`, with helpers to start, wait for and stop servers;
* :data:`USERS`: the IdP's accounts (``tests/idp/users.json``) by ``(provider, login)``.

The pytest fixtures that start and stop these live in ``tests/e2e/conftest.py`` and
``tests/spawner/conftest.py``; hub configurations are in :mod:`devstack.configs`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from .configs import IAM_HUB_CONFIG, KUBE_HUB_CONFIG, KUBE_NAMESPACE
from .hub import REPO_ROOT, HubProcess
from .idp import IdPProcess, default_clients, free_port, make_rsa_jwk
from .kube import KubeStandIn
from .login import LoginAttempt, hub_login
from .tls import tls

__all__ = [
    "USERS",
    "KubeStack",
    "Stack",
    "login",
    "restore_idp",
    "start_kube_stack",
    "start_stack",
]

USERS: dict[tuple[str, str], dict[str, Any]] = {
    (u["provider"], u["login"]): u
    for u in json.loads((REPO_ROOT / "tests" / "idp" / "users.json").read_text())["users"]
}


@dataclass
class Stack:
    """An IdP and a hub wired to it, plus the signing keys the tests control."""

    idp: IdPProcess
    hub: HubProcess
    provider: str
    keys: dict[str, dict[str, Any]]

    @property
    def issuer(self) -> str:
        return self.idp.issuer(self.provider)

    def user(self, login: str) -> dict[str, Any]:
        """A copy of IdP user ``login``'s record (``users.json`` format)."""
        user: dict[str, Any] = json.loads(json.dumps(USERS[(self.provider, login)]))
        return user

    def sign(
        self, claims: dict[str, Any], *, jwk: dict[str, Any] | None = None, kid: str | None = None
    ) -> str:
        """Sign ``claims`` with the provider's key (or ``jwk``) as the IdP would."""
        jwk = jwk or self.keys[self.provider]
        key = RSAAlgorithm.from_jwk(json.dumps(jwk))
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError(f"JWK {jwk.get('kid')!r} has no private key to sign with")
        return jwt.encode(claims, key, algorithm="RS256", headers={"kid": kid or jwk["kid"]})

    def id_claims(self, login: str, nonce: str, /, **overrides: Any) -> dict[str, Any]:
        """ID token claims for ``login`` as the IdP issues them, with ``overrides``."""
        user = self.user(login)
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "sub": user["sub"],
            "aud": "hub",
            "azp": "hub",
            "exp": now + 600,
            "iat": now,
            "nonce": nonce,
            **user["id_token"],
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}

    def stop(self) -> None:
        """Stop the hub, then the IdP."""
        self.hub.stop()
        self.idp.stop()


def start_stack(
    workdir: Path,
    provider: str,
    hub_config: str,
    hub_env: dict[str, str] | None = None,
    *,
    provider_options: dict[str, dict[str, Any]] | None = None,
    hub_timeout: float = 60,
) -> Stack:
    """Start an IdP and a hub configured by ``hub_config`` (its ``{issuer}`` filled in).

    ``provider_options`` are merged into the IdP's provider entries (see
    :class:`~devstack.idp.IdPProcess`), e.g. ``{"iam": {"ttl": {"AccessToken": 20}}}``;
    ``hub_timeout``: seconds the hub has to answer.
    """
    hub_port = free_port()
    keys = {"iam": make_rsa_jwk("iam-key-1"), "checkin": make_rsa_jwk("checkin-key-1")}
    idp = IdPProcess(
        REPO_ROOT,
        workdir / "idp",
        clients=default_clients([f"http://127.0.0.1:{hub_port}/hub/oauth_callback"]),
        provider_jwks={name: {"keys": [jwk]} for name, jwk in keys.items()},
        provider_options=provider_options,
    )
    (workdir / "idp").mkdir(parents=True, exist_ok=True)
    idp.start()
    config = hub_config.replace("{issuer}", idp.issuer(provider))
    hub = HubProcess(workdir / "hub", hub_port, config, env=hub_env)
    try:
        hub.start(timeout=hub_timeout)
    except Exception:
        idp.stop()
        raise
    return Stack(idp=idp, hub=hub, provider=provider, keys=keys)


def restore_idp(stack: Stack) -> None:
    """Undo a test's changes at the IdP: failures, queued tokens, edited users."""
    stack.idp.reset()
    for (provider, _login), user in USERS.items():
        if provider == stack.provider:
            stack.idp.upsert_user(provider, user)


def login(stack: Stack, who: str, **kwargs: Any) -> LoginAttempt:
    """Log in at the stack's hub as IdP user ``who`` (password ``<who>-pass``)."""
    return hub_login(stack.hub.url, who, f"{who}-pass", **kwargs)


@dataclass
class KubeStack:
    """An IdP and a KubeSpawner hub wired to the stand-in, with server-lifecycle helpers."""

    stack: Stack
    kube: KubeStandIn
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def hub(self) -> HubProcess:
        return self.stack.hub

    def stop(self) -> None:
        """Stop the hub (and so KubeSpawner's reflectors) and the IdP; not the stand-in."""
        self.stack.stop()

    def login(self, who: str, **kwargs: Any) -> LoginAttempt:
        """Log in through the IdP as ``who`` (password ``<who>-pass``)."""
        return login(self.stack, who, **kwargs)

    def token(self, username: str) -> str:
        """An API token of ``username`` (created once, as the admin test service)."""
        if username not in self.tokens:
            r = self.hub.api("POST", f"/users/{username}/tokens", json={})
            if r.status_code != 201:
                raise AssertionError(f"no token for {username}: HTTP {r.status_code} {r.text}")
            self.tokens[username] = r.json()["token"]
        return self.tokens[username]

    def user_request(self, username: str, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """``url`` relative to the public hub URL, with ``username``'s token."""
        headers = {"Authorization": f"token {self.token(username)}", **kwargs.pop("headers", {})}
        return httpx.request(
            method, f"{self.hub.url}{url}", headers=headers, timeout=30, verify=tls(), **kwargs
        )

    def start_server(
        self, username: str, user_options: dict[str, Any] | None = None, server_name: str = ""
    ) -> httpx.Response:
        """``POST /hub/api/users/{name}/server`` as the user (body: the user options)."""
        return self.user_request(
            username, "POST", _server_path(username, server_name), json=user_options or {}
        )

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
        r = self.user_request(username, "DELETE", _server_path(username, server_name))
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


def _server_path(username: str, server_name: str) -> str:
    """The hub API path of ``username``'s default (``""``) or named server."""
    if server_name:
        return f"/hub/api/users/{username}/servers/{server_name}"
    return f"/hub/api/users/{username}/server"


def start_kube_stack(
    workdir: Path,
    kube: KubeStandIn,
    extra_config: str = "",
    provider: str = "iam",
    *,
    provider_options: dict[str, dict[str, Any]] | None = None,
    hub_timeout: float = 60,
) -> KubeStack:
    """An IdP + hub (``IAM_HUB_CONFIG + KUBE_HUB_CONFIG + extra_config``) spawning on ``kube``
    (``provider_options``: see :func:`start_stack`)."""
    if provider != "iam":
        raise ValueError("only the IAM provider is wired here; add its config first")
    config = IAM_HUB_CONFIG + KUBE_HUB_CONFIG + extra_config
    stack = start_stack(
        workdir,
        provider,
        config,
        kube.env,
        provider_options=provider_options,
        hub_timeout=hub_timeout,
    )
    return KubeStack(stack=stack, kube=kube)
