"""Whole-stack fixtures: the real IdP (node oidc-provider), JupyterHub and proxy."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jwt
import pytest
from jwt.algorithms import RSAAlgorithm

from devstack.hub import REPO_ROOT, HubProcess
from devstack.idp import IdPProcess, default_clients, free_port, make_rsa_jwk
from devstack.login import LoginAttempt, hub_login

USERS = {
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
        return json.loads(json.dumps(USERS[(self.provider, login)]))

    def sign(
        self, claims: dict[str, Any], *, jwk: dict[str, Any] | None = None, kid: str | None = None
    ) -> str:
        """Sign ``claims`` with the provider's key (or ``jwk``) as the IdP would."""
        jwk = jwk or self.keys[self.provider]
        key = RSAAlgorithm.from_jwk(json.dumps(jwk))
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


def start_stack(
    workdir: Path, provider: str, hub_config: str, hub_env: dict[str, str] | None = None
) -> Stack:
    hub_port = free_port()
    keys = {"iam": make_rsa_jwk("iam-key-1"), "checkin": make_rsa_jwk("checkin-key-1")}
    idp = IdPProcess(
        REPO_ROOT,
        workdir / "idp",
        clients=default_clients([f"http://127.0.0.1:{hub_port}/hub/oauth_callback"]),
        provider_jwks={name: {"keys": [jwk]} for name, jwk in keys.items()},
    )
    (workdir / "idp").mkdir(parents=True, exist_ok=True)
    idp.start()
    config = hub_config.replace("{issuer}", idp.issuer(provider))
    hub = HubProcess(workdir / "hub", hub_port, config, env=hub_env)
    try:
        hub.start()
    except Exception:
        idp.stop()
        raise
    return Stack(idp=idp, hub=hub, provider=provider, keys=keys)


IAM_HUB_CONFIG = """
c.JupyterHub.authenticator_class = "iris-iam"
c.IAMAuthenticator.issuer = "{issuer}"
c.IAMAuthenticator.client_id = "hub"
c.IAMAuthenticator.client_secret = "s3cret"
c.IAMAuthenticator.allowed_groups = {"iris"}
c.IAMAuthenticator.admin_groups = {"iris/admins"}
c.IAMAuthenticator.http_timeout = 3
c.IAMAuthenticator.jwks_min_refetch_interval = 0
"""

CHECKIN_HUB_CONFIG = """
c.JupyterHub.authenticator_class = "egi-checkin"
c.EGICheckinAuthenticator.issuer = "{issuer}"
c.EGICheckinAuthenticator.client_id = "hub"
c.EGICheckinAuthenticator.client_secret = "s3cret"
c.EGICheckinAuthenticator.required_groups = {"vo.iris.ac.uk:role=member"}
c.EGICheckinAuthenticator.admin_groups = {"vo.iris.ac.uk/lsst/desc:role=manager"}
c.EGICheckinAuthenticator.entitlement_namespaces = [
    "urn:mace:egi.eu", "urn:geant:eduteams.org:service:eduteams"
]
"""


@pytest.fixture(scope="module")
def stack_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., Stack]]:
    started: list[Stack] = []

    def make(provider: str, hub_config: str, hub_env: dict[str, str] | None = None) -> Stack:
        stack = start_stack(tmp_path_factory.mktemp(provider), provider, hub_config, hub_env)
        started.append(stack)
        return stack

    yield make
    for stack in started:
        stack.hub.stop()
        stack.idp.stop()


def restore_idp(stack: Stack) -> None:
    """Undo a test's changes at the IdP: failures, queued tokens, edited users."""
    stack.idp.reset()
    for (provider, _login), user in USERS.items():
        if provider == stack.provider:
            stack.idp.upsert_user(provider, user)


@pytest.fixture(autouse=True)
def _restore_idp_after_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """In modules with a ``stack`` fixture, undo each test's changes at the IdP."""
    yield
    if "stack" in request.fixturenames:
        restore_idp(request.getfixturevalue("stack"))


def login(stack: Stack, who: str, **kwargs: Any) -> LoginAttempt:
    """Log in at the stack's hub as IdP user ``who`` (password ``<who>-pass``)."""
    return hub_login(stack.hub.url, who, f"{who}-pass", **kwargs)
