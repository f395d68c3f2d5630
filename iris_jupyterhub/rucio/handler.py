"""The hub endpoint a notebook server fetches its user's Rucio access token from.

``GET /hub/api/iris/rucio/<instance>/token``, authenticated with the server's own
``JUPYTERHUB_API_TOKEN`` (``Authorization: token ...``). The answer is always about the
token's owner: a token needs the custom scope :data:`SCOPE` for that user
(``custom:iris-rucio-token!user``, which :func:`~iris_jupyterhub.rucio.configure_hub`
grants to every user and to their servers' tokens), checked with JupyterHub's
``needs_scope``; anything else gets JupyterHub's 403. A token of user B can only ever
obtain B's Rucio token.

200::

    {"instance": "ral", "access_token": "eyJ...", "expires_at": 1767225600,
     "account": "alice" | null, "rucio_host": "https://...", "auth_host": "https://...",
     "vo": "def" | null}

Errors (``Cache-Control: no-store`` on every answer)::

    {"status": 403, "reason": "login_required", "message": "..."}

with ``reason`` ``unknown_instance`` (404), ``not_in_group`` (403), ``login_required``
(403) or ``idp_unavailable`` (503, with ``Retry-After``). When authenticating the request
fails (JupyterHub refreshes the user's auth state first, and carries on with no user when
that raises), the answer says why (:func:`~iris_jupyterhub.rucio.tokens.auth_failure`):
``idp_unavailable`` (503, the provider down beyond ``idp_outage_grace``), ``not_allowed``
(403, the provider no longer allows the user), ``hub_unavailable`` (503, e.g. a hub
database error) or ``not_a_user_server`` (403, no token of a user's server).
"""

from __future__ import annotations

import json
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import needs_scope

from .config import ROUTE, SCOPE
from .tokens import RucioTokenError, auth_failure, error_answer

__all__ = ["ROUTE", "SCOPE", "RucioTokenHandler"]


class RucioTokenHandler(APIHandler):  # type: ignore[misc]
    """``GET``: a Rucio access token of the requesting token's owner."""

    _scoped: Any = None
    _auth_error: BaseException | None = None

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    async def get_current_user(self) -> Any:
        """JupyterHub's, remembering what it raised (``prepare`` logs and drops it)."""
        try:
            return await super().get_current_user()
        except Exception as e:
            self._auth_error = e
            raise

    async def get(self, instance: str) -> None:
        owner = self.current_user
        if owner is None or not hasattr(owner, "get_auth_state"):
            # authentication failed, no credentials, or a service: Rucio tokens belong
            # to users only
            error = auth_failure(self._auth_error, self.authenticator.login_service)
            name = getattr(owner, "name", None)
            self.log.warning("Rucio token request by %s refused: %s", name, error.reason)
            self._refuse(error)
            return
        cls = type(self)
        if cls._scoped is None:
            # decorated on first use: the custom scope is defined when the hub starts
            cls._scoped = needs_scope(SCOPE)(cls._answer)
        await cls._scoped(self, instance, user_name=owner.name)

    async def _answer(self, instance: str, user_name: str) -> None:
        try:
            answer = await self.authenticator.rucio_token(self.current_user, instance)
        except RucioTokenError as e:
            self.log.info(
                "Rucio token for %s at %r refused: %s", user_name, instance[:64], e.reason
            )
            self._refuse(e)
            return
        self.finish(json.dumps(answer))

    def _refuse(self, error: RucioTokenError) -> None:
        self.set_status(error.status)
        for header, value in error.headers.items():
            self.set_header(header, value)
        self.finish(json.dumps(error_answer(error)))
