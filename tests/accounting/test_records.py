"""Pure helpers: FQANs, VOs, validation, months, allocations."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from iris_jupyterhub.accounting import END_REASONS, fqan, vo_of
from iris_jupyterhub.accounting.records import (
    allocated_cpus,
    allocated_memory,
    epoch,
    month_start,
    months_between,
    next_month,
)

from .conftest import at, session


@pytest.mark.parametrize(
    ("canonical", "expected"),
    [
        ("iris", "/iris/Role=NULL/Capability=NULL"),
        ("iris/lsst", "/iris/lsst/Role=NULL/Capability=NULL"),
        (
            "vo.iris.ac.uk/lsst/desc:role=manager",
            "/vo.iris.ac.uk/lsst/desc/Role=manager/Capability=NULL",
        ),
        ("vo.iris.ac.uk:role=member", "/vo.iris.ac.uk/Role=member/Capability=NULL"),
        (None, ""),
    ],
)
def test_fqan(canonical: str | None, expected: str) -> None:
    assert fqan(canonical) == expected


@pytest.mark.parametrize(
    ("canonical", "vo"),
    [
        ("iris", "iris"),
        ("iris/lsst:role=x", "iris"),
        ("vo.iris.ac.uk/a/b", "vo.iris.ac.uk"),
        (None, None),
    ],
)
def test_vo_of(canonical: str | None, vo: str | None) -> None:
    assert vo_of(canonical) == vo


@pytest.mark.parametrize("bad", ["/iris", "iris/", "iris:role=", "iris//x", "a b", "iris\n/x", ""])
def test_non_canonical_groups_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="canonical group"):
        fqan(bad)
    with pytest.raises(ValueError, match="canonical group"):
        vo_of(bad)


def test_record_validation() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        session(1, start=datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="end_reason must be one of"):
        session(1, end=at(2026, 1, 11), end_reason="crashed")
    with pytest.raises(ValueError, match="gpus"):
        session(1, gpus=-1)
    with pytest.raises(ValueError, match="record_id"):
        session(1, record_id="")
    shifted = session(1, start=datetime(2026, 1, 1, 12, tzinfo=timezone(timedelta(hours=2))))
    assert shifted.start == at(2026, 1, 1, 10)
    assert shifted.start.tzinfo == timezone.utc
    assert set(END_REASONS) == {"stopped", "poll", "vanished", "failed"}


def test_allocations_prefer_limits_then_requests() -> None:
    assert allocated_cpus(session(1)) == 2.0
    assert allocated_cpus(session(1, cpu_limit=None)) == 0.5
    assert allocated_cpus(session(1, cpu_limit=None, cpu_request=None)) == 1.0
    assert allocated_memory(session(1)) == 4 * 2**30
    assert allocated_memory(session(1, memory_limit=None)) == 2 * 2**30
    assert allocated_memory(session(1, memory_limit=None, memory_request=None)) is None


def test_months() -> None:
    assert month_start(at(2026, 2, 17, 5, 6, 7)) == at(2026, 2, 1)
    assert next_month(at(2026, 12, 31, 23, 59, 59)) == at(2027, 1, 1)
    assert next_month(at(2026, 1, 31)) == at(2026, 2, 1)
    assert list(months_between(at(2025, 11, 30), at(2026, 2, 1))) == [
        at(2025, 11, 1), at(2025, 12, 1), at(2026, 1, 1), at(2026, 2, 1)
    ]  # fmt: skip
    assert list(months_between(at(2026, 3, 5), at(2026, 3, 6))) == [at(2026, 3, 1)]
    assert epoch(at(2026, 1, 1) + timedelta(microseconds=999_999)) == epoch(at(2026, 1, 1))
