"""JSON lines: every field, stable order, one line per session whatever the content."""

from __future__ import annotations

import json

from iris_jupyterhub.accounting import json_lines
from iris_jupyterhub.accounting.jsonl import KEYS

from .golden import check_golden
from .samples import golden_sessions


def test_golden_file_and_values() -> None:
    records = golden_sessions()
    text = "".join(json_lines(records))
    check_golden("sessions.jsonl", text)
    assert text.isascii()
    lines = text.splitlines()
    assert len(lines) == len(records)
    for line, record in zip(lines, records, strict=True):
        value = json.loads(line)
        assert tuple(value) == KEYS
        assert value["record_id"] == record.record_id
        assert value["job_id"] == record.job_id
        assert value["identity_key"] == record.identity_key
        assert value["profile"] == record.profile
        assert value["choices"] == dict(record.choices)
        assert value["start"] == record.start.strftime("%Y-%m-%dT%H:%M:%SZ")
        if record.end is None:
            assert value["end"] is None
            assert value["duration_seconds"] is None
        else:
            assert value["end"] == record.end.strftime("%Y-%m-%dT%H:%M:%SZ")
            assert value["duration_seconds"] == int(record.end.timestamp()) - int(
                record.start.timestamp()
            )
        for key in ("uid", "gid", "group", "canonical_group", "gpus", "node", "pod", "image"):
            assert value[key] == getattr(record, key)
    assert "".join(json_lines(records)) == text
