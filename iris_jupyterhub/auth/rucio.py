"""Rucio access tokens from the user's refresh token: part of the OIDC authenticators.

:class:`RucioTokenMixin` (a base of :class:`~iris_jupyterhub.auth.OIDCAuthenticator`)
adds :meth:`~RucioTokenMixin.rucio_token`, which the hub endpoint
``GET /hub/api/iris/rucio/<instance>/token`` (:mod:`iris_jupyterhub.rucio.handler`) calls.
It reuses the authenticator's discovery, token endpoint, client authentication and
provider-outage handling (``get_token_info``), keeps the token in the user's encrypted
``auth_state["rucio"]`` and stores a rotated refresh token (also when the token request
that followed the rotation fails). Token requests and
``refresh_user`` of one user run one at a time (a per-user lock in this hub process), and
a refresh result is saved before the lock is released, so a refresh token rotated by the
provider is never lost. With no ``c.RucioTokens.instances`` nothing here changes the
authenticator's behaviour.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Mapping
from typing import Any

from tornado import web
from tornado.httpclient import HTTPClientError

from ..groups import memberships_from_auth_state
from ..rucio.config import RucioInstance, RucioTokens, account_for
from ..rucio.tokens import (
    RucioTokenError,
    cache_entry,
    exchange_params,
    is_fresh,
    oauth_error,
    refresh_params,
    token_answer,
)

__all__ = ["RucioTokenMixin"]

#: Seconds a server waits before asking again when the provider refused for a reason
#: only the administrators can fix (a client not allowed the audience or grant).
_REFUSED_RETRY = 300


class RucioTokenMixin:
    """``rucio_token`` and the Rucio endpoint of the OIDC authenticators."""

    # provided by OIDCSettings / OAuthenticator (annotations only, for mypy)
    config: Any
    log: Any
    login_service: str
    get_token_info: Any
    build_refresh_token_request_params: Any

    _rucio_settings: RucioTokens | None = None
    _rucio_parsed: list[RucioInstance] | None = None
    _rucio_locks: weakref.WeakValueDictionary[str, asyncio.Lock] | None = None

    @property
    def rucio(self) -> RucioTokens:
        """The hub's :class:`~iris_jupyterhub.rucio.RucioTokens` (``c.RucioTokens``)."""
        if self._rucio_settings is None:
            self._rucio_settings = RucioTokens(config=self.config)
        return self._rucio_settings

    def rucio_instances(self) -> list[RucioInstance]:
        """The configured instances (validated once)."""
        if self._rucio_parsed is None:
            self._rucio_parsed = self.rucio.parsed_instances()
        return self._rucio_parsed

    def get_handlers(self, app: Any) -> list[Any]:
        """The authenticator's handlers, plus the Rucio token endpoint when configured."""
        handlers: list[Any] = super().get_handlers(app)  # type: ignore[misc]
        if self.rucio.instances:
            from ..rucio.handler import ROUTE, RucioTokenHandler  # noqa: PLC0415

            handlers.append((ROUTE, RucioTokenHandler))
        return handlers

    def _user_lock(self, name: str) -> asyncio.Lock:
        if self._rucio_locks is None:
            self._rucio_locks = weakref.WeakValueDictionary()
        lock = self._rucio_locks.get(name)
        if lock is None:
            lock = asyncio.Lock()
            self._rucio_locks[name] = lock
        return lock

    async def refresh_user(self, user: Any, handler: Any = None, **kwargs: Any) -> Any:
        """The authenticator's ``refresh_user``, one at a time per user with Rucio tokens.

        The new ``auth_state`` keeps the cached Rucio tokens and is saved before the lock
        is released (the hub saves it again), so no Rucio token request can read the
        refresh token the provider has just replaced.
        """
        if not self.rucio.instances:
            return await super().refresh_user(user, handler, **kwargs)  # type: ignore[misc]
        async with self._user_lock(user.name):
            previous = await user.get_auth_state() or {}
            result = await super().refresh_user(user, handler, **kwargs)  # type: ignore[misc]
            state = result.get("auth_state") if isinstance(result, dict) else None
            if isinstance(state, dict):
                if previous.get("rucio") and "rucio" not in state:
                    state["rucio"] = previous["rucio"]
                await user.save_auth_state(state)
            return result

    async def rucio_token(self, user: Any, name: str) -> dict[str, Any]:
        """The 200 answer of the Rucio endpoint for ``user`` and instance ``name``.

        Raises:
            RucioTokenError: ``unknown_instance``, ``not_in_group``, ``login_required``
                (the provider refused the refresh token) or ``idp_unavailable``.
        """
        instance = next((i for i in self.rucio_instances() if i.name == name), None)
        if instance is None:
            raise RucioTokenError(
                "unknown_instance", f"This hub offers no Rucio instance called {name[:64]!r}."
            )
        async with self._user_lock(user.name):
            auth_state = await user.get_auth_state() or {}
            if not instance.offered_to(memberships_from_auth_state(auth_state)):
                raise RucioTokenError(
                    "not_in_group",
                    f"{instance.display_name} is offered to members of "
                    + ", ".join(str(g) for g in instance.groups)
                    + f", and according to {self.login_service} you are in none of them. "
                    "Ask your VO manager if you think you should be.",
                )
            account = account_for(instance, auth_state, user.name)
            cache = auth_state.get("rucio")
            cache = dict(cache) if isinstance(cache, Mapping) else {}
            if is_fresh(cache.get(instance.name), self.rucio.renewal_margin):
                return token_answer(instance, cache[instance.name], account)
            refresh_token = auth_state.get("refresh_token")
            try:
                entry = await self._new_rucio_token(user.name, instance, auth_state)
            except BaseException:
                if auth_state.get("refresh_token") != refresh_token:
                    # rotated before the request failed: the old one no longer works
                    await user.save_auth_state(auth_state)
                raise
            cache[instance.name] = entry
            auth_state["rucio"] = cache
            await user.save_auth_state(auth_state)
            self.log.info(
                "Rucio token for %s at %s obtained, valid %ds",
                user.name,
                instance.name,
                entry["expires_at"] - entry["obtained_at"],
            )
            return token_answer(instance, entry, account)

    # --- talking to the provider ---------------------------------------------------------

    def _client_params(self) -> dict[str, str]:
        """How this client authenticates in the request body (nothing with HTTP Basic)."""
        params: dict[str, str] = self.build_refresh_token_request_params("")
        return params

    async def _new_rucio_token(
        self, username: str, instance: RucioInstance, auth_state: dict[str, Any]
    ) -> dict[str, Any]:
        refresh_token = auth_state.get("refresh_token")
        if not isinstance(refresh_token, str) or not refresh_token:
            self.log.warning(
                "No Rucio token for %s at %s: no refresh token in auth_state (was "
                "offline_access granted at login?)",
                username,
                instance.name,
            )
            raise self._login_required()
        if instance.grant == "token_exchange":
            subject = await self._hub_access_token(username, instance, auth_state)
            params = exchange_params(instance, subject, self._client_params())
        else:
            params = refresh_params(instance, refresh_token, self._client_params())
        token_info = await self._token_request(username, instance, params)
        self._keep_rotated(auth_state, token_info)
        try:
            return cache_entry(token_info)
        except ValueError as e:
            self.log.error("Rucio token for %s at %s: %s", username, instance.name, e)
            raise self._unavailable(_REFUSED_RETRY) from e

    async def _hub_access_token(
        self, username: str, instance: RucioInstance, auth_state: dict[str, Any]
    ) -> str:
        """The hub's own access token (renewed first when about to expire): the subject
        of a token exchange."""
        token = auth_state.get("access_token")
        expires_at = auth_state.get("expires_at")
        left = expires_at - time.time() if isinstance(expires_at, (int, float)) else 0
        if isinstance(token, str) and token and left > 60:
            return token
        params = self.build_refresh_token_request_params(auth_state["refresh_token"])
        token_info = await self._token_request(username, instance, params)
        self._keep_rotated(auth_state, token_info)
        entry = cache_entry(token_info)
        auth_state["access_token"] = entry["access_token"]
        auth_state["expires_at"] = entry["expires_at"]
        return str(entry["access_token"])

    @staticmethod
    def _keep_rotated(auth_state: dict[str, Any], token_info: Mapping[str, Any]) -> None:
        """Store a refresh token the provider rotated (the old one no longer works)."""
        new = token_info.get("refresh_token")
        if isinstance(new, str) and new and new != auth_state.get("refresh_token"):
            auth_state["refresh_token"] = new
            response = auth_state.get("token_response")
            if isinstance(response, dict) and "refresh_token" in response:
                response["refresh_token"] = new

    async def _token_request(
        self, username: str, instance: RucioInstance, params: dict[str, str]
    ) -> dict[str, Any]:
        what = f"Rucio token for {username} at {instance.name}"
        try:
            token_info: dict[str, Any] = await self.get_token_info(None, params)
        except HTTPClientError as e:  # 4xx: the provider refused the request
            if e.code == 599 or e.code >= 500:  # not turned into a 503 on the way here
                self.log.warning(
                    "%s: %s is unavailable (HTTP %s)", what, self.login_service, e.code
                )
                raise self._unavailable(30) from e
            code = oauth_error(e.response.body if e.response is not None else None)
            if code == "invalid_grant":
                self.log.warning(
                    "%s: %s refused the refresh token (invalid_grant: expired or revoked); "
                    "the user must log in again",
                    what,
                    self.login_service,
                )
                raise self._login_required() from e
            self.log.error(
                "%s: %s refused the %s request with HTTP %s %s; check that the hub's client "
                "may ask for audience %r and scopes %r",
                what,
                self.login_service,
                params["grant_type"],
                e.code,
                code or "(no OAuth error code)",
                instance.audience,
                " ".join(instance.scopes),
            )
            raise self._unavailable(_REFUSED_RETRY) from e
        except web.HTTPError as e:  # 503 from the outage handling, or a refused answer
            retry = int((getattr(e, "headers", None) or {}).get("Retry-After", 30))
            if e.status_code != 503:
                # only the status: the message may quote the answer (oauthenticator's
                # "Bad response: {token_info}"), refresh token included
                self.log.error(
                    "%s: unusable answer from %s (HTTP %s)",
                    what,
                    self.login_service,
                    e.status_code,
                )
                retry = _REFUSED_RETRY
            else:
                self.log.warning("%s: %s is unavailable", what, self.login_service)
            raise self._unavailable(retry) from e
        return token_info

    def _login_required(self) -> RucioTokenError:
        return RucioTokenError(
            "login_required",
            f"Your sign-in at {self.login_service} has expired or was revoked, so the hub "
            "cannot get Rucio tokens for you. Log out of the hub and log in again; your "
            "server keeps running and picks up the new token by itself.",
        )

    def _unavailable(self, retry_after: int) -> RucioTokenError:
        return RucioTokenError(
            "idp_unavailable",
            f"{self.login_service} did not issue a Rucio token just now. Nothing is wrong "
            "with your account: this is retried automatically, and the hub administrators "
            "have been told if it persists.",
            retry_after=retry_after,
        )
