"""``OIDCAuthenticator``: OpenID Connect login on top of oauthenticator, done properly.

What it adds to :class:`oauthenticator.oauth2.OAuthenticator`:

* endpoints from OIDC discovery (``<issuer>/.well-known/openid-configuration``), cached;
* PKCE S256 (oauthenticator's), ``state`` (oauthenticator's, made single-use) and ``nonce``;
* the ID token verified (signature by ``kid`` with one JWKS refetch on rotation, algorithm
  allow-list, ``iss``/``aud``/``azp``/``exp``/``iat``/``nonce``), userinfo merged in and its
  ``sub`` checked against the ID token's;
* groups from every claim format IRIS IdPs send, parsed into one canonical model
  (:mod:`iris_jupyterhub.groups`) used by ``allowed_groups``, ``required_groups`` and
  ``admin_groups``, and synced to JupyterHub groups;
* a stable identity (issuer + subject, never a display name) bound to the hub username;
* ``refresh_user`` that renews tokens with the refresh token and re-applies the rules
  (:mod:`iris_jupyterhub.auth.refresh`);
* Rucio access tokens for the user's notebook servers, from the refresh token
  (:mod:`iris_jupyterhub.auth.rucio`, configured as ``c.RucioTokens``).
"""

from __future__ import annotations

import time
from typing import Any

from jupyterhub.crypto import CryptKeeper
from oauthenticator.oauth2 import OAuthenticator
from tornado import web
from tornado.httpclient import HTTPClientError

from ..errors import http_error, service_unavailable
from ..groups import group_names, memberships_from_auth_state, parse_group_rule
from ..startup import check_config as check_components
from .claims import canonical_groups
from .handlers import OIDCCallbackHandler, OIDCLoginHandler, UsedStates, state_secret
from .identity import check_identity_binding, identity_from_claims, stored_auth_state
from .posix_mapping import make_registry, map_login
from .provider import ProviderMetadata
from .refresh import RefreshMixin
from .rucio import RucioTokenMixin
from .rules import GroupPolicy
from .settings import OIDCSettings
from .tokens import (
    IDTokenError,
    UnknownSigningKeyError,
    nonce_for_state,
    normalize_issuer,
    verify_id_token,
)
from .usernames import safe_username

__all__ = ["OIDCAuthenticator"]

#: JWT bookkeeping claims that say nothing about the person; not kept in the user model.
_JWT_ONLY_CLAIMS = ("exp", "iat", "nbf", "nonce", "at_hash", "c_hash", "jti", "s_hash")


