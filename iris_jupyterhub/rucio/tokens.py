"""Rucio access tokens as plain data: the token requests, the cache entry, the answers.

Everything here is pure; :class:`~iris_jupyterhub.auth.OIDCAuthenticator` (the
``rucio_token`` method of :mod:`iris_jupyterhub.auth.rucio`) does the I/O.

The cache lives in the user's encrypted ``auth_state``::

    auth_state["rucio"] = {"<instance>": {"access_token": "...", "expires_at": 1767225600,
                                          "obtained_at": 1767222000}}

Errors are :class:`RucioTokenError`, whose :attr:`~RucioTokenError.reason` is one of
:data:`REASONS`; the hub endpoint answers them as ``{"status", "reason", "message"}``.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from tornado import web

from ..errors import UserFacingError
from .config import RucioInstance

__all__ = [
    "REASONS",
    "TOKEN_EXCHANGE_GRANT",
    "RucioTokenError",
    "auth_failure",
    "cache_entry",
    "error_answer",
    "exchange_params",
    "is_fresh",
    "oauth_error",
    "refresh_params",
    "token_answer",
]

TOKEN_EXCHANGE_GRANT = "urn:ietf:params:oauth:grant-type:token-exchange"  # noqa: S105
ACCESS_TOKEN_TYPE = "urn:ietf:params:oauth:token-type:access_token"  # noqa: S105
DEFAULT_LIFETIME = 300
"""Lifetime assumed for a token that states none (no ``expires_in``, no JWT ``exp``)."""

REASONS = {
    "unknown_instance": 404,
    "not_in_group": 403,
    "login_required": 403,
    "idp_unavailable": 503,
    "not_allowed": 403,
    "not_a_user_server": 403,
    "hub_unavailable": 503,
}
"""Every ``reason`` the hub endpoint answers with, and its HTTP status."""


class RucioTokenError(UserFacingError):
    """No Rucio token for this request; :attr:`reason` says why (one of :data:`REASONS`)."""

    def __init__(
        self, reason: str, message: str, detail: str = "", *, retry_after: int | None = None
    ) -> None:
        super().__init__(detail or message, user_message=message, status=REASONS[reason])
        self.reason = reason
        self.retry_after = retry_after


def _client_only(client_params: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in client_params.items() if k in ("client_id", "client_secret")}


def refresh_params(
    instance: RucioInstance, refresh_token: str, client_params: Mapping[str, str]
) -> dict[str, str]:
    """The ``refresh_token`` grant asking for a token with the instance's audience.

    ``client_params`` are what the authenticator sends to authenticate its client in the
    body (``client_id``/``client_secret``; empty with HTTP Basic); other keys are ignored.
    INDIGO IAM takes ``audience`` on any grant; ``scope`` narrows the token to the scopes
    Rucio checks.
    """
    return {
        "grant_type": "refresh_token",
        "refresh_token": refresh_token,
        "audience": instance.audience,
        "scope": " ".join(instance.scopes),
        **_client_only(client_params),
    }


def exchange_params(
    instance: RucioInstance, subject_token: str, client_params: Mapping[str, str]
) -> dict[str, str]:
    """An RFC 8693 token exchange of the hub's access token for one with the audience."""
    return {
        "grant_type": TOKEN_EXCHANGE_GRANT,
        "subject_token": subject_token,
        "subject_token_type": ACCESS_TOKEN_TYPE,
        "requested_token_type": ACCESS_TOKEN_TYPE,
        "audience": instance.audience,
        "scope": " ".join(instance.scopes),
        **_client_only(client_params),
    }


def _jwt_exp(token: str) -> int | None:
    # imported here: the singleuser image installs this package without PyJWT (the hub's)
    import jwt  # noqa: PLC0415

    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.InvalidTokenError:
        return None
    exp = claims.get("exp")
    return int(exp) if isinstance(exp, (int, float)) else None


