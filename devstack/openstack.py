"""A fake OpenStack (Keystone v3 + Manila v2) over real HTTP, for storage tests.

:class:`OpenStackServer` runs a tornado server in a background thread with its own
IOLoop on ``127.0.0.1`` and a free port. It implements token issue (application
credential and password methods) with a service catalog, and the Manila calls the
storage layer uses (see :mod:`devstack.openstack_manila`), with asynchronous share and
access-rule transitions, per-project quotas and Manila-shaped error bodies.

Fault injection (thread-safe, usable from any thread, e.g. while a hub subprocess talks
to the server): :class:`~devstack.openstack_faults.Faults` (``server.faults``), plus
``server.unreachable()`` / ``server.reachable()``. Every request is recorded
(:attr:`OpenStackServer.requests`);
:attr:`OpenStackServer.destructive_requests` counts DELETEs and ``deny_access`` actions,
which the library must never send.
"""

from __future__ import annotations

import asyncio
import json
import re
import secrets
import threading
import time
import uuid
from datetime import datetime, timezone
from typing import Any
from urllib.parse import parse_qsl

from tornado.httpserver import HTTPServer
from tornado.netutil import bind_sockets
from tornado.web import Application, RequestHandler

from devstack.openstack_faults import Faults, RecordedRequest
from devstack.openstack_manila import ManilaSettings, ManilaState, Reply, fault

__all__ = ["APP_CRED_ID", "APP_CRED_SECRET", "OpenStackServer"]

APP_CRED_ID = "hub-app-cred"
APP_CRED_SECRET = "hub-app-cred-secret"
USER, PASSWORD, PROJECT = "hub-user", "hub-password", "iris-hub"
#: Endpoint path prefixes: public@RegionOne, internal@RegionOne, public@RegionTwo.
ENDPOINTS = (
    ("", "public", "RegionOne"),
    ("/internal", "internal", "RegionOne"),
    ("/region-two", "public", "RegionTwo"),
)
_MANILA = re.compile(
    r"^(?P<prefix>/internal|/region-two)?(?:/(?P<v2>v2)(?:/(?P<project>[^/]+)(?P<rest>/.*)?)?)?/?$"
)


class _Handler(RequestHandler):
    SUPPORTED_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")

    def check_xsrf_cookie(self) -> None:
        return None

    async def _any(self) -> None:
        server: OpenStackServer = self.settings["openstack"]
        request = self.request
        method, path = request.method or "GET", request.path
        body: Any = None
        if request.body:
            try:
                body = json.loads(request.body)
            except ValueError:
                body = request.body.decode(errors="replace")
        record = RecordedRequest(
            method,
            path,
            dict(parse_qsl(request.query)),
            request.headers.get("X-OpenStack-Manila-API-Version"),
            body,
        )
        server.record(record)
        faults = server.faults.take(method, path)
        reply: Reply | None = None
        for rule in (f for f in faults if not f.after):
            await asyncio.sleep(rule.delay)
            if rule.status is not None:
                reply = fault(rule.status, "Injected fault.", **rule.headers)
                break
        if reply is None:
            with server.lock:
                reply = server.route(method, path, record.query, request.headers, body)
            for rule in (f for f in faults if f.after):
                await asyncio.sleep(rule.delay)
                if rule.status is not None:
                    reply = fault(rule.status, "Injected fault after processing.", **rule.headers)
        record.status = reply.status
        self.set_status(reply.status)
        for name, value in reply.headers.items():
            self.set_header(name, value)
        self.set_header("x-openstack-request-id", f"req-{uuid.uuid4()}")
        if reply.body is not None:
            self.set_header("Content-Type", "application/json")
            self.finish(json.dumps(reply.body))
        else:
            self.finish()

    get = post = put = patch = delete = head = _any


