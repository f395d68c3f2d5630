"""APEL cloud accounting messages (``APEL-cloud-message: v0.4``) for the EGI/IRIS repository.

A message is the header line, then records of ``Key: value`` lines separated by ``%%``
lines. One session is one "VM": ``VMUUID`` is its stable ``record_id``.

Monthly, cumulative records
---------------------------
The APEL server keys cloud records on (VMUUID, month, year) of the record's *measurement
time* and subtracts a VM's previous record from the next (``SummariseVMs`` in the APEL
server's ``schemas/cloud.sql``), so durations are cumulative since the start, and a session
needs one record for every calendar month (UTC) it ran in:

* every month before the last: ``Status: started``, measured at the month's last second
  (``RecordCreateTime``, which the server takes as the measurement time of a running VM),
  ``WallDuration`` = that second - start;
* the last month of a closed session: ``Status: completed``, ``EndTime`` = end, measured at
  the end (the server uses ``EndTime`` for completed VMs), ``WallDuration`` = end - start;
* the last month of an open session: ``Status: started`` measured at ``as_of`` (the export
  time, at most the end of the export range).

Only the months that overlap the export range ``[start, end)`` are written. A record for a
given month is the same whatever range it was exported in (for closed sessions), and the
server replaces a (VMUUID, month) record with a newer one, so exports can be repeated and
ranges may overlap.

Fields
------
``VMUUID`` record_id; ``SiteName`` / ``CloudComputeService`` / ``CloudType`` from the
options; ``MachineName`` the pod; ``LocalUserId`` the POSIX login name (hub user name if
unknown); ``LocalGroupId`` the POSIX group; ``GlobalUserName`` the identity key
``"<issuer> <subject>"`` (``sha256:<hex>`` of it when longer than 255 characters, the
server's column size); ``FQAN`` from the charged group (:func:`~.records.fqan`; the server
derives VO, VOGroup and VORole from it); ``StartTime``/``EndTime``/``RecordCreateTime`` Unix
seconds; ``SuspendDuration`` 0; ``CpuCount`` the CPUs charged (limit, else request, else 1;
fractions kept); ``CpuDuration`` = wall x CPUs, i.e. *allocated* CPU time, not measured
use; ``Memory`` the memory charged in MB (MiB, rounded up), omitted if unknown;
``ImageId`` the container image. Network, disk, public IP and benchmark fields are omitted
(the server stores NULL, and 0 for a missing benchmark).

Values cannot be escaped in this format: the server splits a message on ``%%`` and each
record on lines, so control characters in a value become spaces and runs of ``%`` become
one ``%``.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from .records import (
    SessionRecord,
    allocated_cpus,
    allocated_memory,
    epoch,
    fqan,
    next_month,
    utc,
)

__all__ = [
    "HEADER",
    "ApelOptions",
    "apel_messages",
    "apel_records",
    "format_apel_record",
]

HEADER = "APEL-cloud-message: v0.4"
"""First line of every cloud accounting message."""

MAX_GLOBAL_USER_NAME = 255
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_PERCENTS_RE = re.compile(r"%{2,}")
_MIB = 1024 * 1024


@dataclass(frozen=True)
class ApelOptions:
    """Site choices for the APEL export."""

    site_name: str
    """GOCDB site name (``SiteName``, mandatory)."""
    cloud_compute_service: str | None = None
    """``CloudComputeService``: the service name registered in GOCDB, if any."""
    cloud_type: str = "jupyterhub"
    """``CloudType``: the kind of cloud software."""
    records_per_message: int = 1000
    """At most this many records per message."""
    accelerators: bool = False
    """Also write accelerator (GPU) messages (:mod:`~.accelerator`; not in APEL releases yet)."""
    accelerator_model: str | None = None
    """``Model`` of the accelerator records (e.g. ``NVIDIA-A100``), if known."""

    def __post_init__(self) -> None:
        if not clean(self.site_name).strip():
            raise ValueError("APEL SiteName must not be empty")
        if self.records_per_message < 1:
            raise ValueError("APEL records per message must be at least 1")


def clean(value: object) -> str:
    """A value safe in a ``Key: value`` line: no control characters, no ``%%``."""
    return _PERCENTS_RE.sub("%", _CONTROL_RE.sub(" ", str(value)))


def global_user_name(identity_key: str) -> str:
    """The identity key, or ``sha256:<hex>`` of it when too long for the APEL server."""
    value = clean(identity_key).strip()
    if len(value) <= MAX_GLOBAL_USER_NAME:
        return value
    return "sha256:" + hashlib.sha256(identity_key.encode("utf-8", "surrogatepass")).hexdigest()


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def _text(value: str) -> str:
    """:func:`clean` and strip, with a fast path for the usual clean value."""
    if _CONTROL_RE.search(value) is None and "%%" not in value:
        return value.strip()
    return clean(value).strip()


@lru_cache(maxsize=256)
def _month(year: int, month: int) -> tuple[datetime, datetime, int]:
    """First instant of a month, of the next one, and the epoch of the month's last second."""
    first = datetime(year, month, 1, tzinfo=timezone.utc)
    following = next_month(first)
    return first, following, epoch(following) - 1


