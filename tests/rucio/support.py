"""Test parts for the notebook side of Rucio: the hub's token endpoint and a manual clock.

:class:`TokenHub` is a real tornado HTTP server implementing the hub endpoint's contract
(``GET <api>/iris/rucio/<instance>/token`` with ``Authorization: token <api token>``;
the 200 answer and the ``{status, reason, message}`` errors). A test switches what it
answers (:attr:`TokenHub.mode`), takes it off the network and back
(:meth:`TokenHub.disappear`, :meth:`TokenHub.come_back`), and reads what it handed out
(:attr:`TokenHub.issued`). Its notion of time is a callable, so it can share a
:class:`ManualClock` with the refresher under test.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

API_TOKEN = "server-api-token-for-tests"

# mode -> (HTTP status, reason, message, extra headers)
ERRORS: dict[str, tuple[int, str, str, dict[str, str]]] = {
    "login_required": (
        403,
        "login_required",
        "Your sign-in at IRIS IAM has expired or was revoked. Log out and log in again.",
        {},
    ),
    "not_in_group": (
        403,
        "not_in_group",
        "You are not in a group that may use the Rucio instance ral.",
        {},
    ),
    "unknown_instance": (404, "unknown_instance", "No Rucio instance called that.", {}),
    "not_allowed": (403, "not_allowed", "Only a user's own servers get Rucio tokens.", {}),
    "idp_unavailable": (
        503,
        "idp_unavailable",
        "IRIS IAM is not responding at the moment.",
        {"Retry-After": "30"},
    ),
}


@dataclass
class Issued:
    """One 200 answer: when, for which instance, the token and its expiry."""

    at: float
    instance: str
    token: str
    expires_at: float


@dataclass
class Request:
    """One request the hub saw: when, for which instance, and what it answered."""

    at: float
    instance: str
    status: int


@dataclass
class TokenHub:
    """The hub's Rucio token endpoint (a stand-in speaking its contract) on 127.0.0.1."""

    lifetime: float = 20.0
    now: Callable[[], float] = time.time
    instances: tuple[str, ...] = ("ral", "cam")
    mode: str = "ok"
    """``ok`` or a key of :data:`ERRORS`, or ``html404`` / ``http500`` / ``auth_failed``."""
    issued: list[Issued] = field(default_factory=list)
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    _server: HTTPServer | None = None
    request_event: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hub/api"

    def start(self) -> TokenHub:
        sockets = bind_sockets(self.port, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        app = Application([(r"/hub/api/iris/rucio/([^/]+)/token", _TokenHandler, {"hub": self})])
        self._server = HTTPServer(app)
        self._server.add_sockets(sockets)
        return self

    async def disappear(self) -> None:
        """Stop listening and drop open connections: the hub is unreachable."""
        assert self._server is not None
        self._server.stop()
        await self._server.close_all_connections()
        self._server = None

    def come_back(self) -> None:
        """Listen again on the same port."""
        self.start()

    async def stop(self) -> None:
        if self._server is not None:
            await self.disappear()

    def latest(self, instance: str) -> Issued:
        return [i for i in self.issued if i.instance == instance][-1]

    def answer(
        self, instance: str, authorization: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        now = self.now()
        if authorization != f"token {API_TOKEN}":
            return 403, {"status": 403, "message": "Action is not authorized"}, {}
        if instance not in self.instances:
            status, reason, message, headers = ERRORS["unknown_instance"]
            return status, {"status": status, "reason": reason, "message": message}, headers
        if self.mode in ERRORS:
            status, reason, message, headers = ERRORS[self.mode]
            return status, {"status": status, "reason": reason, "message": message}, headers
        if self.mode == "auth_failed":  # JupyterHub's own 403: no reason in the body
            return 403, {"status": 403, "message": "Action is not authorized"}, {}
        if self.mode == "http500":
            return 500, {"status": 500, "message": "Internal Server Error"}, {}
        parts = (secrets.token_urlsafe(n) for n in (24, 60, 32))
        token = "eyJ" + ".".join(parts)
        issued = Issued(now, instance, token, now + self.lifetime)
        self.issued.append(issued)
        body = {
            "instance": instance,
            "access_token": token,
            "expires_at": issued.expires_at,
            "account": "alice",
            "rucio_host": "https://rucio.example.ac.uk",
            "auth_host": "https://rucio-auth.example.ac.uk",
            "vo": "",
        }
        return 200, body, {}


class _TokenHandler(RequestHandler):
    def initialize(self, hub: TokenHub) -> None:
        self.hub = hub

    def get(self, instance: str) -> None:
        hub = self.hub
        if hub.mode == "html404":
            status, body, headers = 404, None, {}
        else:
            status, body, headers = hub.answer(
                instance, self.request.headers.get("Authorization", "")
            )
        hub.requests.append(Request(hub.now(), instance, status))
        hub.request_event.set()
        self.set_status(status)
        for name, value in headers.items():
            self.set_header(name, value)
        if body is None:
            self.set_header("Content-Type", "text/html")
            self.finish("<html><body>404: Not Found</body></html>")
            return
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps(body))


class ManualClock:
    """A clock that moves only when the test says so (:meth:`advance`).

    Tests drive a refresher one call at a time (``run_once``) and move this clock by the
    delay each step asked for, so a schedule of hours runs in milliseconds and no test
    depends on how fast the machine is. ``sleep`` only records what was asked.
    """

    def __init__(self, start: float = 1_800_000_000.0) -> None:
        self.now = start
        self.slept: list[float] = []

    def time(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds
        await asyncio.sleep(0)

    def advance(self, seconds: float) -> None:
        self.now += seconds