def cache_entry(token_info: Mapping[str, Any], now: float | None = None) -> dict[str, Any]:
    """The ``auth_state["rucio"][<instance>]`` entry for a token endpoint answer.

    The expiry is ``expires_in`` after ``now``; else the JWT's ``exp``; else
    :data:`DEFAULT_LIFETIME`.

    Raises:
        ValueError: The answer holds no access token.
    """
    now = int(time.time() if now is None else now)
    token = token_info.get("access_token")
    if not isinstance(token, str) or not token:
        raise ValueError("the token endpoint returned no access_token")
    expires_in = token_info.get("expires_in")
    if isinstance(expires_in, (int, float)) and not isinstance(expires_in, bool):
        expires_at = now + int(expires_in)
    else:
        expires_at = _jwt_exp(token) or now + DEFAULT_LIFETIME
    return {"access_token": token, "expires_at": expires_at, "obtained_at": now}


def is_fresh(entry: object, margin: float, now: float | None = None) -> bool:
    """Whether a cached entry may be handed out again.

    It may while more than ``margin`` seconds are left, or half its lifetime when that is
    shorter (so a 20-second token is reused for 10 seconds rather than never).
    """
    if not isinstance(entry, Mapping) or not isinstance(entry.get("access_token"), str):
        return False
    expires_at, obtained_at = entry.get("expires_at"), entry.get("obtained_at")
    if not isinstance(expires_at, (int, float)):
        return False
    now = time.time() if now is None else now
    lifetime = expires_at - obtained_at if isinstance(obtained_at, (int, float)) else margin * 2
    return expires_at - now > min(margin, max(lifetime, 0) / 2)


def oauth_error(body: bytes | str | None) -> str | None:
    """The OAuth ``error`` code of a token endpoint's error answer, if it is one."""
    if not body:
        return None
    try:
        data = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None
    error = data.get("error") if isinstance(data, dict) else None
    return error[:64] if isinstance(error, str) else None


def token_answer(
    instance: RucioInstance, entry: Mapping[str, Any], account: str | None
) -> dict[str, Any]:
    """The 200 answer of ``GET /hub/api/iris/rucio/<instance>/token``."""
    return {
        "instance": instance.name,
        "access_token": entry["access_token"],
        "expires_at": int(entry["expires_at"]),
        "account": account,
        "rucio_host": instance.rucio_host,
        "auth_host": instance.auth_host,
        "vo": instance.vo,
    }


def error_answer(error: RucioTokenError) -> dict[str, Any]:
    """The JSON body of an error answer: ``{"status", "reason", "message"}``."""
    return {"status": error.status, "reason": error.reason, "message": error.user_message}


def auth_failure(error: BaseException | None, login_service: str) -> RucioTokenError:
    """Why a request has no current user: ``error`` is what authenticating it raised.

    JupyterHub refreshes a user's auth state while authenticating a request and, when
    that raises, carries on with no user; the endpoint answers with this instead of a
    bare 403. A 5xx from the refresh (the provider down beyond ``idp_outage_grace``) is
    ``idp_unavailable``, a 4xx (no longer allowed, blocked) ``not_allowed`` with the
    refusal's own sentence, anything else (e.g. a hub database error)
    ``hub_unavailable``; no error at all (no or an unknown token, a service's token) is
    ``not_a_user_server``.
    """
    if error is None:
        return RucioTokenError(
            "not_a_user_server",
            "Only a user's own servers get Rucio tokens: this request did not come with "
            "the API token of a running server of a hub user.",
        )
    if isinstance(error, web.HTTPError) and error.status_code < 500:
        message = getattr(error, "jupyterhub_message", None) or (
            f"{login_service} no longer allows you to use this hub, so it gets no Rucio "
            "tokens for you. Ask your VO manager if you think this is a mistake."
        )
        return RucioTokenError("not_allowed", str(message))
    if isinstance(error, web.HTTPError):
        retry = (getattr(error, "headers", None) or {}).get("Retry-After", "30")
        return RucioTokenError(
            "idp_unavailable",
            f"{login_service} is not responding, so the hub cannot check your sign-in or "
            "get Rucio tokens for you just now. Nothing is wrong with your account: this "
            "is retried automatically.",
            retry_after=int(retry) if str(retry).isdigit() else 30,
        )
    return RucioTokenError(
        "hub_unavailable",
        "The hub could not check who is asking for a Rucio token (an internal error, "
        "logged for the administrators). This is retried automatically.",
        retry_after=30,
    )