def apel_records(
    record: SessionRecord,
    start: datetime,
    end: datetime,
    as_of: datetime,
    options: ApelOptions | None = None,
) -> Iterator[tuple[datetime, dict[str, str]]]:
    """The (month, fields) records of one session for the months overlapping [start, end).

    ``fields`` are in message order, cleaned, empty ones left out; the site fields come
    from ``options`` (left out without).
    """
    start, end, as_of = utc(start), utc(end), utc(as_of)
    begin = record.start
    last = max(record.end if record.end is not None else as_of, begin)
    head, tail = _session_fields(record, options)
    cpus = allocated_cpus(record)
    count = _number(cpus)
    begin_epoch, last_epoch = epoch(begin), epoch(last)
    year, month = begin.year, begin.month
    while (year, month) <= (last.year, last.month):
        first, following, month_end = _month(year, month)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)
        if not (first < end and following > start):
            continue
        final = last < following
        measured = last_epoch if final else month_end
        wall = max(0, measured - begin_epoch)
        fields = {"RecordCreateTime": str(measured), **head}
        completed = final and record.end is not None
        fields["Status"] = "completed" if completed else "started"
        fields["StartTime"] = str(begin_epoch)
        if completed:
            fields["EndTime"] = str(last_epoch)
        fields["SuspendDuration"] = "0"
        fields["WallDuration"] = str(wall)
        fields["CpuDuration"] = str(round(wall * cpus))
        fields["CpuCount"] = count
        fields.update(tail)
        yield first, fields


def _session_fields(
    record: SessionRecord, options: ApelOptions | None
) -> tuple[dict[str, str], dict[str, str]]:
    """The fields before Status and after CpuCount, which are the same every month."""
    head = {"VMUUID": _text(record.record_id)}
    tail: dict[str, str] = {}
    if options is not None:
        head["SiteName"] = _text(options.site_name)
        if options.cloud_compute_service:
            head["CloudComputeService"] = _text(options.cloud_compute_service)
    if record.pod:
        head["MachineName"] = _text(record.pod)
    head["LocalUserId"] = _text(record.posix_user or record.hub_user)
    if record.group:
        head["LocalGroupId"] = _text(record.group)
    head["GlobalUserName"] = global_user_name(record.identity_key)
    if record.canonical_group:
        head["FQAN"] = fqan(record.canonical_group)
    memory = allocated_memory(record)
    if memory is not None:
        tail["Memory"] = str(max(1, math.ceil(memory / _MIB)))
    if record.image:
        tail["ImageId"] = _text(record.image)
    if options is not None:
        tail["CloudType"] = _text(options.cloud_type)
    return {k: v for k, v in head.items() if v}, {k: v for k, v in tail.items() if v}


def format_apel_record(fields: dict[str, str]) -> str:
    """The ``Key: value`` lines of one record from :func:`apel_records`, final newline included."""
    return "".join([f"{key}: {value}\n" for key, value in fields.items()])


def apel_messages(
    records: Iterable[SessionRecord],
    start: datetime,
    end: datetime,
    as_of: datetime,
    options: ApelOptions,
) -> Iterator[str]:
    """Whole messages of at most ``options.records_per_message`` records each.

    Records come in input order, each session's months in order. No record in the range
    gives no message at all (an empty message carries nothing and is not sent).
    """
    batch: list[str] = []
    for record in records:
        for _first, fields in apel_records(record, start, end, as_of, options):
            batch.append(format_apel_record(fields))
            if len(batch) >= options.records_per_message:
                yield _message(batch)
                batch = []
    if batch:
        yield _message(batch)


def _message(records: list[str]) -> str:
    return HEADER + "\n" + "%%\n".join(records) + "%%\n"
