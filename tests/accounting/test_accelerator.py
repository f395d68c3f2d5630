"""APEL accelerator (GPU) messages: the APEL schema and record class accept them."""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from iris_jupyterhub.accounting import AccountingStore, ApelOptions, run_export
from iris_jupyterhub.accounting.accelerator import (
    MESSAGE_TYPE,
    accelerator_messages,
    accelerator_records,
)

from .conftest import VENDOR_APEL, at, session

OPTIONS = ApelOptions(site_name="UKI-IRIS-TEST", records_per_message=2, accelerators=True)
AS_OF = at(2026, 2, 20)


@pytest.fixture(scope="module")
def apel_accelerator() -> tuple[Any, Any]:
    """(ACCELERATOR_MSG_SCHEMA, AcceleratorRecord) from the vendored APEL files."""
    sys.path.insert(0, str(VENDOR_APEL))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            warnings.simplefilter("ignore", SyntaxWarning)
            from apel.common.message_schemas import ACCELERATOR_MSG_SCHEMA
            from apel.db.records.accelerator import AcceleratorRecord
    finally:
        sys.path.remove(str(VENDOR_APEL))
    return ACCELERATOR_MSG_SCHEMA, AcceleratorRecord


def _load(apel_accelerator: tuple[Any, Any], message: str) -> list[dict[str, Any]]:
    """What the accelerator loader does: validate against the schema, fill records."""
    schema, record_class = apel_accelerator
    document = json.loads(message)
    jsonschema.validate(document, schema)
    rows = []
    for usage in document["UsageRecords"]:
        record = record_class()
        record.set_all(usage)
        rows.append(dict(zip(record._db_fields, record.get_db_tuple(), strict=True)))
    return rows


def test_gpu_sessions_per_month(apel_accelerator: tuple[Any, Any]) -> None:
    records = [
        session(1, gpus=2, start=at(2026, 1, 30, 12), end=at(2026, 2, 2, 12), end_reason="poll"),
        session(2, gpus=0, start=at(2026, 1, 5)),  # no GPU: no record
        session(3, gpus=1, canonical_group=None, group=None, start=at(2026, 2, 10)),  # open
    ]
    messages = list(
        accelerator_messages(records, at(2026, 1, 1), at(2026, 3, 1), AS_OF, OPTIONS, model="A100")
    )
    assert len(messages) == 2  # 3 records, 2 per message
    rows = [row for message in messages for row in _load(apel_accelerator, message)]
    assert [
        (r["AssociatedRecord"], r["MeasurementYear"], r["MeasurementMonth"]) for r in rows
    ] == [
        (records[0].record_id, 2026, 1),
        (records[0].record_id, 2026, 2),
        (records[2].record_id, 2026, 2),
    ]
    # per month, not cumulative: the two months add up to the whole session
    assert rows[0]["AvailableDuration"] == int(1.5 * 86400)
    assert rows[1]["AvailableDuration"] == int(1.5 * 86400)
    assert rows[2]["AvailableDuration"] == int((AS_OF - at(2026, 2, 10)).total_seconds())
    assert [r["Count"] for r in rows] == [2.0, 2.0, 1.0]
    assert {r["Type"] for r in rows} == {"GPU"}
    assert {r["Model"] for r in rows} == {"A100"}
    assert {r["AssociatedRecordType"] for r in rows} == {"cloud"}
    assert rows[0]["FQAN"] == "/iris/lsst/Role=NULL/Capability=NULL"
    assert rows[2]["FQAN"] == "unknown"
    assert all(json.loads(m)["Type"] == MESSAGE_TYPE for m in messages)
    assert (
        list(accelerator_records(records[1], at(2026, 1, 1), at(2026, 3, 1), AS_OF, OPTIONS)) == []
    )


def test_export_adds_accelerator_messages_only_when_asked(
    sqlite_store: AccountingStore, tmp_path: Path
) -> None:
    sqlite_store.open_session(session(1, gpus=1, start=at(2026, 1, 3)))
    sqlite_store.close_session(session(1).record_id, at(2026, 1, 3, 5), "stopped")
    plain = run_export(
        sqlite_store, "apel", at(2026, 1, 1), at(2026, 2, 1), out=str(tmp_path / "a"),
        apel=ApelOptions(site_name="S"),
    )  # fmt: skip
    assert (plain.items, plain.accelerator_records, len(plain.messages)) == (1, 0, 1)
    with_gpu = run_export(
        sqlite_store, "apel", at(2026, 1, 1), at(2026, 2, 1), out=str(tmp_path / "b"),
        apel=ApelOptions(site_name="S", accelerators=True),
    )  # fmt: skip
    assert (with_gpu.items, with_gpu.accelerator_records, len(with_gpu.messages)) == (1, 1, 2)
    assert "1 + 1 accelerator record(s) in 2 message(s)" in with_gpu.describe()
