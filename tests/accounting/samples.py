"""The sessions behind the golden files (fixed data, job ids as the store would give them)."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from iris_jupyterhub.accounting import SessionRecord
from iris_jupyterhub.accounting.sessions import session_record

from .conftest import at, session

RANGE = (at(2026, 1, 1), at(2026, 3, 1))
"""Export range of the golden files: January and February 2026."""

AS_OF = at(2026, 2, 20, 12, 0, 0)
"""'Now' for the golden files' open sessions."""


def golden_sessions() -> list[SessionRecord]:
    """Varied sessions, in the store's order (start, record id)."""
    records = [
        # ended before the range: in no file (JSON: not selected by the store either)
        session(1, start=at(2025, 12, 1, 8), end=at(2025, 12, 1, 9), end_reason="stopped"),
        # December -> January: XDMoD (ends in range); APEL January only (December is out)
        session(
            2,
            start=at(2025, 12, 31, 22, 30, 15, 900_000),
            end=at(2026, 1, 1, 1, 0, 0, 100_000),
            end_reason="stopped",
            canonical_group="vo.iris.ac.uk/lsst/desc:role=manager",
            group="vo-iris-lsst-desc",
        ),
        # plain session in January, GPU, fractional CPUs, memory not a whole GiB
        session(
            3,
            start=at(2026, 1, 10, 9),
            end=at(2026, 1, 10, 17, 45, 30),
            end_reason="poll",
            cpu_limit=1.5,
            memory_limit=1536 * 2**20,
            gpus=2,
            profile="gpu-a100",
        ),
        # hostile profile / names: | and newlines; no group; no limits; two days
        session(
            4,
            start=at(2026, 1, 20, 0, 0, 0),
            end=at(2026, 1, 22, 3, 4, 5),
            end_reason="vanished",
            profile="bad|profile\nname\r|x",
            canonical_group=None,
            group=None,
            gid=None,
            cpu_limit=None,
            cpu_request=None,
            memory_limit=None,
            memory_request=None,
            image="registry.example/a%%b:1",
            pod="pod\nwith%%percent",
            identity_key="https://aai.egi.eu/auth/realms/egi 1234@egi.eu\nforged: line",
            choices={},
        ),
        # January -> February, still running at AS_OF
        session(5, start=at(2026, 1, 31, 23, 59, 59), canonical_group="iris"),
        # starts in February, ends in March (after the range): APEL February only
        session(6, start=at(2026, 2, 27, 12), end=at(2026, 3, 2, 12), end_reason="stopped"),
        # a very long identity key (hashed for APEL)
        session(
            7,
            start=at(2026, 2, 14, 10),
            end=at(2026, 2, 14, 10),
            end_reason="failed",
            identity_key="https://iam.example " + "s" * 300,
        ),
    ]
    records.sort(key=lambda record: (record.start, record.record_id))
    return [
        SessionRecord(**{**record.__dict__, "job_id": index})
        for index, record in enumerate(records, start=1)
    ]


def personal_group_session(charge_group: str | None = "iris/lsst") -> SessionRecord:
    """A closed February session run as the personal POSIX group, as the spawner records
    it: ``iris_state["group"]`` (the canonical group of the POSIX group) is ``None``, and
    the group the session is charged to is ``iris_state["charge_group"]``."""
    record = session_record(
        record_id="personal-1",
        hub_user="aresearcher",
        server_name="",
        auth_state={
            "identity": {"issuer": "https://iris-iam.stfc.ac.uk/", "subject": "abc-1"},
            "posix": {"username": "aresearcher", "uid": 2_001_000_001, "gid": 2_001_000_001},
        },
        user_options={"profile": "standard", "group": "aresearcher"},
        iris_state={"group": None, "charge_group": charge_group, "cpu": 1, "gpu": 0},
        uid=2_001_000_001,
        gid=2_001_000_001,
        image="quay.io/jupyter/base-notebook:latest",
        cpu_guarantee=None,
        cpu_limit=1,
        mem_guarantee=None,
        mem_limit=2 * 2**30,
        namespace="jhub",
        pod_name="jupyter-aresearcher",
        pod=None,
        observed=at(2026, 2, 3, 9),
        tolerance=timedelta(seconds=120),
    )
    return replace(record, end=at(2026, 2, 3, 11), end_reason="stopped", job_id=42)
