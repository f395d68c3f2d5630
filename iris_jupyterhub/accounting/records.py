"""One notebook session as an accounting record, and the pure helpers around it.

A :class:`SessionRecord` is written when a server starts (``end`` unset), touched by
heartbeats while it runs and closed once when it stops. Every export format
(:mod:`~iris_jupyterhub.accounting.xdmod`, :mod:`~iris_jupyterhub.accounting.apel`,
:mod:`~iris_jupyterhub.accounting.jsonl`) is a pure function of these records.

Time rules
----------
* All times are timezone-aware UTC; naive datetimes are refused (:func:`utc`).
* Exports work in whole seconds: a time is truncated to the second (:func:`epoch`) and a
  duration is the difference of the truncated times, so that printed start + printed
  duration = printed end.
* The first close wins and an end before the start is clamped to the start (clocks of hub
  replicas may differ a little; a negative duration would break every consumer).

End reasons
-----------
The closed set :data:`END_REASONS`:

``stopped``
    stopped through JupyterHub (the user, an admin, the idle culler, hub shutdown with
    ``cleanup_servers``);
``poll``
    found dead by JupyterHub's poll (the notebook process or pod ended by itself);
``vanished``
    the pod was gone when the hub came back after being down; the end time is the last
    heartbeat, so the session is not charged for the hub's downtime;
``failed``
    the server was recorded as started but its start then failed.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from functools import lru_cache

from ..groups import GroupMembership, membership_from_string

__all__ = [
    "END_REASONS",
    "SessionRecord",
    "allocated_cpus",
    "allocated_memory",
    "epoch",
    "fqan",
    "month_start",
    "months_between",
    "next_month",
    "utc",
    "vo_of",
]

END_REASONS = ("stopped", "poll", "vanished", "failed")
"""Why a session ended (see the module documentation)."""


def utc(value: datetime) -> datetime:
    """``value`` in UTC; a naive datetime is an error (its zone would be a guess)."""
    if value.tzinfo is timezone.utc:
        return value
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"naive datetime {value.isoformat()}: accounting times must be UTC")
    return value.astimezone(timezone.utc)


def epoch(value: datetime) -> int:
    """Unix time of ``value`` truncated to the whole second."""
    return math.floor(utc(value).timestamp())


@dataclass(frozen=True, kw_only=True)
class SessionRecord:
    """One notebook server session, from start to stop (``end`` None while it runs).

    Identity: ``record_id`` (uuid4 hex) is stable for the session and is the key of every
    write; ``job_id`` is a number the store assigns (needed where consumers want integer
    job ids, such as XDMoD). ``identity_key`` is ``"<issuer> <subject>"``, the federated
    identity; ``posix_user``/``uid``/``gid``/``group`` the POSIX account and group the
    server ran as; ``canonical_group`` the VO group the session is charged to, in
    canonical form (``vo/sub:role=x``): the group run as when it is a VO group, otherwise
    the group that gave the user the profile or admitted them to the hub (see
    :mod:`~iris_jupyterhub.spawner.charging`), so a session run as the personal group is
    charged to a VO too.

    Resources are what the pod was given: CPUs as cores (fractions allowed), memory in
    bytes, whole GPUs. ``node``/``namespace``/``pod`` say where it ran.
    """

    record_id: str
    identity_key: str
    hub_user: str
    server_name: str = ""
    posix_user: str | None = None
    uid: int | None = None
    gid: int | None = None
    group: str | None = None
    canonical_group: str | None = None
    profile: str | None = None
    choices: Mapping[str, str] = field(default_factory=dict)
    image: str | None = None
    cpu_request: float | None = None
    cpu_limit: float | None = None
    memory_request: int | None = None
    memory_limit: int | None = None
    gpus: int = 0
    node: str | None = None
    namespace: str | None = None
    pod: str | None = None
    start: datetime
    end: datetime | None = None
    end_reason: str | None = None
    last_seen: datetime | None = None
    job_id: int | None = None

    def __post_init__(self) -> None:
        if not self.record_id:
            raise ValueError("SessionRecord.record_id must not be empty")
        object.__setattr__(self, "start", utc(self.start))
        for name in ("end", "last_seen"):
            value = getattr(self, name)
            if value is not None:
                object.__setattr__(self, name, utc(value))
        if self.end_reason is not None and self.end_reason not in END_REASONS:
            raise ValueError(
                f"SessionRecord.end_reason must be one of {', '.join(END_REASONS)}, "
                f"got {self.end_reason!r}"
            )
        if self.gpus < 0:
            raise ValueError(f"SessionRecord.gpus must be >= 0, got {self.gpus}")

    @property
    def is_open(self) -> bool:
        """True while the session has not been closed."""
        return self.end is None


def allocated_cpus(record: SessionRecord) -> float:
    """CPUs charged: the limit, else the request, else 1 (a notebook always gets a share)."""
    for value in (record.cpu_limit, record.cpu_request):
        if value is not None and value > 0:
            return float(value)
    return 1.0


def allocated_memory(record: SessionRecord) -> int | None:
    """Memory charged in bytes: the limit, else the request, else None (unknown)."""
    for value in (record.memory_limit, record.memory_request):
        if value is not None and value > 0:
            return int(value)
    return None


@lru_cache(maxsize=4096)
def _membership(canonical_group: str) -> GroupMembership:
    """The membership a record is charged to (:mod:`iris_jupyterhub.groups` syntax)."""
    try:
        return membership_from_string(canonical_group)
    except ValueError as e:
        raise ValueError(f"not a canonical group: {e}") from None


def fqan(canonical_group: str | None) -> str:
    """The VOMS FQAN of a canonical group, as APEL reads it.

    ``"vo/sub:role=manager"`` gives ``"/vo/sub/Role=manager/Capability=NULL"``; without a
    role ``"/vo/sub/Role=NULL/Capability=NULL"``; ``None`` (no VO group to charge) gives ``""``,
    which the APEL loader stores as VO ``None``. A value that is not canonical is an error.
    """
    if canonical_group is None:
        return ""
    membership = _membership(canonical_group)
    return f"/{membership.group}/Role={membership.role or 'NULL'}/Capability=NULL"


def vo_of(canonical_group: str | None) -> str | None:
    """The VO (first component) of a canonical group: ``"vo/sub:role=x"`` gives ``"vo"``."""
    if canonical_group is None:
        return None
    return _membership(canonical_group).vo


def month_start(value: datetime) -> datetime:
    """Midnight UTC of the first day of ``value``'s month."""
    value = utc(value)
    return value.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def next_month(value: datetime) -> datetime:
    """Midnight UTC of the first day of the month after ``value``'s."""
    first = month_start(value)
    return (first + timedelta(days=32)).replace(day=1)


def months_between(first: datetime, last: datetime) -> Iterator[datetime]:
    """The first instant of every calendar month from ``first``'s to ``last``'s inclusive."""
    current = month_start(first)
    end = month_start(last)
    while current <= end:
        yield current
        current = next_month(current)
