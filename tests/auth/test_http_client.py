"""The authenticator's HTTP client under a login burst (many logins at once)."""

from __future__ import annotations

import asyncio

import pytest
from tornado import httpserver, netutil, web

from iris_jupyterhub.auth import IAMAuthenticator


class _SlowProvider(web.RequestHandler):
    """Answers every GET after half a second, as a busy but healthy provider would."""

    async def get(self) -> None:
        await asyncio.sleep(0.5)
        self.write({"ok": True})


@pytest.fixture(autouse=True)
def _crypt_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JUPYTERHUB_CRYPT_KEY", "0" * 64)


async def test_a_login_burst_is_not_queued_into_provider_timeouts() -> None:
    """60 provider requests at once (a workshop's logins: token and userinfo calls), each
    answered in 0.5 s, all within ``http_timeout``: none may fail because it waited in the
    client's queue (tornado's default of 10 requests at a time made the last ones time out
    "in request queue", and their users read that the provider was not responding)."""
    sockets = netutil.bind_sockets(0, "127.0.0.1")
    port = sockets[0].getsockname()[1]
    server = httpserver.HTTPServer(web.Application([(r"/.*", _SlowProvider)]))
    server.add_sockets(sockets)
    auth = IAMAuthenticator(
        issuer=f"http://127.0.0.1:{port}/", client_id="hub", client_secret="s", http_timeout=2.0
    )
    try:
        results = await asyncio.gather(
            *(auth.httpfetch(f"http://127.0.0.1:{port}/token") for _ in range(60)),
            return_exceptions=True,
        )
    finally:
        server.stop()
    failed = [r for r in results if isinstance(r, BaseException)]
    assert failed == [], f"{len(failed)} of 60 failed, e.g. {failed[0]!r}"
    assert all(r == {"ok": True} for r in results)


def test_http_max_clients_is_validated() -> None:
    with pytest.raises(ValueError, match=r"IAMAuthenticator\.http_max_clients"):
        IAMAuthenticator(
            issuer="https://iam.example/", client_id="hub", client_secret="s", http_max_clients=0
        )
