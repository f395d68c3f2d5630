"""Plain data of the Manila client: shares, access rules, retry bounds.

Re-exported by :mod:`iris_jupyterhub.storage.manila`; kept apart so that the client
module stays small.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import StorageStateError

__all__ = ["AccessRule", "RetryPolicy", "Share", "share_available"]


@dataclass(frozen=True)
class Share:
    """The fields of a Manila share this library uses."""

    id: str
    name: str
    status: str
    size: int
    share_proto: str
    metadata: dict[str, str]
    created_at: str
    availability_zone: str | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Share:
        """Build from a ``share`` object of the API; :class:`ValueError` if malformed."""
        try:
            return cls(
                id=str(data["id"]),
                name=str(data.get("name") or ""),
                status=str(data["status"]),
                size=int(data.get("size") or 0),
                share_proto=str(data.get("share_proto") or ""),
                metadata={str(k): str(v) for k, v in (data.get("metadata") or {}).items()},
                created_at=str(data.get("created_at") or ""),
                availability_zone=data.get("availability_zone"),
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"malformed share object: {exc!r}") from exc


@dataclass(frozen=True)
class AccessRule:
    """A share access rule; ``access_key`` is the cephx secret once the rule is active."""

    id: str
    access_type: str
    access_to: str
    access_level: str
    state: str
    access_key: str | None

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> AccessRule:
        """Build from an ``access`` object of the API; :class:`ValueError` if malformed."""
        try:
            return cls(
                id=str(data["id"]),
                access_type=str(data["access_type"]),
                access_to=str(data["access_to"]),
                access_level=str(data["access_level"]),
                state=str(data.get("state") or ""),
                access_key=data.get("access_key") or None,
            )
        except (KeyError, TypeError) as exc:
            raise ValueError(f"malformed access rule object: {exc!r}") from exc


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of retries and polling (seconds).

    ``attempts`` tries per request (reads: transient failures; writes: after checking that
    nothing was created); sleeps grow from ``backoff`` doubling up to ``max_backoff``.
    Polls start at ``poll_interval`` and grow by half up to ``max_poll_interval``; a share
    or rule that has not settled after ``wait_timeout`` is reported as unavailable.
    """

    attempts: int = 4
    backoff: float = 0.5
    max_backoff: float = 8.0
    poll_interval: float = 1.0
    max_poll_interval: float = 10.0
    wait_timeout: float = 300.0

    def delay(self, attempt: int, retry_after: str | None = None) -> float:
        """Sleep before try ``attempt + 1``; numeric ``Retry-After`` is honoured up to the cap."""
        delay = min(self.backoff * 2.0 ** (attempt - 1), self.max_backoff)
        if retry_after:
            with contextlib.suppress(ValueError):
                delay = min(max(float(retry_after), 0.0), self.max_backoff)
        return delay


def share_available(share: Share) -> bool:
    """Whether ``share`` is ``available``; raise :class:`StorageStateError` if it never will be.

    ``error*`` statuses and deletion mean an administrator must look at the share (the
    library never deletes or replaces it); anything else (``creating``...) is transient.
    """
    if share.status.startswith("error"):
        raise StorageStateError(
            f"Manila share {share.id} ({share.name}) is in status {share.status!r}; "
            "an administrator must look at it (it is never deleted automatically)"
        )
    if share.status in ("deleting", "deleted", "soft_deleting", "inactive"):
        raise StorageStateError(
            f"Manila share {share.id} ({share.name}) is in status {share.status!r}"
        )
    return share.status == "available"
