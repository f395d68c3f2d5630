"""A small Keystone v3 session: token, service catalog, authenticated requests.

Only what the Manila client needs: authenticate with an application credential (or
username/password scoped to a project), cache the token until shortly before it
expires, find the Manila endpoint in the catalog, and send requests with
``X-Auth-Token``. A 401 from a service makes the session re-authenticate once and retry
once; a second 401 means the credentials are not accepted any more.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import time
from collections.abc import Mapping, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import urlsplit

import httpx

from .errors import StorageConfigError, StorageUnavailableError

__all__ = ["KeystoneSession"]

_log = logging.getLogger(__name__)

#: Renew a token this long before it expires (at most; a tenth of short lifetimes).
_RENEW_MARGIN = 60.0


def _parse_time(value: str) -> float:
    """Keystone ``expires_at`` (``2026-11-25T22:00:00.000000Z``) as a POSIX timestamp."""
    parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=timezone.utc)
    return parsed.timestamp()


class KeystoneSession:
    """Authenticate against Keystone v3 and send authenticated requests to a service.

    Give either ``application_credential_id`` + ``application_credential_secret``
    (recommended; the credential fixes the project) or ``username`` + ``password`` +
    ``project_name``. ``verify`` is passed to httpx (a CA bundle path, an
    :class:`ssl.SSLContext` or a bool).
    """

    def __init__(
        self,
        auth_url: str,
        *,
        application_credential_id: str = "",
        application_credential_secret: str = "",
        username: str = "",
        password: str = "",
        user_domain_name: str = "Default",
        project_name: str = "",
        project_domain_name: str = "Default",
        region_name: str = "",
        interface: str = "public",
        service_types: Sequence[str] = ("sharev2", "shared-file-system"),
        timeout: float = 30.0,
        log: logging.Logger | None = None,
        verify: ssl.SSLContext | str | bool = True,
    ) -> None:
        if application_credential_id:
            if not application_credential_secret:
                raise ValueError("application_credential_secret is required with its id")
        elif not (username and password and project_name):
            raise ValueError(
                "Keystone needs application_credential_id/secret or username/password/project_name"
            )
        base = auth_url.rstrip("/")
        self.auth_url = base if base.endswith("/v3") else f"{base}/v3"
        self._app_cred = (application_credential_id, application_credential_secret)
        self._password = (username, password, user_domain_name, project_name, project_domain_name)
        self.region_name = region_name
        self.interface = interface
        self.service_types = tuple(service_types)
        self.log = log or _log
        self._client = httpx.AsyncClient(timeout=timeout, verify=verify)
        self._token: str | None = None
        self._renew_at = 0.0
        self._catalog: list[dict[str, Any]] = []
        self._project_id: str | None = None
        self._lock = asyncio.Lock()

    # ------------------------------------------------------------------ auth

    def _auth_body(self) -> dict[str, Any]:
        cred_id, secret = self._app_cred
        if cred_id:
            identity: dict[str, Any] = {
                "methods": ["application_credential"],
                "application_credential": {"id": cred_id, "secret": secret},
            }
            return {"auth": {"identity": identity}}
        username, password, user_domain, project, project_domain = self._password
        identity = {
            "methods": ["password"],
            "password": {
                "user": {"name": username, "domain": {"name": user_domain}, "password": password}
            },
        }
        scope = {"project": {"name": project, "domain": {"name": project_domain}}}
        return {"auth": {"identity": identity, "scope": scope}}

    async def _authenticate(self) -> None:
        url = f"{self.auth_url}/auth/tokens"
        path = urlsplit(url).path
        self.log.debug("Keystone: POST %s", path)
        try:
            response = await self._client.post(url, json=self._auth_body())
        except httpx.HTTPError as exc:
            raise StorageUnavailableError(
                f"Keystone POST {path} failed: {type(exc).__name__}: {exc}", retryable=True
            ) from exc
        request_id = response.headers.get("x-openstack-request-id", "-")
        if response.status_code in (401, 403):
            raise StorageUnavailableError(
                f"Keystone POST {path}: {response.status_code}: credentials rejected "
                f"(request id {request_id}): {response.text[:300]}"
            )
        if response.status_code >= 500:
            raise StorageUnavailableError(
                f"Keystone POST {path}: {response.status_code} (request id {request_id})",
                retryable=True,
            )
        token = response.headers.get("x-subject-token")
        if response.status_code != 201 or not token:
            raise StorageUnavailableError(
                f"Keystone POST {path}: unexpected {response.status_code} without a token "
                f"(request id {request_id}): {response.text[:300]}"
            )
        try:
            body = response.json()["token"]
            expires = _parse_time(body["expires_at"])
            catalog = list(body.get("catalog") or [])
            project_id = (body.get("project") or {}).get("id")
        except (ValueError, KeyError, TypeError) as exc:
            raise StorageUnavailableError(
                f"Keystone POST {path}: malformed token response: {exc}"
            ) from exc
        now = time.time()
        lifetime = max(expires - now, 0.0)
        self._token = token
        self._renew_at = time.monotonic() + lifetime - min(_RENEW_MARGIN, lifetime / 10)
        self._catalog = catalog
        self._project_id = project_id
        self.log.debug("Keystone: new token valid for %.0f s", lifetime)

    async def token(self) -> str:
        """A valid token, cached until shortly before its ``expires_at``."""
        async with self._lock:
            if self._token is None or time.monotonic() >= self._renew_at:
                try:
                    await self._authenticate()
                except StorageUnavailableError as exc:
                    self.log.warning(
                        "Keystone authentication at %s failed: %s", self.auth_url, exc
                    )
                    raise
            assert self._token is not None  # noqa: S101  (set by _authenticate)
            return self._token

    def invalidate(self) -> None:
        """Forget the cached token; the next request authenticates again."""
        self._token = None
        self._renew_at = 0.0

    @property
    def project_id(self) -> str | None:
        """The project id of the current token (``None`` before the first token)."""
        return self._project_id

    # --------------------------------------------------------------- catalog

    def _find_endpoint(self, catalog: Sequence[Mapping[str, Any]]) -> str | None:
        for service_type in self.service_types:
            for service in catalog:
                if service.get("type") != service_type:
                    continue
                for endpoint in service.get("endpoints") or []:
                    if endpoint.get("interface") != self.interface:
                        continue
                    regions = {endpoint.get("region"), endpoint.get("region_id")}
                    if self.region_name and self.region_name not in regions:
                        continue
                    url = endpoint.get("url")
                    if isinstance(url, str) and url:
                        return url.rstrip("/")
        return None

    def _describe_catalog(self) -> str:
        entries = []
        for service in self._catalog:
            where = sorted(
                f"{e.get('interface')}@{e.get('region_id') or e.get('region')}"
                for e in service.get("endpoints") or []
            )
            entries.append(f"{service.get('type')} ({', '.join(where) or 'no endpoints'})")
        return "; ".join(entries) or "empty catalog"

    async def endpoint(self) -> str:
        """The Manila endpoint URL (normally ending in ``/v2/<project_id>``)."""
        await self.token()
        url = self._find_endpoint(self._catalog)
        if url is None:
            region = f"region {self.region_name!r}" if self.region_name else "any region"
            raise StorageConfigError(
                f"the Keystone catalog has no {' or '.join(self.service_types)} endpoint with "
                f"interface {self.interface!r} in {region}; it has: {self._describe_catalog()}"
            )
        return url

    # -------------------------------------------------------------- requests

    async def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        """Send ``method url`` with ``X-Auth-Token``; on 401 re-authenticate once and retry.

        Network errors propagate as :class:`httpx.HTTPError` (the caller decides whether
        a retry is safe); a second 401 raises :class:`StorageUnavailableError`.
        """
        headers = dict(kwargs.pop("headers", None) or {})
        for attempt in (1, 2):
            token = headers["X-Auth-Token"] = await self.token()
            response = await self._client.request(method, url, headers=headers, **kwargs)
            if response.status_code != 401:
                return response
            await response.aread()
            if self._token == token:  # not yet renewed by a concurrent request
                self.invalidate()
            if attempt == 1:
                self.log.info(
                    "Keystone token rejected by %s %s; authenticating again",
                    method,
                    urlsplit(url).path,
                )
        raise StorageUnavailableError(
            f"{method} {urlsplit(url).path}: 401 twice: the service rejected a fresh token, so "
            "the OpenStack credentials are rejected (revoked application credential or missing "
            f"role?): {response.text[:300]}"
        )

    async def aclose(self) -> None:
        """Close the HTTP connection pool."""
        await self._client.aclose()
