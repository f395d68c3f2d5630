"""``rucio_token`` of the authenticator against a provider on 127.0.0.1 that misbehaves.

The provider here is a real HTTP server with a discovery document and a token endpoint
whose answer each test chooses; the user is the in-memory part of a hub user that
``rucio_token`` uses (``name``, ``get_auth_state``, ``save_auth_state``).
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from tornado import httpserver, netutil, web
from tornado.httpclient import HTTPClientError
from traitlets.config import Config

from iris_jupyterhub.auth import IAMAuthenticator
from iris_jupyterhub.rucio.tokens import RucioTokenError

REFRESH_TOKEN = "old-refresh-token-never-logged"
ROTATED = "rotated-refresh-token-never-logged"
INSTANCES = [{"name": "ral", "rucio_host": "https://rucio.example.ac.uk", "groups": ["iris"]}]


class _Provider(web.RequestHandler):
    answer: tuple[int, dict[str, Any]] = (200, {})

    def get(self) -> None:  # the discovery document
        base = f"http://{self.request.host}"
        self.write(
            {
                "issuer": base + "/",
                "authorization_endpoint": base + "/authorize",
                "token_endpoint": base + "/token",
                "userinfo_endpoint": base + "/userinfo",
                "jwks_uri": base + "/jwks",
            }
        )

    def post(self) -> None:  # the token endpoint
        status, body = type(self).answer
        self.set_status(status)
        self.write(json.dumps(body))


class _User:
    name = "ada"

    def __init__(self) -> None:
        self.state: dict[str, Any] = {
            "refresh_token": REFRESH_TOKEN,
            "groups": ["iris"],
            "memberships": [{"group": "iris", "role": None}],
        }

    async def get_auth_state(self) -> dict[str, Any]:
        return json.loads(json.dumps(self.state))  # type: ignore[no-any-return]

    async def save_auth_state(self, state: dict[str, Any]) -> None:
        self.state = json.loads(json.dumps(state))


@pytest.fixture
async def authenticator(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[IAMAuthenticator]:
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "0" * 64)
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    server = httpserver.HTTPServer(web.Application([(r"/.*", _Provider)]))
    server.add_sockets(sockets)
    config = Config()
    config.RucioTokens.instances = INSTANCES
    auth = IAMAuthenticator(
        config=config,
        issuer=f"http://127.0.0.1:{port}/",
        client_id="hub",
        client_secret="s",
        http_timeout=5.0,
    )
    auth.log = logging.getLogger("test.rucio.token_requests")
    yield auth
    server.stop()


async def test_an_answer_without_access_token_is_never_logged(
    authenticator: IAMAuthenticator, caplog: pytest.LogCaptureFixture
) -> None:
    _Provider.answer = (200, {"refresh_token": ROTATED, "token_type": "Bearer"})
    user = _User()
    with caplog.at_level(logging.INFO), pytest.raises(RucioTokenError) as raised:
        await authenticator.rucio_token(user, "ral")
    assert raised.value.reason == "idp_unavailable"
    assert caplog.records, "the refusal is logged"
    assert ROTATED not in caplog.text
    assert REFRESH_TOKEN not in caplog.text
    assert "HTTP 500" in caplog.text


async def test_a_raw_provider_outage_is_idp_unavailable_for_30_seconds(
    authenticator: IAMAuthenticator, caplog: pytest.LogCaptureFixture
) -> None:
    """A 5xx or 599 reaching ``rucio_token`` as a client error (a ``get_token_info`` that
    does not turn outages into a 503) is an outage, not a configuration problem."""
    for code in (502, 599):

        async def fail(handler: Any, params: dict[str, str], code: int = code) -> Any:
            raise HTTPClientError(code)

        authenticator.get_token_info = fail  # type: ignore[method-assign]
        with pytest.raises(RucioTokenError) as raised:
            await authenticator.rucio_token(_User(), "ral")
        assert raised.value.reason == "idp_unavailable"
        assert raised.value.headers == {"Retry-After": "30"}
    assert "check that the hub's client may ask for audience" not in caplog.text
