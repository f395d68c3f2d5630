"""The notebook server's call to the hub for a Rucio access token, and what its answers mean.

``GET {JUPYTERHUB_API_URL}/iris/rucio/<instance>/token`` with the server's own
``JUPYTERHUB_API_TOKEN`` answers ``{"instance", "access_token", "expires_at", "account",
"rucio_host", "auth_host", "vo"}`` or an error ``{"status", "reason", "message"}``.
:func:`interpret_answer` turns any answer (or no answer) into an :class:`Outcome`, a pure
function of the status, headers and body; :func:`fetch_token` makes the call.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import parsedate_to_datetime
from typing import Any, Literal
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from .files import check_token_text

__all__ = [
    "REFUSALS",
    "HubConnection",
    "Outcome",
    "TokenAnswer",
    "fetch_token",
    "interpret_answer",
    "parse_retry_after",
]

# The error reasons after which asking again soon cannot help: the token is withdrawn
# and the hub is asked again only slowly (a re-login or a group change restores it).
# Any other reason the hub gives with a 401/403 is a refusal too (shown as the hub says).
REFUSALS = frozenset({"unknown_instance", "not_in_group", "login_required"})


@dataclass(frozen=True)
class TokenAnswer:
    """A 200 answer: the access token (never shown in a repr) and where it is valid."""

    instance: str
    access_token: str = field(repr=False)
    expires_at: float
    account: str = ""
    rucio_host: str = ""
    auth_host: str = ""
    vo: str = ""


@dataclass(frozen=True)
class Outcome:
    """What one call to the hub came to.

    ``kind`` is ``token`` (``token`` is set), ``refused`` (``reason`` is one of
    :data:`REFUSALS` or another reason the hub gave with a 401/403: the token must go) or
    ``retry`` (the hub could not answer now: unreachable, ``idp_unavailable``, another
    5xx, a 401/403 without a reason, or an answer that made no sense).
    """

    kind: Literal["token", "refused", "retry"]
    token: TokenAnswer | None = None
    reason: str = ""
    message: str = ""
    status: int = 0
    retry_after: float | None = None


@dataclass(frozen=True)
class HubConnection:
    """How this server reaches the hub's API, from the environment JupyterHub gives it."""

    api_url: str
    api_token: str = field(repr=False)
    ca_certs: str | None = None
    client_cert: str | None = None
    client_key: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> HubConnection:
        """``JUPYTERHUB_API_URL`` and ``JUPYTERHUB_API_TOKEN`` (and internal-SSL files, if any).

        :class:`ValueError` when either of the two is missing: the server was not
        started by JupyterHub.
        """
        env = os.environ if environ is None else environ
        url, token = env.get("JUPYTERHUB_API_URL", ""), env.get("JUPYTERHUB_API_TOKEN", "")
        if not url or not token:
            raise ValueError("JUPYTERHUB_API_URL and JUPYTERHUB_API_TOKEN must both be set")
        return cls(
            api_url=url.rstrip("/"),
            api_token=token,
            ca_certs=env.get("JUPYTERHUB_SSL_CLIENT_CA") or None,
            client_cert=env.get("JUPYTERHUB_SSL_CERTFILE") or None,
            client_key=env.get("JUPYTERHUB_SSL_KEYFILE") or None,
        )

    def token_url(self, instance: str) -> str:
        """The endpoint that hands out ``instance``'s token."""
        return f"{self.api_url}/iris/rucio/{quote(instance, safe='')}/token"


def parse_retry_after(value: str | None, now: float) -> float | None:
    """Seconds to wait from a ``Retry-After`` value (seconds or an HTTP date), else None."""
    if not value:
        return None
    text = value.strip()
    if text.isdigit():
        return float(text)
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


def _json(body: bytes) -> dict[str, Any] | None:
    try:
        data = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _token(data: Mapping[str, Any], instance: str) -> TokenAnswer | None:
    token, expires_at = data.get("access_token"), data.get("expires_at")
    if data.get("instance") != instance or not isinstance(token, str):
        return None
    if isinstance(expires_at, bool) or not isinstance(expires_at, (int, float)):
        return None
    if not math.isfinite(expires_at):
        return None
    try:
        check_token_text(token)
    except ValueError:
        return None
    text = {k: data.get(k) for k in ("account", "rucio_host", "auth_host", "vo")}
    return TokenAnswer(
        instance,
        token,
        float(expires_at),
        **{k: v if isinstance(v, str) else "" for k, v in text.items()},
    )


def _refusal(status: int, reason: str, message: str) -> Outcome | None:
    """A refusal: a known reason, a 401/403 with any reason, a 404 without one; else None.

    A 401/403 *without* a reason is not one: JupyterHub answers so when it cannot
    authenticate the request just now (its identity provider or database failing), so it
    is retried like a hub that cannot answer, and the current token is kept.
    """
    if reason in REFUSALS or (reason and status in (401, 403)):
        return Outcome("refused", reason=reason, message=message, status=status)
    if status == 404:
        detail = message or "the hub has no Rucio token endpoint (is its Rucio support on?)"
        return Outcome("refused", reason="unknown_instance", message=detail, status=status)
    return None


def interpret_answer(
    status: int, headers: Mapping[str, str], body: bytes, instance: str, *, now: float
) -> Outcome:
    """The :class:`Outcome` of the hub's answer ``status``/``headers``/``body`` for ``instance``.

    ``status`` 599 is tornado's "no answer" (refused connection, timeout, DNS); ``body``
    then holds the error text.
    """
    if status == 599:
        text = body.decode("utf-8", "replace")
        return Outcome("retry", reason="unreachable", message=text, status=status)
    data = _json(body) if body else None
    if status == 200:
        token = _token(data or {}, instance)
        if token is None:
            text = "the hub's answer has no usable token"
            return Outcome("retry", reason="bad_answer", message=text, status=status)
        return Outcome("token", token=token, status=status)
    reason = str(data.get("reason", "")) if data else ""
    message = str(data.get("message", "")) if data else ""
    refusal = _refusal(status, reason, message)
    if refusal is not None:
        return refusal
    return Outcome(
        "retry",
        reason=reason or f"http_{status}",
        message=message,
        status=status,
        retry_after=parse_retry_after(headers.get("Retry-After"), now),
    )


async def fetch_token(
    connection: HubConnection,
    instance: str,
    *,
    timeout: float,
    now: float,
    client: AsyncHTTPClient | None = None,
) -> Outcome:
    """Ask the hub for ``instance``'s token; never raises for network or HTTP failures."""
    request = HTTPRequest(
        connection.token_url(instance),
        method="GET",
        headers={"Authorization": f"token {connection.api_token}", "Accept": "application/json"},
        connect_timeout=timeout,
        request_timeout=timeout,
        follow_redirects=False,
        ca_certs=connection.ca_certs,
        client_cert=connection.client_cert,
        client_key=connection.client_key,
    )
    http = client or AsyncHTTPClient()
    try:
        response = await http.fetch(request, raise_error=False)
    except OSError as error:  # raised before a request exists (e.g. an unreadable cert file)
        return Outcome("retry", reason="unreachable", message=str(error), status=599)
    body = response.body or b""
    if response.code == 599:
        body = str(response.error or "no answer").encode()
    return interpret_answer(response.code, response.headers, body, instance, now=now)