class OpenStackServer:
    """Keystone + Manila on one loopback port; ``start()``/``stop()``, ``url``, ``auth_url``."""

    def __init__(
        self,
        *,
        service_types: tuple[str, ...] = ("sharev2", "shared-file-system"),
        token_lifetime: float = 3600.0,
        **manila: Any,
    ) -> None:
        self.lock = threading.RLock()
        self.service_types = service_types
        self.token_lifetime = token_lifetime
        self.project_id = uuid.uuid4().hex
        self.manila = ManilaState(ManilaSettings(**manila))
        self.faults = Faults(self)
        self.tokens: dict[str, float] = {}
        self.tokens_issued = 0
        self._requests: list[RecordedRequest] = []
        self.port = 0
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._http: HTTPServer | None = None

    # -------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def auth_url(self) -> str:
        return f"{self.url}/v3"

    def manila_endpoint(self, prefix: str = "") -> str:
        return f"{self.url}{prefix}/v2/{self.project_id}"

    def start(self) -> OpenStackServer:
        sockets = bind_sockets(0, "127.0.0.1")
        self.port = sockets[0].getsockname()[1]
        ready = threading.Event()

        def run() -> None:
            loop = asyncio.new_event_loop()
            asyncio.set_event_loop(loop)
            self._loop = loop
            app = Application([(r"/.*", _Handler)], openstack=self)
            self._http = HTTPServer(app)
            self._http.add_sockets(sockets)
            loop.call_soon(ready.set)
            loop.run_forever()
            loop.close()

        self._thread = threading.Thread(target=run, name="fake-openstack", daemon=True)
        self._thread.start()
        ready.wait(10)
        return self

    def _in_loop(self, coro: Any) -> None:
        assert self._loop is not None
        asyncio.run_coroutine_threadsafe(coro, self._loop).result(10)

    def unreachable(self) -> None:
        async def close() -> None:
            assert self._http is not None
            self._http.stop()
            await self._http.close_all_connections()

        self._in_loop(close())

    def reachable(self) -> None:
        async def listen() -> None:
            app = Application([(r"/.*", _Handler)], openstack=self)
            self._http = HTTPServer(app)
            self._http.add_sockets(bind_sockets(self.port, "127.0.0.1"))

        self._in_loop(listen())

    def stop(self) -> None:
        if self._loop is None:
            return
        self.unreachable()
        self._loop.call_soon_threadsafe(self._loop.stop)
        if self._thread is not None:
            self._thread.join(10)
        self._loop = None

    def __enter__(self) -> OpenStackServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ------------------------------------------------------------- requests

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.lock:
            return list(self._requests)

    def requests_matching(
        self, method: str | None = None, path_regex: str = ""
    ) -> list[RecordedRequest]:
        pattern = re.compile(path_regex)
        return [r for r in self.requests if method in (None, r.method) and pattern.search(r.path)]

    def clear_requests(self) -> None:
        with self.lock:
            self._requests.clear()

    @property
    def destructive_requests(self) -> int:
        """DELETE requests and ``deny_access`` actions received (the library sends none)."""
        return sum(
            1
            for r in self.requests
            if r.method == "DELETE" or (isinstance(r.body, dict) and "deny_access" in r.body)
        )

    def shares(self) -> list[dict[str, Any]]:
        """Snapshot of all shares (API view), safe to call from any thread."""
        with self.lock:
            return [self.manila.share_view(s) for s in self.manila.shares.values()]

    def access_rules(self) -> list[dict[str, Any]]:
        """Snapshot of all access rules (API view, with ``share_id``), from any thread."""
        with self.lock:
            return [self.manila.rule_view(r) for r in self.manila.rules.values()]

    def set_export_locations(self, share_id: str, locations: list[dict[str, Any]]) -> None:
        """Answer ``export_locations`` of ``share_id`` with ``locations`` from now on."""
        with self.lock:
            self.manila.export_overrides[share_id] = locations

    def revoke_tokens(self) -> None:
        with self.lock:
            self.tokens.clear()

    # -------------------------------------------------------------- routing

    def route(
        self, method: str, path: str, query: dict[str, str], headers: Any, body: Any
    ) -> Reply:
        if path.rstrip("/") == "/v3/auth/tokens":
            if method != "POST":
                return fault(405, "Method not allowed.")
            return self.issue_token(body)
        match = _MANILA.match(path)
        if match is None:
            return fault(404, "The resource could not be found.")
        if match["v2"] is None or match["project"] is None:
            return self.versions(match["prefix"] or "") if method == "GET" else fault(405, "")
        token = headers.get("X-Auth-Token", "")
        expiry = self.tokens.get(token)
        if expiry is None or expiry < time.time():
            body401 = {
                "error": {
                    "code": 401,
                    "title": "Unauthorized",
                    "message": "The request you have made requires authentication.",
                }
            }
            return Reply(401, body401, {"WWW-Authenticate": f"Keystone uri='{self.auth_url}'"})
        if match["project"] != self.project_id:
            return fault(403, "Project in the URL does not match the token.")
        version, error = self.manila.check_version(headers.get("X-OpenStack-Manila-API-Version"))
        if error is not None:
            return error
        reply = self.manila.handle(
            match["project"], method, match["rest"] or "/", query, version=version, body=body
        )
        reply.headers.update(
            {"X-OpenStack-Manila-API-Version": version, "Vary": "X-OpenStack-Manila-API-Version"}
        )
        return reply

    def versions(self, prefix: str) -> Reply:
        base = f"{self.url}{prefix}"
        v1 = {
            "id": "v1.0",
            "status": "DEPRECATED",
            "version": "",
            "min_version": "",
            "links": [{"rel": "self", "href": f"{base}/v1/"}],
        }
        v2 = {
            "id": "v2.0",
            "status": "CURRENT",
            "version": self.manila.settings.max_microversion,
            "min_version": "2.0",
            "links": [{"rel": "self", "href": f"{base}/v2/"}],
        }
        return Reply(200, {"versions": [v1, v2]})

    # ------------------------------------------------------------- keystone

    def _catalog(self) -> list[dict[str, Any]]:
        entries = []
        for service_type in self.service_types:
            endpoints = [
                {
                    "id": uuid.uuid4().hex,
                    "interface": iface,
                    "region": region,
                    "region_id": region,
                    "url": self.manila_endpoint(prefix),
                }
                for prefix, iface, region in ENDPOINTS
            ]
            entries.append(
                {
                    "type": service_type,
                    "name": "manila",
                    "id": uuid.uuid4().hex,
                    "endpoints": endpoints,
                }
            )
        keystone = {
            "interface": "public",
            "region": "RegionOne",
            "region_id": "RegionOne",
            "url": self.auth_url,
            "id": uuid.uuid4().hex,
        }
        entries.append(
            {"type": "identity", "name": "keystone", "id": "k", "endpoints": [keystone]}
        )
        return entries

    def issue_token(self, body: Any) -> Reply:
        def error(status: int, title: str, message: str) -> Reply:
            return Reply(status, {"error": {"code": status, "title": title, "message": message}})

        try:
            identity = body["auth"]["identity"]
            methods = identity["methods"]
        except (KeyError, TypeError):
            return error(400, "Bad Request", "Expecting to find identity in auth.")
        ok = False
        if methods == ["application_credential"]:
            cred = identity.get("application_credential") or {}
            ok = cred.get("id") == APP_CRED_ID and cred.get("secret") == APP_CRED_SECRET
        elif methods == ["password"]:
            user = (identity.get("password") or {}).get("user") or {}
            project = ((body["auth"].get("scope") or {}).get("project")) or {}
            ok = (user.get("name"), user.get("password"), project.get("name")) == (
                USER,
                PASSWORD,
                PROJECT,
            )
        if not ok:
            return error(401, "Unauthorized", "The request you have made requires authentication.")
        token = "gAAAA" + secrets.token_urlsafe(24)
        expires = time.time() + self.token_lifetime
        self.tokens[token] = expires
        self.tokens_issued += 1

        def iso(t: float) -> str:
            return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")

        data = {
            "methods": methods,
            "expires_at": iso(expires),
            "issued_at": iso(time.time()),
            "user": {"id": "u1", "name": USER, "domain": {"id": "default", "name": "Default"}},
            "project": {
                "id": self.project_id,
                "name": PROJECT,
                "domain": {"id": "default", "name": "Default"},
            },
            "roles": [{"id": "r1", "name": "member"}],
            "catalog": self._catalog(),
        }
        return Reply(201, {"token": data}, {"X-Subject-Token": token})
