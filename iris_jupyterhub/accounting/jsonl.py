"""JSON lines: one object per session, every field, for scripts and other tools.

Each line is a JSON object with the keys of :data:`KEYS` in that order (the fields of
:class:`~iris_jupyterhub.accounting.records.SessionRecord` plus ``vo``, ``fqan`` and
``duration_seconds``); times are ISO 8601 UTC with a ``Z`` and whole seconds (``null`` for
an open session's end), ``choices`` is an object with sorted keys, ``duration_seconds`` is
null while the session is open. The output is ASCII (non-ASCII escaped), so no value can
break a line. Every session overlapping the export range is written, open ones included.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from .records import SessionRecord, epoch, fqan, utc, vo_of

__all__ = ["KEYS", "json_line", "json_lines"]

KEYS = (
    "record_id", "job_id", "identity_key", "hub_user", "server_name", "posix_user", "uid",
    "gid", "group", "canonical_group", "vo", "fqan", "profile", "choices", "image",
    "cpu_request", "cpu_limit", "memory_request", "memory_limit", "gpus", "node",
    "namespace", "pod", "start", "end", "duration_seconds", "end_reason", "last_seen",
)  # fmt: skip
"""Keys of every JSON object, in output order."""


def _time(value: datetime | None) -> str | None:
    if value is None:
        return None
    return utc(value).isoformat()[:19] + "Z"


def json_object(record: SessionRecord) -> dict[str, Any]:
    """The JSON object of one session, keys in :data:`KEYS` order."""
    end = None if record.end is None else max(record.end, record.start)
    return {  # in KEYS order
        "record_id": record.record_id,
        "job_id": record.job_id,
        "identity_key": record.identity_key,
        "hub_user": record.hub_user,
        "server_name": record.server_name,
        "posix_user": record.posix_user,
        "uid": record.uid,
        "gid": record.gid,
        "group": record.group,
        "canonical_group": record.canonical_group,
        "vo": vo_of(record.canonical_group),
        "fqan": fqan(record.canonical_group) or None,
        "profile": record.profile,
        "choices": dict(sorted(record.choices.items())),
        "image": record.image,
        "cpu_request": record.cpu_request,
        "cpu_limit": record.cpu_limit,
        "memory_request": record.memory_request,
        "memory_limit": record.memory_limit,
        "gpus": record.gpus,
        "node": record.node,
        "namespace": record.namespace,
        "pod": record.pod,
        "start": _time(record.start),
        "end": _time(end),
        "duration_seconds": None if end is None else epoch(end) - epoch(record.start),
        "end_reason": record.end_reason,
        "last_seen": _time(record.last_seen),
    }


def json_line(record: SessionRecord) -> str:
    """One line (with ``\\n``)."""
    return json.dumps(json_object(record), ensure_ascii=True, separators=(",", ":")) + "\n"


def json_lines(records: Iterable[SessionRecord]) -> Iterator[str]:
    """One line per session, in input order."""
    for record in records:
        yield json_line(record)