class OIDCAuthenticator(
    OIDCSettings,
    RucioTokenMixin,
    RefreshMixin,
    OAuthenticator,  # type: ignore[misc]
):
    """Log in with any OpenID Connect provider; the base of the IAM and Check-in authenticators."""

    login_handler = OIDCLoginHandler
    callback_handler = OIDCCallbackHandler

    # oauthenticator's endpoint traits, filled from discovery (annotations only, for mypy)
    authorize_url: str
    token_url: str
    userdata_url: str

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        name = type(self).__name__
        if not self.issuer:
            raise ValueError(f"{name}.issuer must be set to the provider's issuer URL")
        if not self.client_id:
            raise ValueError(f"{name}.client_id must be set (or OAUTH_CLIENT_ID)")
        if self.enable_auth_state and not CryptKeeper.instance().keys:
            raise ValueError(
                f"{name} keeps tokens and groups in auth_state, which must be encrypted: "
                "set the JUPYTERHUB_CRYPT_KEY environment variable to a 32-byte hex key "
                "(`openssl rand -hex 32`). In Zero to JupyterHub, set hub.config."
                "CryptKeeper.keys or the JUPYTERHUB_CRYPT_KEY env in hub.extraEnv."
            )
        # the other components' options (spawner, storage, accounting) fail the hub start too
        check_components(self.config)
        self.used_states = UsedStates()
        self.identity_registry = make_registry(self) if self.posix_mapping else None
        self.provider = ProviderMetadata(
            issuer=self.issuer,
            explicit={
                "authorization_endpoint": str(self.authorize_url),
                "token_endpoint": str(self.token_url),
                "userinfo_endpoint": str(self.userdata_url),
                "jwks_uri": self.jwks_url,
            },
        )
        self.policy = GroupPolicy(
            allowed=frozenset(parse_group_rule(t) for t in self.allowed_groups),
            required=frozenset(parse_group_rule(t) for t in self.required_groups),
            admin=frozenset(parse_group_rule(t) for t in self.admin_groups),
        )

    # --- talking to the provider ------------------------------------------------------

    async def _call_provider(self, what: str, awaitable: Any) -> Any:
        """Await a request to the provider; outages become a 503 page, logged with context."""
        try:
            return await awaitable
        except HTTPClientError as e:
            if e.code == 599 or e.code >= 500:
                self.log.error(
                    "%s failed while %s: HTTP %s %s", self.login_service, what, e.code, e
                )
                raise service_unavailable(self.login_service) from e
            raise
        except OSError as e:
            self.log.error("%s unreachable while %s: %s", self.login_service, what, e)
            raise service_unavailable(self.login_service) from e

    async def discover(self) -> None:
        """Fetch (or reuse) the discovery document and apply its endpoints."""
        if self.provider.fresh(self.discovery_ttl):
            return
        url = normalize_issuer(self.issuer) + "/.well-known/openid-configuration"
        try:
            document = await self._call_provider(
                "fetching its discovery document", self.httpfetch(url, label="OIDC discovery")
            )
            self.provider.apply_discovery(document)
        except (web.HTTPError, HTTPClientError, ValueError) as e:
            if self.provider.discovered:
                self.log.warning("Keeping cached discovery for %s: %s", self.issuer, e)
                self.provider.touch()
                return
            if isinstance(e, ValueError):
                self.log.error("Discovery document of %s refused: %s", self.issuer, e)
                raise service_unavailable(self.login_service) from e
            raise
        self.authorize_url = self.provider.endpoint("authorization_endpoint")
        self.token_url = self.provider.endpoint("token_endpoint")
        self.userdata_url = self.provider.endpoint("userinfo_endpoint")

    async def _jwks(self, refetch: bool = False) -> dict[str, Any]:
        stale = self.provider.jwks is None or not self.provider.jwks_fresh(self.discovery_ttl)
        if refetch:
            stale = self.provider.jwks_age() >= self.jwks_min_refetch_interval
        if stale:
            url = self.provider.endpoint("jwks_uri")
            jwks = await self._call_provider("fetching its signing keys", self.httpfetch(url))
            self.provider.set_jwks(jwks)
        assert self.provider.jwks is not None  # noqa: S101  (set just above or before)
        return self.provider.jwks

    async def verify_id_token(self, token: str, nonce: str | None) -> dict[str, Any]:
        """Verify ``token`` against the provider's keys; refetch them once on an unknown kid."""
        try:
            try:
                return verify_id_token(token, await self._jwks(), **self._verify_kwargs(nonce))
            except UnknownSigningKeyError:
                jwks = await self._jwks(refetch=True)
                return verify_id_token(token, jwks, **self._verify_kwargs(nonce))
        except IDTokenError as e:
            self.log.warning("Refusing an ID token from %s: %s", self.issuer, e.reason)
            raise http_error(
                403,
                f"The answer from {self.login_service} failed a security check, so you were "
                "not signed in. Please try again; if it keeps happening, tell the hub "
                "administrators the time of your attempt.",
            ) from e

    def _verify_kwargs(self, nonce: str | None) -> dict[str, Any]:
        return {
            "issuer": self.issuer,
            "client_id": self.client_id,
            "algorithms": self.id_token_algorithms,
            "leeway": self.id_token_leeway,
            "nonce": nonce,
        }

    # --- oauthenticator hooks ------------------------------------------------------------

    async def get_token_info(self, handler: Any, params: dict[str, Any]) -> dict[str, Any]:
        """Exchange a code or refresh token; verify the ID token that comes back."""
        await self.discover()
        grant = params.get("grant_type")
        try:
            token_info: dict[str, Any] = await self._call_provider(
                "exchanging a token", super().get_token_info(handler, params)
            )
        except HTTPClientError as e:
            if grant != "authorization_code":
                raise
            self.log.warning("%s refused the code exchange: %s", self.login_service, e)
            raise http_error(
                400,
                f"{self.login_service} did not accept the sign-in code (it may have expired "
                "or been used already). Please start again from the login page.",
            ) from e
        id_token = token_info.get("id_token")
        if grant == "authorization_code":
            if not isinstance(id_token, str):
                self.log.error("%s returned no ID token; is 'openid' in scope?", self.issuer)
                raise http_error(
                    403,
                    f"{self.login_service} did not confirm who you are. Please start again "
                    "from the login page; if it keeps happening, tell the hub administrators.",
                )
            nonce = nonce_for_state(state_secret(handler), handler.get_argument("state"))
            token_info["id_token_claims"] = await self.verify_id_token(id_token, nonce)
        elif isinstance(id_token, str):
            token_info["id_token_claims"] = await self.verify_id_token(id_token, None)
        token_info["received_at"] = int(time.time())
        return token_info

    async def token_to_user(self, token_info: dict[str, Any]) -> dict[str, Any]:
        """Fetch userinfo and merge it over the verified ID token claims."""
        await self.discover()
        userinfo = await self._call_provider(
            "reading your user information", super().token_to_user(token_info)
        )
        if not isinstance(userinfo, dict):
            raise service_unavailable(self.login_service)
        id_claims = token_info.get("id_token_claims") or {}
        if id_claims and userinfo.get("sub") != id_claims.get("sub"):
            self.log.warning(
                "Refusing login: userinfo sub %r differs from ID token sub %r",
                str(userinfo.get("sub"))[:80],
                id_claims.get("sub"),
            )
            raise http_error(
                403,
                f"{self.login_service} gave inconsistent answers about who you are, "
                "so you were not signed in. Please try again.",
            )
        merged = {k: v for k, v in id_claims.items() if k not in _JWT_ONLY_CLAIMS}
        merged.update(userinfo)
        return merged

    def user_info_to_username(self, user_info: dict[str, Any]) -> str:
        raw = user_info.get(self.username_claim)
        name = safe_username(raw, max_length=self.username_max_length)
        if name is None:
            self.log.warning(
                "Refusing login: %s claim %r cannot be a hub username",
                self.username_claim,
                str(raw)[:80],
            )
            raise http_error(
                403,
                f"Your {self.login_service} account has no user name this hub can use "
                f"(claim '{self.username_claim}'). Please ask the hub administrators.",
            )
        return name

    async def build_auth_state_dict(
        self, token_info: dict[str, Any], user_info: dict[str, Any]
    ) -> dict[str, Any]:
        """oauthenticator's auth_state plus identity, canonical groups and token expiry."""
        state: dict[str, Any] = super().build_auth_state_dict(token_info, user_info)
        parsed = canonical_groups(user_info, self.group_claims, self.entitlement_namespaces)
        for problem in parsed.problems[:20]:
            self.log.warning(
                "Ignoring malformed group claim %s=%s: %s",
                problem.claim,
                problem.value,
                problem.reason,
            )
        if len(parsed.problems) > 20:
            self.log.warning("... and %d more malformed group values", len(parsed.problems) - 20)
        identity = identity_from_claims(self.issuer, user_info, self.identity_claims)
        if identity is None:
            raise http_error(
                403,
                f"{self.login_service} did not send a stable identifier for your account "
                f"(one of {', '.join(self.identity_claims)}), so you cannot be signed in.",
            )
        if self.identity_registry is not None:
            state["posix"] = await map_login(
                self.identity_registry,
                identity,
                safe_username(user_info.get(self.username_claim)),
                (m.group for m in parsed.memberships),
                self.log,
            )
        received = int(token_info.get("received_at") or time.time())
        expires_in = token_info.get("expires_in")
        state.update(
            identity=identity,
            issuer=identity["issuer"],
            sub=user_info.get("sub"),
            groups=[str(m) for m in parsed.memberships],
            expires_at=received + int(expires_in) if isinstance(expires_in, int) else None,
            verified_at=int(time.time()),
        )
        return state

    async def get_user_groups(self, auth_state: dict[str, Any]) -> set[str]:
        """JupyterHub groups to sync: the canonical group names, without roles."""
        return set(group_names(memberships_from_auth_state(auth_state)))

    async def update_auth_model(self, auth_model: dict[str, Any]) -> dict[str, Any]:
        """Admin from ``admin_groups``; the group rules that admit the user, kept in
        ``auth_state["admitted_by"]`` (usage is charged to them when nothing else applies)."""
        state = auth_model.get("auth_state")
        memberships = memberships_from_auth_state(state or {})
        if self.policy.admin and self.policy.is_admin(memberships):
            auth_model["admin"] = True
        if isinstance(state, dict):
            state["admitted_by"] = self.policy.admitted_by(memberships)
        return auth_model

    async def check_allowed(self, username: str, auth_model: dict[str, Any] | None) -> bool:
        """Apply ``required_groups`` (all of), then oauthenticator's rules + ``allowed_groups``."""
        if auth_model is None:
            return True
        memberships = memberships_from_auth_state(auth_model.get("auth_state") or {})
        if username not in self.admin_users:
            missing = self.policy.missing_required(memberships)
            if missing:
                self.log.info("Refusing %s: not in required groups %s", username, missing)
                raise http_error(
                    403,
                    f"This hub is only open to members of {self.policy.describe_required()}. "
                    f"According to {self.login_service} you are not a member of "
                    f"{', '.join(missing)}. Ask your VO manager if you think you should be.",
                )
        if await super().check_allowed(username, auth_model):
            return True
        if self.policy.is_allowed(memberships):
            return True
        # required_groups alone is an allow rule: members of all of them may log in.
        other_rules = self.allowed_users or self.allowed_groups or self.allow_all
        return bool(self.policy.required) and not other_rules

    async def authenticate(self, handler: Any, data: Any = None, **kwargs: Any) -> Any:
        """oauthenticator's login, then refuse a name already bound to another identity."""
        auth_model = await super().authenticate(handler, data, **kwargs)
        stored = await stored_auth_state(handler.db, auth_model["name"])
        check_identity_binding(auth_model["name"], stored, auth_model["auth_state"], self.log)
        return auth_model
