"""Open XDMoD (Jobs realm) input: Slurm ``sacct --parsable2`` lines for the Slurm shredder.

Load with ``xdmod-shredder -r <resource> -f slurm -i <file>`` then ``xdmod-ingestor``.
Each completed session becomes one line of the 26 fields that Open XDMoD 10.0-11.x reads,
in this order (:data:`FIELDS`), ``|``-separated, no header::

    jobid|jobidraw|cluster|partition|qos|account|group|gid|user|uid|submit|eligible|
    start|end|elapsed|exitcode|state|nnodes|ncpus|reqcpus|reqmem|reqtres|alloctres|
    timelimit|nodelist|jobname

How a session maps (the shredder is ``classes/OpenXdmod/Shredder/Slurm.php``):

* ``jobid``/``jobidraw``: the store's integer id (the shredder's ``job_id`` column is an
  unsigned integer, so the uuid ``record_id`` cannot be used); no ``.`` or ``_`` (which
  would make it a job step or an array job).
* ``cluster``: the resource name (the shredder replaces it with ``-r`` anyway).
* ``partition``: the profile slug, or ``default_partition`` without a profile.
* ``qos``: ``normal``. ``account``: the VO of the charged group (``vo`` of
  ``vo/sub:role=x``), else ``default_account``. ``group``/``gid``: the POSIX group the
  server ran as. ``user``/``uid``: the POSIX login name (the hub user name if unknown).
* ``submit``/``eligible``/``start``: the start; ``end`` the end; all UTC
  ``YYYY-MM-DDTHH:MM:SS`` (the shredder parses them as UTC). ``elapsed`` ``[D-]HH:MM:SS``.
* ``exitcode`` ``0:0``; ``state`` from the end reason (:data:`STATES`): ``stopped`` is
  ``COMPLETED``, the others ``FAILED``; both are states the shredder loads.
* ``nnodes`` 1; ``ncpus``/``reqcpus`` the CPUs charged rounded up to whole CPUs.
* ``reqmem`` the memory charged as Slurm prints it (``4G``, ``1536M``), empty if unknown.
* ``reqtres``/``alloctres`` ``cpu=N,mem=M,node=1[,gres/gpu=G]`` (XDMoD reads GPUs from
  ``alloctres``). ``timelimit`` ``UNLIMITED``. ``nodelist`` the node name.
* ``jobname``: the profile (the job name is the one field that may contain
  ``|``, being last).

Only sessions that ended inside the export range ``[start, end)`` are written, once each:
running sessions are skipped like the shredder skips them, and consecutive ranges report
every session exactly once. Re-loading a line is harmless (the shredder skips duplicates).

Sanitising: the shredder splits lines on newlines, removes control characters and splits
fields on ``|``. So in every field, control characters (including CR, LF, TAB) become a
space, and ``|`` becomes ``_`` except in the last field (``jobname``), where the shredder
keeps it. An empty node name is written as ``unknown`` (``None assigned`` would make the
shredder skip the session).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import datetime

from .records import SessionRecord, allocated_cpus, allocated_memory, epoch, utc, vo_of

__all__ = ["FIELDS", "STATES", "XdmodOptions", "format_elapsed", "slurm_memory", "xdmod_lines"]

FIELDS = (
    "jobid", "jobidraw", "cluster", "partition", "qos", "account", "group", "gid", "user",
    "uid", "submit", "eligible", "start", "end", "elapsed", "exitcode", "state", "nnodes",
    "ncpus", "reqcpus", "reqmem", "reqtres", "alloctres", "timelimit", "nodelist", "jobname",
)  # fmt: skip
"""The 26 ``sacct`` fields in the order the Open XDMoD 10-11 Slurm shredder reads them."""

STATES = {"stopped": "COMPLETED", "poll": "FAILED", "vanished": "FAILED", "failed": "FAILED"}
"""Slurm job state written for each end reason."""

_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\x85\u2028\u2029]")
_MIB = 1024 * 1024


@dataclass(frozen=True)
class XdmodOptions:
    """Site choices for the XDMoD export."""

    resource: str = "jupyterhub"
    """Resource (cluster) name, as given to ``xdmod-shredder -r``."""
    default_partition: str = "jupyterhub"
    """Partition of sessions without a profile."""
    default_account: str = "none"
    """Account of sessions without a group."""


def _clean(value: object, *, last: bool = False) -> str:
    text = _CONTROL_RE.sub(" ", str(value))
    return text if last else text.replace("|", "_")


def format_elapsed(seconds: int) -> str:
    """Slurm's elapsed format: ``HH:MM:SS``, or ``D-HH:MM:SS`` from one day on."""
    days, rest = divmod(max(0, seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    clock = f"{hours:02d}:{minutes:02d}:{secs:02d}"
    return f"{days}-{clock}" if days else clock


def slurm_memory(size: int | None) -> str:
    """Bytes as Slurm prints memory: whole GiB as ``4G``, else MiB rounded up (``1536M``)."""
    if size is None:
        return ""
    mib = max(1, math.ceil(size / _MIB))
    return f"{mib // 1024}G" if mib % 1024 == 0 else f"{mib}M"


def _time(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of a UTC datetime (truncated to the second)."""
    return utc(value).isoformat()[:19]


def _tres(cpus: int, memory: str, gpus: int) -> str:
    parts = [f"cpu={cpus}"]
    if memory:
        parts.append(f"mem={memory}")
    parts.append("node=1")
    if gpus:
        parts.append(f"gres/gpu={gpus}")
    return ",".join(parts)


def xdmod_line(record: SessionRecord, options: XdmodOptions) -> str:
    """The ``sacct`` line of one completed session (no newline)."""
    if record.end is None or record.end_reason is None:
        raise ValueError(f"session {record.record_id} is still open")
    if record.job_id is None:
        raise ValueError(f"session {record.record_id} has no numeric job id (not stored)")
    start = record.start
    end = max(record.end, start)
    cpus = math.ceil(allocated_cpus(record))
    memory = slurm_memory(allocated_memory(record))
    tres = _tres(cpus, memory, record.gpus)
    job = str(record.job_id)
    started = _time(start)
    name = record.profile or options.default_partition
    fields = [
        job,
        job,
        options.resource,
        name,
        "normal",
        vo_of(record.canonical_group) or options.default_account,
        record.group or "",
        "" if record.gid is None else str(record.gid),
        record.posix_user or record.hub_user,
        "" if record.uid is None else str(record.uid),
        started,
        started,
        started,
        _time(end),
        format_elapsed(epoch(end) - epoch(start)),
        "0:0",
        STATES[record.end_reason],
        "1",
        str(cpus),
        str(cpus),
        memory,
        tres,
        tres,
        "UNLIMITED",
        record.node or "unknown",
        name,
    ]
    line = "|".join(fields)
    if line.count("|") == len(FIELDS) - 1 and _CONTROL_RE.search(line) is None:
        return line  # the common case: nothing to clean
    cleaned = [_clean(value) for value in fields[:-1]]
    cleaned.append(_clean(name, last=True))
    return "|".join(cleaned)


def xdmod_lines(
    records: Iterable[SessionRecord], start: datetime, end: datetime, options: XdmodOptions
) -> Iterator[str]:
    """Lines (with ``\\n``) for the sessions that ended in ``[start, end)``, in input order."""
    start, end = utc(start), utc(end)
    for record in records:
        if record.end is not None and start <= record.end < end:
            yield xdmod_line(record, options) + "\n"
