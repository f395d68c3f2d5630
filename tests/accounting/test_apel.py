"""APEL cloud messages: golden file, parsed by the APEL server's own loader, monthly splits."""

from __future__ import annotations

import calendar
import hashlib
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from dirq.QueueSimple import QueueSimple

from iris_jupyterhub.accounting import ApelOptions, SessionRecord, apel_messages, fqan
from iris_jupyterhub.accounting.apel import HEADER, apel_records
from iris_jupyterhub.accounting.spool import SpoolError, queue_messages

from .conftest import at, session
from .golden import check_golden
from .samples import AS_OF, RANGE, golden_sessions, personal_group_session

OPTIONS = ApelOptions(site_name="UKI-IRIS-TEST", cloud_compute_service="jupyter.iris.example")


def _epoch(value: datetime) -> int:
    return calendar.timegm(value.utctimetuple())


def _parse(loader: Any, message: str) -> list[dict[str, Any]]:
    """Records as the APEL server's loader reads them (its DB tuple, keyed by field name)."""
    records = loader.create_records(message)
    return [dict(zip(r._db_fields, r.get_db_tuple(), strict=True)) for r in records]


def _expected_months(record: SessionRecord, start: datetime, end: datetime) -> list[datetime]:
    """Month starts in which the record must be reported, computed independently."""
    last = record.end if record.end is not None else AS_OF
    months = []
    current = datetime(record.start.year, record.start.month, 1, tzinfo=record.start.tzinfo)
    while current <= last:
        following = (current + timedelta(days=32)).replace(day=1)
        if current < end and following > start:
            months.append(current)
        current = following
    return months


