"""Export ranges, destinations and the one function that runs an export.

Ranges
------
An export covers the half-open UTC range ``[start, end)``. On the command line ``--from``
and ``--to`` take a date (``2026-01-01``: midnight UTC, so ``--to`` is exclusive: the day
named is *not* included) or an ISO 8601 time (``2026-01-01T12:00:00Z``; a time without an
offset is UTC). Defaults: ``--to`` now, ``--from`` the first day of the month before
``--to``'s month, so a daily run re-sends the current and previous month to APEL
(harmless: the server replaces records) and writes every session that ended since then for
XDMoD (the shredder skips duplicates).

What each format takes from the range is in its module: XDMoD the sessions that *ended* in
it, APEL the months that overlap it, JSON every session that overlaps it.

Sessions still running are measured at ``as_of``, the earlier of ``end`` and now, so an
export of a range in the past is byte-for-byte the same every time.

Destinations
------------
``xdmod`` and ``json`` write to stdout (``-``), to a file, or into a directory (file
``<format>-<start>-<end>.<ext>``); files are written to a hidden temporary file in the same
directory, synced and renamed, so a reader (or ``xdmod-shredder`` scanning a directory,
which skips hidden files) never sees half a file. ``apel`` adds its messages to the SSM
outgoing ``dirq`` queue (a directory), or prints them with ``-``; with
``ApelOptions.accelerators`` the GPU messages (:mod:`.accelerator`) follow the cloud ones.
"""

from __future__ import annotations

import itertools
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import TextIO

from ..atomic import write_atomically
from .accelerator import accelerator_messages
from .apel import ApelOptions, apel_messages
from .jsonl import json_lines
from .records import SessionRecord, month_start, utc
from .spool import DEFAULT_SPOOL_DIR, queue_messages
from .store import AccountingStore
from .xdmod import XdmodOptions, xdmod_lines

__all__ = [
    "FORMATS",
    "ExportResult",
    "default_range",
    "parse_bound",
    "run_export",
    "write_atomically",
]

FORMATS = ("xdmod", "apel", "json")
"""Export formats."""

_EXTENSIONS = {"xdmod": "log", "json": "jsonl"}
_DATE_RE = re.compile(r"\d{4}-\d{2}-\d{2}")


def parse_bound(text: str) -> datetime:
    """``YYYY-MM-DD`` (midnight UTC) or an ISO 8601 time (UTC if it has no offset)."""
    value = text.strip()
    try:
        if _DATE_RE.fullmatch(value):
            day = date.fromisoformat(value)
            return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise ValueError(
            f"not a date or time: {text!r} (use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ)"
        ) from None
    return parsed.replace(tzinfo=timezone.utc) if parsed.tzinfo is None else utc(parsed)


def default_range(now: datetime) -> tuple[datetime, datetime]:
    """From the first day of the previous month to ``now``."""
    now = utc(now).replace(microsecond=0)
    previous = month_start(month_start(now) - timedelta(days=1))
    return previous, now


@dataclass
class ExportResult:
    """What an export wrote."""

    format: str
    destination: str
    items: int = 0
    """Lines (xdmod, json) or records (apel) written."""
    messages: list[str] = field(default_factory=list)
    """APEL: the queue element names (or ``-`` per printed message)."""
    accelerator_records: int = 0
    """APEL with accelerators: GPU records written (in messages counted in ``messages``)."""

    def describe(self) -> str:
        """One line for the admin."""
        if self.format == "apel":
            gpus = f" + {self.accelerator_records} accelerator" if self.accelerator_records else ""
            return (
                f"apel: {self.items}{gpus} record(s) in {len(self.messages)} message(s) "
                f"to {self.destination}"
            )
        return f"{self.format}: {self.items} line(s) to {self.destination}"


def _stamp(value: datetime) -> str:
    return utc(value).strftime("%Y%m%dT%H%M%SZ")


def _counted(lines: Iterable[str], stream: TextIO) -> int:
    count = 0
    for line in lines:
        stream.write(line)
        count += 1
    stream.flush()
    return count


def _lines(
    fmt: str, records: Iterable[SessionRecord], start: datetime, end: datetime, xdmod: XdmodOptions
) -> Iterator[str]:
    if fmt == "xdmod":
        return xdmod_lines(records, start, end, xdmod)
    return json_lines(records)


def run_export(
    store: AccountingStore,
    fmt: str,
    start: datetime,
    end: datetime,
    *,
    out: str | None = None,
    now: datetime | None = None,
    xdmod: XdmodOptions | None = None,
    apel: ApelOptions | None = None,
    stdout: TextIO | None = None,
) -> ExportResult:
    """Export ``[start, end)`` from ``store`` in ``fmt`` to ``out`` (see the module doc).

    ``out`` None means stdout for xdmod/json and :data:`DEFAULT_SPOOL_DIR` for apel.
    Raises ValueError for a bad range or options, OSError (``SpoolError`` for the APEL
    queue) when the destination cannot be written, ``DatabaseError`` for the database.
    """
    if fmt not in FORMATS:
        raise ValueError(f"unknown format {fmt!r} (choose from {', '.join(FORMATS)})")
    start, end = utc(start), utc(end)
    if end <= start:
        raise ValueError(f"empty range: --to {end.isoformat()} is not after --from")
    as_of = min(end, utc(now or datetime.now(timezone.utc)))
    stream = stdout or sys.stdout
    records = store.iter_sessions(start, end)
    if fmt == "apel":
        if apel is None:
            raise ValueError("the apel format needs a site name (--site-name)")
        result = ExportResult(fmt, out or str(DEFAULT_SPOOL_DIR))
        counted = _count_records(apel_messages(records, start, end, as_of, apel), result)
        if apel.accelerators:
            gpu = accelerator_messages(
                store.iter_sessions(start, end),
                start,
                end,
                as_of,
                apel,
                model=apel.accelerator_model,
            )
            counted = itertools.chain(counted, _count_accelerators(gpu, result))
        if out == "-":
            for message in counted:
                stream.write(message)
                result.messages.append("-")
            stream.flush()
        else:
            result.messages = queue_messages(Path(result.destination), counted)
        return result
    lines = _lines(fmt, records, start, end, xdmod or XdmodOptions())
    if out is None or out == "-":
        return ExportResult(fmt, "stdout", _counted(lines, stream))
    path = Path(out)
    if path.is_dir():
        path = path / f"{fmt}-{_stamp(start)}-{_stamp(end)}.{_EXTENSIONS[fmt]}"
    return ExportResult(fmt, str(path), write_atomically(path, lines))


def _count_accelerators(messages: Iterable[str], result: ExportResult) -> Iterator[str]:
    for message in messages:
        result.accelerator_records += message.count('"AssociatedRecordType"')
        yield message


def _count_records(messages: Iterable[str], result: ExportResult) -> Iterator[str]:
    for message in messages:
        result.items += message.count("\n%%\n")  # every record ends with a "%%" line
        yield message
