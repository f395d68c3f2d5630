"""An async Manila (Shared File Systems v2) client: just enough for per-user CephFS homes.

The client can find, create and show shares, list export locations, list and add cephx
access rules, and wait for shares and rules to settle. It has no way to delete anything:
there is no DELETE request and no ``deny_access`` action in this module, by design.

Retries: reads and polls are retried with bounded exponential backoff on network errors,
timeouts, 5xx and 429 (honouring ``Retry-After`` up to the cap). Creating a share and
adding an access rule are *not* blindly retried: after a failure whose outcome is unknown
(timeout, dropped connection, 5xx) the client looks for what the lost request may have
created before sending it again, so a lost response never makes a second share or rule.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import httpx

from .errors import (
    StorageError,
    StorageStateError,
    StorageUnavailableError,
    StorageVersionError,
)
from .keystone import KeystoneSession
from .manila_http import (
    RETRY_STATUS,
    TransientError,
    error_for,
    fault_message,
    json_body,
    request_id,
    with_retries,
)
from .manila_models import AccessRule, RetryPolicy, Share, share_available

__all__ = [
    "DEFAULT_RETRY",
    "MAX_MICROVERSION",
    "MIN_MICROVERSION",
    "AccessRule",
    "ManilaClient",
    "RetryPolicy",
    "Share",
    "share_available",
]

_log = logging.getLogger(__name__)

#: 2.45 is the first microversion with ``GET /share-access-rules?share_id=`` (from 2.45 the
#: older ``access_list`` share action is gone), and it includes everything else we use:
#: ``access_key`` (2.21), rule ``state`` (2.28), the export-locations API with ``preferred``
#: (2.9/2.14). Manila in OpenStack Rocky (2018) already has it.
MIN_MICROVERSION = "2.45"
#: The newest behaviour we rely on. Kept below 2.82, where ``access_key`` may be redacted
#: from rules that carry a visibility lock, so the cephx secret is always readable.
MAX_MICROVERSION = "2.81"

VERSION_HEADER = "X-OpenStack-Manila-API-Version"
_T = TypeVar("_T")
DEFAULT_RETRY = RetryPolicy()


def _version_tuple(version: str) -> tuple[int, int]:
    major, _, minor = version.partition(".")
    return int(major), int(minor or 0)


class ManilaClient:
    """Manila v2 operations on one project, through a :class:`KeystoneSession`."""

    def __init__(
        self,
        session: KeystoneSession,
        *,
        retry: RetryPolicy = DEFAULT_RETRY,
        log: logging.Logger | None = None,
    ) -> None:
        self.session = session
        self.retry = retry
        self.log = log or _log
        self._version: str | None = None
        self._version_lock = asyncio.Lock()

    # -------------------------------------------------------------- plumbing

    async def _send_once(
        self, method: str, url: str, *, params: Mapping[str, str] | None, body: Any
    ) -> httpx.Response:
        """One request; transient failures raise :class:`TransientError`."""
        path = urlsplit(url).path
        headers = {VERSION_HEADER: self._version} if self._version else {}
        try:
            response = await self.session.request(
                method, url, params=params, json=body, headers=headers
            )
        except httpx.HTTPError as exc:
            raise TransientError(f"{method} {path}: {type(exc).__name__}: {exc}") from exc
        except StorageUnavailableError as exc:
            if exc.retryable:
                raise TransientError(str(exc)) from exc
            raise
        self.log.debug(
            "Manila %s %s -> %s (request id %s)",
            method,
            path,
            response.status_code,
            request_id(response),
        )
        if response.status_code in RETRY_STATUS:
            raise TransientError(
                f"{method} {path}: {response.status_code} (request id {request_id(response)}): "
                f"{fault_message(response)}",
                retry_after=response.headers.get("retry-after"),
            )
        return response

    async def _retrying(self, what: str, attempt_fn: Callable[[], Awaitable[_T]]) -> _T:
        return await with_retries(what, attempt_fn, self.retry, self.log)

    def _error(self, method: str, url: str, response: httpx.Response) -> StorageError:
        return error_for(method, url, response, self.log)

    async def _get(self, url: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        """GET with retries; JSON object body or a :class:`StorageError`."""
        path = urlsplit(url).path

        async def attempt() -> httpx.Response:
            return await self._send_once("GET", url, params=params, body=None)

        response = await self._retrying(f"GET {path}", attempt)
        if response.status_code not in (200, 300):
            raise self._error("GET", url, response)
        return self._json(response, "GET", url)

    def _json(self, response: httpx.Response, method: str, url: str) -> dict[str, Any]:
        return json_body(response, method, url)

    async def _endpoint(self) -> str:
        """The catalog endpoint; transient Keystone failures are retried like reads."""

        async def attempt() -> str:
            try:
                return await self.session.endpoint()
            except StorageUnavailableError as exc:
                if exc.retryable:
                    raise TransientError(str(exc)) from exc
                raise

        return await self._retrying("Keystone authentication", attempt)

    async def _url(self, suffix: str) -> str:
        await self.negotiate()
        return f"{await self._endpoint()}{suffix}"

    # ---------------------------------------------------------- versions

    async def negotiate(self) -> str:
        """Pick the microversion: the lower of the server's maximum and ours (cached)."""
        async with self._version_lock:
            if self._version is not None:
                return self._version
            endpoint = await self._endpoint()
            parts = urlsplit(endpoint)
            root_path = re.sub(r"/v2(?:\.\d+)?(?:/[^/]*)?/?$", "", parts.path) + "/"
            root = urlunsplit((parts.scheme, parts.netloc, root_path, "", ""))
            body = await self._get(root)
            versions = body.get("versions") or []
            current = [
                v
                for v in versions
                if isinstance(v, dict) and str(v.get("id", "")).startswith("v2")
            ]
            if not current or not current[0].get("version"):
                raise StorageVersionError(
                    f"Manila at {root} lists no v2 API with microversions: {versions!r:.300}"
                )
            server_max = str(current[0]["version"])
            if _version_tuple(server_max) < _version_tuple(MIN_MICROVERSION):
                raise StorageVersionError(
                    f"Manila at {root} supports microversions up to {server_max}, but this hub "
                    f"needs at least {MIN_MICROVERSION} (access-rule listing by share)"
                )
            chosen = min(server_max, MAX_MICROVERSION, key=_version_tuple)
            self.log.info(
                "Manila at %s: server max microversion %s, using %s", root, server_max, chosen
            )
            self._version = chosen
            return chosen

    # ------------------------------------------------------------ shares

    async def find_shares(self, metadata: Mapping[str, str]) -> list[Share]:
        """Shares whose metadata contains all of ``metadata`` (server- and client-side)."""
        url = await self._url("/shares/detail")
        body = await self._get(url, {"metadata": json.dumps(dict(metadata), sort_keys=True)})
        shares = [Share.from_api(item) for item in body.get("shares") or []]
        return [s for s in shares if all(s.metadata.get(k) == v for k, v in metadata.items())]

    async def get_share(self, share_id: str) -> Share:
        """Show one share (:class:`StorageNotFoundError` if it does not exist)."""
        url = await self._url(f"/shares/{share_id}")
        return Share.from_api((await self._get(url))["share"])

    async def create_share(
        self,
        *,
        name: str,
        size_gb: int,
        share_type: str | None,
        share_network_id: str | None,
        availability_zone: str | None,
        metadata: Mapping[str, str],
    ) -> Share:
        """Create a CephFS share; after an unknown outcome, re-find by ``metadata`` first.

        ``metadata`` must identify the share uniquely: it is how a lost response is
        recognised (the share then exists and is returned instead of creating another).
        One race remains: a request that times out on the client but reaches Manila
        only after the re-find; :func:`~iris_jupyterhub.storage.shares.ensure_share`
        then finds two shares later, uses the oldest and logs both (never deletes).
        """
        url = await self._url("/shares")
        share: dict[str, Any] = {
            "share_proto": "CEPHFS",
            "size": size_gb,
            "name": name,
            "metadata": dict(metadata),
        }
        if share_type:
            share["share_type"] = share_type
        if share_network_id:
            share["share_network_id"] = share_network_id
        if availability_zone:
            share["availability_zone"] = availability_zone
        first = True

        async def attempt() -> Share:
            nonlocal first
            if not first:
                found = await self.find_shares(metadata)
                if found:
                    self.log.info("Manila: share %s was created by a lost request", found[0].id)
                    return sorted(found, key=lambda s: (s.created_at, s.id))[0]
            first = False
            response = await self._send_once("POST", url, params=None, body={"share": share})
            if response.status_code not in (200, 201, 202):
                raise self._error("POST", url, response)
            return Share.from_api(self._json(response, "POST", url)["share"])

        return await self._retrying(f"POST {urlsplit(url).path}", attempt)

    async def _poll(
        self, what: str, fetch: Callable[[], Awaitable[_T]], done: Callable[[_T], bool]
    ) -> _T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.retry.wait_timeout
        interval = self.retry.poll_interval
        while True:
            item = await fetch()
            if done(item):
                return item
            if loop.time() + interval > deadline:
                raise StorageUnavailableError(
                    f"Manila: {what} did not settle within {self.retry.wait_timeout:g} s "
                    f"(last seen: {item!r})",
                    retryable=True,
                )
            await asyncio.sleep(interval)
            interval = min(interval * 1.5, self.retry.max_poll_interval)

    async def wait_share_available(self, share_id: str) -> Share:
        """Poll until the share is ``available``; ``error*`` raises :class:`StorageStateError`."""

        return await self._poll(
            f"share {share_id}", lambda: self.get_share(share_id), share_available
        )

    async def export_locations(self, share_id: str) -> list[dict[str, Any]]:
        """The share's export locations (``path``, ``preferred``, maybe ``is_admin_only``)."""
        url = await self._url(f"/shares/{share_id}/export_locations")
        return [dict(x) for x in (await self._get(url)).get("export_locations") or []]

    # ------------------------------------------------------ access rules

    async def access_rules(self, share_id: str) -> list[AccessRule]:
        """All access rules of a share (``GET /share-access-rules?share_id=``, 2.45+)."""
        url = await self._url("/share-access-rules")
        body = await self._get(url, {"share_id": share_id})
        return [AccessRule.from_api(item) for item in body.get("access_list") or []]

    async def get_access_rule(self, rule_id: str) -> AccessRule:
        """Show one access rule."""
        url = await self._url(f"/share-access-rules/{rule_id}")
        return AccessRule.from_api((await self._get(url))["access"])

    async def allow_access(
        self, share_id: str, access_to: str, access_level: str = "rw"
    ) -> AccessRule:
        """Add a cephx rule for ``access_to``; after an unknown outcome, re-list rules first."""
        url = await self._url(f"/shares/{share_id}/action")
        body = {
            "allow_access": {
                "access_type": "cephx",
                "access_to": access_to,
                "access_level": access_level,
            }
        }
        first = True

        async def existing() -> AccessRule | None:
            for rule in await self.access_rules(share_id):
                if rule.access_type == "cephx" and rule.access_to == access_to:
                    return rule
            return None

        async def attempt() -> AccessRule:
            nonlocal first
            if not first:
                found = await existing()
                if found is not None:
                    self.log.info("Manila: access rule %s was added by a lost request", found.id)
                    return found
            first = False
            response = await self._send_once("POST", url, params=None, body=body)
            if response.status_code not in (200, 201, 202):
                error = self._error("POST", url, response)
                if response.status_code == 400 and "exists" in str(error):
                    found = await existing()  # added concurrently by someone else
                    if found is not None:
                        return found
                raise error
            return AccessRule.from_api(self._json(response, "POST", url)["access"])

        return await self._retrying(f"POST {urlsplit(url).path} allow_access", attempt)

    async def wait_rule_active(self, share_id: str, rule_id: str) -> AccessRule:
        """Poll until the rule is ``active`` with its key; ``error`` raises at once."""

        def done(rule: AccessRule) -> bool:
            if rule.state in ("error", "queued_to_deny", "denying"):
                raise StorageStateError(
                    f"Manila access rule {rule.id} (cephx {rule.access_to}) on share {share_id} "
                    f"is in state {rule.state!r}; an administrator must look at it"
                )
            return rule.state == "active" and rule.access_key is not None

        return await self._poll(
            f"access rule {rule_id} on share {share_id}",
            lambda: self.get_access_rule(rule_id),
            done,
        )
