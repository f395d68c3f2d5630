"""XDMoD export: checked against the Open XDMoD Slurm shredder's parsing rules, field by field.

:func:`shred` re-implements what ``classes/OpenXdmod/Shredder/Slurm.php`` (Open XDMoD 10-11)
and ``Shredder::shredFile`` do with a line: strip control characters, ``explode('|', line,
26)``, skip job steps, running jobs and jobs without nodes, check the state, parse times as
UTC ``Y-m-d?H:i:s`` and durations as ``[[D-]H:]M:S``, read GPUs from ``alloctres``.
"""

from __future__ import annotations

import math
import re
from datetime import datetime, timezone

import pytest

from iris_jupyterhub.accounting import SessionRecord, XdmodOptions, xdmod_lines
from iris_jupyterhub.accounting.records import fqan
from iris_jupyterhub.accounting.xdmod import FIELDS, format_elapsed, slurm_memory, xdmod_line

from .conftest import at, session
from .golden import check_golden
from .samples import RANGE, golden_sessions, personal_group_session

OPTIONS = XdmodOptions(resource="iris-jhub")
ENDED_STATES = {
    "BOOT_FAIL", "CANCELLED", "COMPLETED", "FAILED", "NODE_FAIL", "PREEMPTED", "TIMEOUT",
    "OUT_OF_MEMORY", "DEADLINE", "REVOKED",
}  # fmt: skip
_TIME_FIELD_RE = re.compile(
    r"^(?:(?:(?P<days>\d+)-)?(?P<hours>\d+):)?(?P<minutes>\d+):(?P<seconds>\d+)(?:\.\d+)?$"
)
_GPU_RE = re.compile(r"(?:^|,)gres/gpu(?::[^=,]+)?=(\d+)")


def _seconds(value: str) -> int | None:
    if value == "" or value.upper() == "UNLIMITED":
        return None
    match = _TIME_FIELD_RE.match(value)
    if match is None:
        return None
    parts = {k: int(v) if v else 0 for k, v in match.groupdict().items()}
    return parts["days"] * 86400 + parts["hours"] * 3600 + parts["minutes"] * 60 + parts["seconds"]


def _epoch(value: str) -> int:
    parsed = datetime.strptime(value[:10] + " " + value[11:], "%Y-%m-%d %H:%M:%S")
    return int(parsed.replace(tzinfo=timezone.utc).timestamp())


def shred(line: str) -> dict[str, object] | None:
    """What the shredder stores for one line, or None when it skips it (raises if malformed)."""
    line = re.sub(r"[\x00-\x1f\x7f]", "", line.rstrip())
    fields = line.split("|", len(FIELDS) - 1)
    if len(fields) != len(FIELDS):
        raise ValueError(f"Malformed Slurm sacct line: {line!r}")
    job = dict(zip(FIELDS, fields, strict=True))
    if "." in job["jobid"] or job["end"] == "Unknown" or job["nodelist"] == "None assigned":
        return None
    if job["state"].upper().split(" ", 1)[0] not in ENDED_STATES:
        return None
    assert "_" not in job["jobid"], "an underscore makes an array job"
    return {
        **job,
        "job_id": int(job["jobid"]),
        "submit_time": _epoch(job["submit"]),
        "start_time": _epoch(job["start"]),
        "end_time": _epoch(job["end"]),
        "elapsed_s": _seconds(job["elapsed"]),
        "timelimit_s": _seconds(job["timelimit"]),
        "ngpus": sum(int(n) for n in _GPU_RE.findall(job["alloctres"])),
        "ncpus_i": int(job["ncpus"]),
        "nnodes_i": int(job["nnodes"]),
    }


