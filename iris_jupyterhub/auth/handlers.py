"""Login and callback handlers: oauthenticator's, plus OIDC discovery, nonce and replay checks."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

from oauthenticator.oauth2 import OAuthCallbackHandler, OAuthLoginHandler

from ..errors import http_error
from .tokens import nonce_for_state

if TYPE_CHECKING:
    from .oidc import OIDCAuthenticator

__all__ = ["OIDCCallbackHandler", "OIDCLoginHandler", "UsedStates"]

#: OAuth ``error`` codes a person caused themselves, shown as 403 rather than 400.
_REFUSALS = {"access_denied", "consent_required", "login_required", "interaction_required"}


def state_secret(handler: Any) -> bytes:
    """The hub's cookie secret: shared by replicas, so nonces verify on any of them."""
    secret = handler.settings.get("cookie_secret") or b""
    return secret if isinstance(secret, bytes) else str(secret).encode()


class UsedStates:
    """Remember the ``state`` of completed callbacks so a callback URL works only once.

    Bounded in size and time: entries older than ``ttl`` seconds are forgotten (the
    provider's authorization codes expire long before that).
    """

    def __init__(self, ttl: float = 3600, max_entries: int = 100_000) -> None:
        self.ttl = ttl
        self.max_entries = max_entries
        self._seen: OrderedDict[str, float] = OrderedDict()

    def consume(self, state: str, now: float | None = None) -> bool:
        """Record ``state``; return False if it was already used."""
        now = time.monotonic() if now is None else now
        while self._seen and (
            len(self._seen) >= self.max_entries or next(iter(self._seen.values())) < now - self.ttl
        ):
            self._seen.popitem(last=False)
        if state in self._seen:
            return False
        self._seen[state] = now
        return True


class OIDCLoginHandler(OAuthLoginHandler):  # type: ignore[misc]
    """Discover the provider's endpoints, then redirect with PKCE, ``state`` and ``nonce``."""

    authenticator: OIDCAuthenticator

    async def get(self) -> None:
        await self.authenticator.discover()
        super().get()

    def authorize_redirect(self, *args: Any, **kwargs: Any) -> None:
        extra = dict(kwargs.pop("extra_params", None) or {})
        state = extra.get("state")
        if isinstance(state, str):
            extra["nonce"] = nonce_for_state(state_secret(self), state)
        super().authorize_redirect(*args, extra_params=extra, **kwargs)


class OIDCCallbackHandler(OAuthCallbackHandler):  # type: ignore[misc]
    """Turn provider refusals into a 403 that says so, and refuse replayed callbacks."""

    authenticator: OIDCAuthenticator

    def check_error(self) -> None:
        error = self.get_argument("error", "")
        if not error:
            return
        description = self.get_argument("error_description", "")[:300]
        service = self.authenticator.login_service
        self.log.warning("%s refused the login: error=%s %s", service, error[:64], description)
        if error in _REFUSALS:
            raise http_error(
                403,
                f"Sign-in was not completed: {service} reports that access was denied "
                f"({description or error}). If you declined the request by mistake, "
                "start again from the login page.",
            )
        raise http_error(
            400,
            f"{service} could not complete the sign-in ({error}: {description}). "
            "Please start again from the login page.",
        )

    def check_state(self) -> None:
        super().check_state()
        if not self.authenticator.used_states.consume(self.get_state_url()):
            self.log.warning("Refusing a replayed OAuth callback (state already used)")
            raise http_error(
                400,
                "This sign-in link has already been used. Please start again from the login page.",
            )
