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
(403) or ``idp_unavailable`` (503, with ``Retry-After``).
"""

from __future__ import annotations

import json
from typing import Any

from jupyterhub.apihandlers.base import APIHandler
from jupyterhub.scopes import needs_scope

from .config import ROUTE, SCOPE
from .tokens import RucioTokenError, error_answer

__all__ = ["ROUTE", "SCOPE", "RucioTokenHandler"]


class RucioTokenHandler(APIHandler):  # type: ignore[misc]
    """``GET``: a Rucio access token of the requesting token's owner."""

    _scoped: Any = None

    def set_default_headers(self) -> None:
        super().set_default_headers()
        self.set_header("Cache-Control", "no-store")

    async def get(self, instance: str) -> None:
        owner = self.current_user
        if owner is None or not hasattr(owner, "get_auth_state"):
            # no credentials, or a service: Rucio tokens belong to users only
            name = getattr(owner, "name", None)
            self.log.warning("Rucio token request by %s refused: not a user", name)
            self.set_status(403)
            self.finish(
                json.dumps(
                    {"status": 403, "message": "Only a user's own servers get Rucio tokens."}
                )
            )
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
            self.set_status(e.status)
            for header, value in e.headers.items():
                self.set_header(header, value)
            self.finish(json.dumps(error_answer(e)))
            return
        self.finish(json.dumps(answer))