def test_golden_file_and_field_by_field() -> None:
    records = golden_sessions()
    text = "".join(xdmod_lines(records, *RANGE, OPTIONS))
    check_golden("xdmod.log", text)
    assert text.endswith("\n")
    lines = text.splitlines()
    expected = [r for r in records if r.end is not None and RANGE[0] <= r.end < RANGE[1]]
    assert len(lines) == len(expected) == 4
    for line, record in zip(lines, expected, strict=True):
        assert "\r" not in line
        assert not re.search(r"[\x00-\x1f\x7f]", line)
        shredded = shred(line)
        assert shredded is not None, line
        assert shredded["job_id"] == record.job_id
        assert shredded["jobidraw"] == str(record.job_id)
        assert shredded["cluster"] == "iris-jhub"
        assert shredded["qos"] == "normal"
        start, end = int(record.start.timestamp()), int(record.end.timestamp())  # type: ignore[union-attr]
        assert shredded["submit_time"] == shredded["start_time"] == start
        assert shredded["end_time"] == end
        assert shredded["elapsed_s"] == end - start
        assert shredded["timelimit_s"] is None
        assert shredded["exitcode"] == "0:0"
        assert shredded["state"] == ("COMPLETED" if record.end_reason == "stopped" else "FAILED")
        assert shredded["nnodes_i"] == 1
        cpus = math.ceil(record.cpu_limit or record.cpu_request or 1)
        assert shredded["ncpus_i"] == cpus
        assert shredded["reqcpus"] == str(cpus)
        assert shredded["ngpus"] == record.gpus
        assert shredded["alloctres"] == shredded["reqtres"]
        assert str(shredded["alloctres"]).startswith(f"cpu={cpus},")
        assert "node=1" in str(shredded["alloctres"])
        assert shredded["user"] == record.posix_user
        assert shredded["uid"] == str(record.uid)
        assert shredded["gid"] == ("" if record.gid is None else str(record.gid))
        assert shredded["group"] == (record.group or "")
        vo = fqan(record.canonical_group).split("/")[1] if record.canonical_group else "none"
        assert shredded["account"] == vo
        assert shredded["nodelist"] == record.node
        assert "|" not in "".join(str(shredded[f]) for f in FIELDS[:-1])


def test_personal_group_session_is_charged_to_its_vo() -> None:
    shredded = shred(xdmod_line(personal_group_session("vo.iris.ac.uk:role=member"), OPTIONS))
    assert shredded is not None
    assert (shredded["account"], shredded["group"]) == ("vo.iris.ac.uk", "aresearcher")


def test_hostile_profile_stays_on_one_line_and_in_its_field() -> None:
    record = golden_sessions()[3]
    assert record.profile == "bad|profile\nname\r|x"
    line = xdmod_line(record, OPTIONS)
    assert "\n" not in line
    shredded = shred(line)
    assert shredded is not None
    assert shredded["partition"] == "bad_profile name _x"  # | not allowed before the last field
    assert shredded["jobname"] == "bad|profile name |x"  # the last field may keep |
    assert shredded["account"] == "none"
    assert shredded["reqmem"] == ""
    assert shredded["alloctres"] == "cpu=1,node=1"


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "00:00:00"), (59, "00:00:59"), (3600, "01:00:00"), (86399, "23:59:59"),
     (86400, "1-00:00:00"), (200000, "2-07:33:20"), (-5, "00:00:00")],
)  # fmt: skip
def test_elapsed(seconds: int, text: str) -> None:
    assert format_elapsed(seconds) == text
    assert _seconds(text) == max(0, seconds)


@pytest.mark.parametrize(
    ("size", "text"),
    [(None, ""), (4 * 2**30, "4G"), (1536 * 2**20, "1536M"), (1, "1M"), (2**30 + 1, "1025M")],
)
def test_memory(size: int | None, text: str) -> None:
    assert slurm_memory(size) == text


def test_open_sessions_and_other_ranges_are_skipped() -> None:
    open_one = session(1, job_id=1)
    closed = session(2, job_id=2, end=at(2026, 1, 10, 10), end_reason="stopped")
    assert list(xdmod_lines([open_one], at(2026, 1, 1), at(2026, 2, 1), OPTIONS)) == []
    assert list(xdmod_lines([closed], at(2026, 1, 10, 10, 0, 1), at(2026, 2, 1), OPTIONS)) == []
    assert len(list(xdmod_lines([closed], at(2026, 1, 10, 10), at(2026, 2, 1), OPTIONS))) == 1
    with pytest.raises(ValueError, match="still open"):
        xdmod_line(open_one, OPTIONS)
    with pytest.raises(ValueError, match="numeric job id"):
        xdmod_line(SessionRecord(**{**closed.__dict__, "job_id": None}), OPTIONS)


def test_idempotent() -> None:
    first = "".join(xdmod_lines(golden_sessions(), *RANGE, OPTIONS))
    second = "".join(xdmod_lines(golden_sessions(), *RANGE, OPTIONS))
    assert first == second
