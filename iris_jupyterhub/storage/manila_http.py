"""The HTTP side of the Manila client: transient failures, retries and error mapping.

Kept apart from :mod:`~iris_jupyterhub.storage.manila` (the Manila operations) so each
stays small. A :class:`TransientError` is an attempt worth repeating (network errors,
timeouts, 429 and 5xx); :func:`with_retries` repeats it within a
:class:`~iris_jupyterhub.storage.manila_models.RetryPolicy`; :func:`error_for` maps a
final answer to the matching :class:`~iris_jupyterhub.storage.errors.StorageError`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

import httpx

from .errors import (
    StorageConflictError,
    StorageError,
    StorageNotFoundError,
    StorageQuotaError,
    StorageUnavailableError,
)
from .manila_models import RetryPolicy

__all__ = [
    "RETRY_STATUS",
    "TransientError",
    "error_for",
    "fault_message",
    "json_body",
    "request_id",
    "with_retries",
]

_REQUEST_ID_HEADERS = ("x-compute-request-id", "x-openstack-request-id")
RETRY_STATUS = frozenset({429, 500, 502, 503, 504})
"""Answers worth trying again."""
_T = TypeVar("_T")


class TransientError(Exception):
    """An attempt failed in a way worth retrying."""

    def __init__(self, detail: str, retry_after: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.retry_after = retry_after


def request_id(response: httpx.Response) -> str:
    """The OpenStack request id of ``response`` (for the log), or ``-``."""
    for name in _REQUEST_ID_HEADERS:
        if name in response.headers:
            return response.headers[name]
    return "-"


def fault_message(response: httpx.Response) -> str:
    """Manila's message from ``{"<faultName>": {"code": .., "message": ..}}``, else the text."""
    try:
        body = response.json()
    except ValueError:
        return response.text[:300]
    if isinstance(body, dict) and len(body) == 1:
        (inner,) = body.values()
        if isinstance(inner, dict) and "message" in inner:
            return str(inner["message"])
    return response.text[:300]


async def with_retries(
    what: str,
    attempt_fn: Callable[[], Awaitable[_T]],
    retry: RetryPolicy,
    log: logging.Logger,
) -> _T:
    """Run ``attempt_fn`` up to ``retry.attempts`` times while it fails transiently.

    Raises:
        StorageUnavailableError: Retryable, after the last attempt failed transiently.
    """
    for attempt in range(1, retry.attempts + 1):
        try:
            return await attempt_fn()
        except TransientError as exc:
            if attempt == retry.attempts:
                log.warning("Manila %s failed %d times: %s", what, attempt, exc.detail)
                raise StorageUnavailableError(
                    f"Manila {what} failed after {attempt} attempts: {exc.detail}",
                    retryable=True,
                ) from exc
            delay = retry.delay(attempt, exc.retry_after)
            log.info(
                "Manila %s attempt %d failed (%s); retrying in %.1f s",
                what,
                attempt,
                exc.detail,
                delay,
            )
            await asyncio.sleep(delay)
    raise AssertionError("unreachable")  # pragma: no cover


def error_for(
    method: str, url: str, response: httpx.Response, log: logging.Logger
) -> StorageError:
    """The :class:`StorageError` for a non-success ``response`` (logged as a warning)."""
    status = response.status_code
    detail = (
        f"Manila {method} {urlsplit(url).path}: {status} (request id "
        f"{request_id(response)}): {fault_message(response)}"
    )
    log.warning("%s", detail)
    if status == 413:
        return StorageQuotaError(detail)
    if status == 404:
        return StorageNotFoundError(detail)
    if status == 409:
        return StorageConflictError(detail)
    if status >= 500 or status in (401, 403):
        return StorageUnavailableError(detail, retryable=status >= 500)
    return StorageError(detail)


def json_body(response: httpx.Response, method: str, url: str) -> dict[str, Any]:
    """The JSON object of ``response``; :class:`StorageUnavailableError` for anything else."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise StorageUnavailableError(
            f"Manila {method} {urlsplit(url).path}: {response.status_code} with a non-JSON "
            f"body (request id {request_id(response)}): {response.text[:200]}"
        )
    return body