def test_golden_file_parsed_by_the_apel_loader(apel_loader: Any) -> None:
    records = golden_sessions()
    messages = list(apel_messages(records, *RANGE, AS_OF, OPTIONS))
    assert len(messages) == 1
    check_golden("apel.txt", messages[0])
    assert messages[0].startswith(HEADER + "\n")
    parsed = _parse(apel_loader, messages[0])
    expected = [(r, m) for r in records for m in _expected_months(r, *RANGE)]
    assert len(parsed) == len(expected) == 7
    for row, (record, month) in zip(parsed, expected, strict=True):
        following = (month + timedelta(days=32)).replace(day=1)
        final = record.end is not None and record.end < following
        last = record.end if record.end is not None else AS_OF
        measured = last if last < following else following - timedelta(seconds=1)
        wall = int(measured.timestamp()) - int(record.start.timestamp())
        cpus = record.cpu_limit or record.cpu_request or 1
        assert row["VMUUID"] == record.record_id
        assert row["SiteName"] == "UKI-IRIS-TEST"
        assert row["CloudComputeService"] == "jupyter.iris.example"
        assert row["CloudType"] == "jupyterhub"
        assert row["Status"] == ("completed" if final else "started")
        assert _epoch(row["StartTime"]) == int(record.start.timestamp())
        if final:
            assert _epoch(row["EndTime"]) == int(record.end.timestamp())  # type: ignore[union-attr]
        else:
            assert row["EndTime"] is None
        # the server's measurement month is that of RecordCreateTime (running) / EndTime
        stamp = row["EndTime"] if final else row["RecordCreateTime"]
        assert (stamp.year, stamp.month) == (month.year, month.month)
        assert row["WallDuration"] == wall
        assert row["CpuDuration"] == round(wall * cpus)
        assert row["CpuCount"] == cpus
        assert row["SuspendDuration"] == 0
        memory = record.memory_limit or record.memory_request
        assert row["Memory"] == (None if memory is None else -(-memory // 2**20))
        assert row["Benchmark"] == 0.0
        assert row["LocalUserId"] == record.posix_user
        assert row["LocalGroupId"] == (record.group or "None")
        if record.canonical_group:
            assert row["FQAN"] == fqan(record.canonical_group)
            vo_path, _, role = record.canonical_group.partition(":role=")
            assert row["VO"] == vo_path.split("/")[0]
            assert row["VOGroup"] == "/" + vo_path
            assert row["VORole"] == f"Role={role or 'NULL'}"
        else:
            assert (row["FQAN"], row["VO"]) == ("None", "None")


def test_personal_group_session_is_charged_to_a_vo(apel_loader: Any) -> None:
    """Run as the personal POSIX group, the session still carries the VO it is charged to."""
    record = personal_group_session("iris/lsst")
    [row] = _parse(apel_loader, next(apel_messages([record], *RANGE, AS_OF, OPTIONS)))
    assert row["LocalGroupId"] == "aresearcher"
    assert row["FQAN"] == "/iris/lsst/Role=NULL/Capability=NULL"
    assert (row["VO"], row["VOGroup"], row["VORole"]) == ("iris", "/iris/lsst", "Role=NULL")


def test_hostile_values_cannot_break_the_message(apel_loader: Any) -> None:
    record = next(r for r in golden_sessions() if r.job_id == 4)
    [(_, fields)] = list(apel_records(record, *RANGE, AS_OF, OPTIONS))
    message = next(apel_messages([record], *RANGE, AS_OF, OPTIONS))
    [row] = _parse(apel_loader, message)
    assert row["GlobalUserName"] == "https://aai.egi.eu/auth/realms/egi 1234@egi.eu forged: line"
    assert row["MachineName"] == "pod with%percent"
    assert row["ImageId"] == "registry.example/a%b:1"
    assert "forged" not in {line.split(":", 1)[0] for line in message.splitlines()}
    assert fields["VMUUID"] == record.record_id


def test_long_identity_is_hashed(apel_loader: Any) -> None:
    record = next(r for r in golden_sessions() if r.job_id == 6)
    [row] = _parse(apel_loader, next(apel_messages([record], *RANGE, AS_OF, OPTIONS)))
    digest = hashlib.sha256(record.identity_key.encode()).hexdigest()
    assert row["GlobalUserName"] == f"sha256:{digest}"


def test_month_splitting_is_cumulative_and_range_independent(apel_loader: Any) -> None:
    record = session(1, start=at(2025, 11, 15), end=at(2026, 2, 3, 6), end_reason="stopped")
    whole = list(apel_records(record, at(2025, 1, 1), at(2027, 1, 1), AS_OF))
    assert [m for m, _ in whole] == [
        at(2025, 11, 1),
        at(2025, 12, 1),
        at(2026, 1, 1),
        at(2026, 2, 1),
    ]
    walls = [int(f["WallDuration"]) for _, f in whole]
    assert walls == sorted(walls)
    assert walls[-1] == int((record.end - record.start).total_seconds())  # type: ignore[operator]
    assert [f["Status"] for _, f in whole] == ["started"] * 3 + ["completed"]
    # per-month usage, as the server computes it (this record minus the previous one)
    per_month = [b - a for a, b in zip([0, *walls], walls, strict=False)]
    assert per_month[1] == 31 * 86400  # December, all of it
    # exporting one month gives exactly that month's record, whatever the range
    for month, fields in whole:
        following = (month + timedelta(days=32)).replace(day=1)
        alone = list(apel_records(record, month + timedelta(days=3), following, AS_OF))
        assert alone == [(month, fields)]
    message = next(apel_messages([record], at(2025, 1, 1), at(2027, 1, 1), AS_OF, OPTIONS))
    assert len(_parse(apel_loader, message)) == 4


def test_batches_of_at_most_n_records(apel_loader: Any) -> None:
    options = ApelOptions(site_name="S", records_per_message=3)
    records = [session(n, start=at(2026, 1, 1 + n)) for n in range(7)]
    messages = list(apel_messages(records, at(2026, 1, 1), at(2026, 2, 1), AS_OF, options))
    assert [len(_parse(apel_loader, m)) for m in messages] == [3, 3, 1]
    ids = [row["VMUUID"] for m in messages for row in _parse(apel_loader, m)]
    assert ids == [r.record_id for r in records]


def test_empty_range_gives_no_message(apel_loader: Any) -> None:
    assert list(apel_messages([], *RANGE, AS_OF, OPTIONS)) == []
    old = session(1, end=at(2026, 1, 10, 10), end_reason="stopped")
    assert list(apel_messages([old], at(2026, 3, 1), at(2026, 4, 1), AS_OF, OPTIONS)) == []
    assert apel_loader.create_records(HEADER + "\n") == []  # the loader would accept it anyway


def test_options_are_checked() -> None:
    with pytest.raises(ValueError, match="SiteName"):
        ApelOptions(site_name=" \n")
    with pytest.raises(ValueError, match="per message"):
        ApelOptions(site_name="S", records_per_message=0)


def test_spool_read_back_with_dirq(tmp_path: Path, apel_loader: Any) -> None:
    spool = tmp_path / "outgoing"
    messages = list(
        apel_messages(golden_sessions(), *RANGE, AS_OF, ApelOptions("S", records_per_message=3))
    )
    names = queue_messages(spool, messages)
    assert len(names) == len(messages) == 3
    queue = QueueSimple(str(spool))
    assert queue.count() == 3
    read = []
    for name in queue:
        assert queue.lock(name)
        read.append(queue.get(name).decode("utf-8"))
        queue.unlock(name)
    assert sorted(read) == sorted(messages)
    assert sum(len(_parse(apel_loader, m)) for m in read) == 7


def test_unwritable_spool(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    with pytest.raises(SpoolError, match=str(blocker / "outgoing")):
        queue_messages(blocker / "outgoing", ["APEL-cloud-message: v0.4\n"])
