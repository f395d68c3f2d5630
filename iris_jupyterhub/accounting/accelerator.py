"""APEL accelerator (GPU) records, ``APEL-accelerator-message`` version ``0.1`` (opt-in).

Cloud records (v0.4) have no GPU field; APEL's accelerator accounting adds a separate JSON
message whose records point at a cloud record (``AssociatedRecordType: cloud``,
``AssociatedRecord``: the session's ``VMUUID``). The format comes from the APEL project's
accelerator work (``apel/common/message_schemas.py`` ``ACCELERATOR_MSG_SCHEMA`` and
``apel/db/records/accelerator.py``, commit ``c1e5bca`` of github.com/apel/apel), which is
not in an APEL release yet: the export writes these messages only when asked
(``ApelOptions.accelerators``, ``--accelerators``), so that a server without accelerator
support never receives a message it would reject.

One record per GPU session and calendar month (UTC) overlapping the export range, keyed by
``MeasurementMonth``/``MeasurementYear``: ``Count`` the GPUs, ``AvailableDuration`` the
session's wall seconds *within that month* (the server sums these per month; unlike cloud
records they are not cumulative), ``Type`` ``GPU``, ``Model`` the configured model if any.
``FQAN`` as in cloud records, ``unknown`` for a session charged to no group (the
accelerator loader refuses an empty or ``None`` FQAN). ``ActiveDuration`` (measured GPU
use) and ``Cores`` are not known and left out. A message is
``{"Type": ..., "Version": "0.1", "UsageRecords": [...]}`` with at most 1000 records.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from .apel import ApelOptions, global_user_name
from .records import SessionRecord, epoch, fqan, months_between, next_month, utc

__all__ = ["MESSAGE_TYPE", "MESSAGE_VERSION", "accelerator_messages", "accelerator_records"]

MESSAGE_TYPE = "APEL-accelerator-message"
MESSAGE_VERSION = "0.1"
NO_GROUP_FQAN = "unknown"
"""FQAN of a session charged to no group (the loader refuses an empty or ``None`` FQAN)."""
MAX_RECORDS = 1000
"""The schema's ``maxItems`` for ``UsageRecords``."""


def accelerator_records(
    record: SessionRecord,
    start: datetime,
    end: datetime,
    as_of: datetime,
    options: ApelOptions,
    *,
    model: str | None = None,
) -> Iterator[dict[str, Any]]:
    """The accelerator records of one session for the months overlapping [start, end)."""
    if record.gpus <= 0:
        return
    start, end, as_of = utc(start), utc(end), utc(as_of)
    begin = record.start
    last = max(record.end if record.end is not None else as_of, begin)
    for first in months_between(begin, last):
        following = next_month(first)
        if first < end and following > start:
            available = max(0, epoch(min(last, following)) - epoch(max(begin, first)))
            usage: dict[str, Any] = {
                "MeasurementMonth": first.month,
                "MeasurementYear": first.year,
                "AssociatedRecordType": "cloud",
                "AssociatedRecord": record.record_id,
                "GlobalUserName": global_user_name(record.identity_key),
                "FQAN": fqan(record.canonical_group) or NO_GROUP_FQAN,
                "SiteName": options.site_name,
                "Count": float(record.gpus),
                "AvailableDuration": available,
                "Type": "GPU",
            }
            if model:
                usage["Model"] = model
            yield usage


def accelerator_messages(
    records: Iterable[SessionRecord],
    start: datetime,
    end: datetime,
    as_of: datetime,
    options: ApelOptions,
    *,
    model: str | None = None,
) -> Iterator[str]:
    """JSON messages of at most ``min(options.records_per_message, 1000)`` records each."""
    size = min(options.records_per_message, MAX_RECORDS)
    batch: list[dict[str, Any]] = []
    for record in records:
        for usage in accelerator_records(record, start, end, as_of, options, model=model):
            batch.append(usage)
            if len(batch) >= size:
                yield _message(batch)
                batch = []
    if batch:
        yield _message(batch)


def _message(batch: list[dict[str, Any]]) -> str:
    document = {"Type": MESSAGE_TYPE, "Version": MESSAGE_VERSION, "UsageRecords": batch}
    return json.dumps(document, ensure_ascii=True, separators=(",", ":")) + "\n"
