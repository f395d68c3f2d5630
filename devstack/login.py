"""Drive a complete OIDC login through the real hub and IdP over HTTP, without a browser."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from html import unescape
from urllib.parse import parse_qs, urljoin, urlparse

import httpx

from .tls import tls

_FORM = re.compile(r"<form[^>]*action=\"([^\"]+)\"", re.IGNORECASE)


@dataclass
class LoginAttempt:
    """What happened during one login: the requests seen and the hub's final answer."""

    client: httpx.Client
    authorize_params: dict[str, str] = field(default_factory=dict)
    callback_url: str = ""
    cookies_at_callback: httpx.Cookies = field(default_factory=httpx.Cookies)
    response: httpx.Response | None = None

    @property
    def status(self) -> int:
        assert self.response is not None
        return self.response.status_code

    @property
    def text(self) -> str:
        assert self.response is not None
        return unescape(self.response.text)


def _follow(
    client: httpx.Client, response: httpx.Response, stop: Callable[[str], bool]
) -> httpx.Response | str:
    """Follow redirects until ``stop(url)`` says a location is the one we want (returned)."""
    for _ in range(20):
        if response.status_code not in (301, 302, 303, 307, 308):
            return response
        location = urljoin(str(response.url), response.headers["location"])
        if stop(location):
            return location
        response = client.get(location)
    raise AssertionError("too many redirects")


def hub_login(
    hub_url: str,
    login: str,
    password: str,
    *,
    deny: bool = False,
    before_callback: Callable[[LoginAttempt], None] | None = None,
    client: httpx.Client | None = None,
) -> LoginAttempt:
    """Log in at ``hub_url`` as ``login``; return the attempt with the callback's response.

    ``before_callback`` runs after the IdP redirected back (so the authorize request,
    including the nonce, is known) and before the hub handles the callback, which is when
    the hub exchanges the code: tests use it to queue forged ID tokens at the IdP.
    """
    client = client or httpx.Client(timeout=30, verify=tls())
    attempt = LoginAttempt(client=client)
    start = client.get(f"{hub_url}/hub/oauth_login", follow_redirects=False)
    assert start.status_code == 302, start.text
    authorize = start.headers["location"]
    attempt.authorize_params = {k: v[0] for k, v in parse_qs(urlparse(authorize).query).items()}

    def is_callback(url: str) -> bool:
        return url.startswith(hub_url) and "/oauth_callback" in url

    page = _follow(client, client.get(authorize), is_callback)
    if isinstance(page, str):  # already logged in at the IdP
        attempt.callback_url = page
    else:
        assert page.status_code == 200, page.text
        actions = _FORM.findall(page.text)
        assert actions, page.text
        if deny:
            action = next(a for a in actions if a.endswith("/abort"))
            answer = client.post(urljoin(str(page.url), unescape(action)))
        else:
            action = next(a for a in actions if not a.endswith("/abort"))
            answer = client.post(
                urljoin(str(page.url), unescape(action)),
                data={"login": login, "password": password},
            )
        result = _follow(client, answer, is_callback)
        assert isinstance(result, str), f"IdP did not redirect back: {result.text[:500]}"
        attempt.callback_url = result
    if before_callback is not None:
        before_callback(attempt)
    attempt.cookies_at_callback = httpx.Cookies(client.cookies)
    attempt.response = client.get(attempt.callback_url)
    return attempt


def replay(attempt: LoginAttempt) -> httpx.Response:
    """Send the same callback again with the cookies it first had (a replayed code/state)."""
    with httpx.Client(cookies=attempt.cookies_at_callback, timeout=30, verify=tls()) as attacker:
        return attacker.get(attempt.callback_url)
