"""Accounting export benchmark (issue 7): N session records to XDMoD, APEL and JSON lines.

1. Generate N sessions (default 1,000,000, 20,000 with ``--smoke``; env
   ``IRIS_BENCH_SESSIONS``) into a fresh SQLite database (schema by
   :class:`AccountingStore`): wall time and rate. Sessions are spread
   over three months; about 1 in 20 crosses a month boundary and 1 in 100 is still open,
   so APEL writes a few more records than sessions. Rows are written with ``sqlite3``
   ``executemany`` in the store's storage format (checked by reading one back through the
   store) and a 512 MiB page cache (the uuid4 record-id index is written in random order);
   the exports run with the store's defaults.
2. Export the three months in each format, each in a fresh child process (so its peak
   memory is its own): wall time, rate, output size, and peak RSS above the child's
   RSS after imports and opening the store (``VmHWM`` of /proc/self/status, reset through
   ``/proc/self/clear_refs`` just before the export starts). The export
   streams (keyset pages of 5000 rows), so the memory figure must stay flat in N.
   XDMoD and JSON go to a file, APEL into a ``dirq`` spool (1000 records per message).
   The exports run as many at a time as there are CPUs (at most 3), each in its own
   process; CPU time is printed beside wall time, which concurrent work inflates.

Everything is printed; nothing is asserted.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import json
import os
import random
import resource
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from benchmarks.results import record
from iris_jupyterhub.accounting import (
    AccountingStore,
    ApelOptions,
    SessionRecord,
    XdmodOptions,
    run_export,
)
from iris_jupyterhub.accounting.store import _COLUMNS

Out = Callable[[str], None]
SEED = 20261125
DEFAULT_SESSIONS = 1_000_000
SMOKE_SESSIONS = 20_000
START = datetime(2026, 1, 1, tzinfo=timezone.utc)
END = datetime(2026, 4, 1, tzinfo=timezone.utc)
PROFILES = ["standard", "large", "gpu-a100", "gpu-t4", "tiny"]
GROUPS = [("iris", "iris"), ("iris-lsst", "iris/lsst"), ("lz-shifter", "lz/ops:role=shifter")]


def session_count(default: int = DEFAULT_SESSIONS) -> int:
    raw = os.environ.get("IRIS_BENCH_SESSIONS", "")
    return int(raw.replace("_", "")) if raw.strip() else default


def session_values(n: int, seed: int = SEED) -> Iterator[dict[str, Any]]:
    """Keyword arguments of ``n`` reproducible sessions in start order over Jan-Mar 2026."""
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    span = (END - START).total_seconds() - 86400
    step = span / n
    for i in range(n):
        start = START + timedelta(seconds=int(i * step))
        roll = rng.random()
        if roll < 0.01:
            end, reason = None, None
        elif roll < 0.06:
            end, reason = start + timedelta(days=rng.randint(20, 40)), "stopped"
        else:
            end, reason = start + timedelta(seconds=rng.randint(60, 8 * 3600)), "stopped"
        group, canonical = GROUPS[i % len(GROUPS)]
        user = i % 5000
        yield {
            "record_id": f"{rng.getrandbits(128):032x}",
            "identity_key": f"https://iris-iam.stfc.ac.uk/ {user:08d}-subject",
            "hub_user": f"user{user}",
            "server_name": "",
            "posix_user": f"user{user}",
            "uid": 2_001_000_000 + user,
            "gid": 2_070_000_000 + i % 3,
            "group": group,
            "canonical_group": canonical,
            "profile": PROFILES[i % len(PROFILES)],
            "choices": {"image": "scipy"},
            "image": "quay.io/jupyter/scipy-notebook:2025-01-06",
            "cpu_request": 0.5,
            "cpu_limit": 2.0,
            "memory_request": 2 * 2**30,
            "memory_limit": 4 * 2**30,
            "gpus": 1 if i % 5 in (2, 3) else 0,
            "node": f"worker-{i % 40}",
            "namespace": "jhub",
            "pod": f"jupyter-user{user}",
            "start": start,
            "end": end,
            "end_reason": reason,
            "last_seen": None,
        }


def sessions(n: int, seed: int = SEED) -> Iterator[SessionRecord]:
    """The sessions of :func:`session_values` as records."""
    for values in session_values(n, seed):
        yield SessionRecord(**values)


def _stamp(value: datetime | None) -> str | None:
    """SQLAlchemy's SQLite storage of a naive UTC DateTime."""
    return None if value is None else value.replace(tzinfo=None).isoformat(" ", "microseconds")


def generate(db: Path, values: Iterator[dict[str, Any]], batch: int = 50_000) -> int:
    """Bulk-insert with the sqlite3 module's executemany, in the store's storage format.

    The values are what :class:`AccountingStore` writes for these sessions (no escaping is
    needed: the generated text has no backslash, NUL or lone surrogate); ``run`` reads
    the first one back through the store to prove it.
    """
    columns = [c for c in _COLUMNS if c != "id"]
    keys = [
        {"posix_group": "group", "start_time": "start", "end_time": "end"}.get(c, c)
        for c in columns
    ]
    names, marks = ", ".join(columns), ", ".join("?" for _ in columns)
    sql = f"INSERT INTO accounting_sessions ({names}) VALUES ({marks})"  # noqa: S608 - model names
    connection = sqlite3.connect(db)
    connection.execute("PRAGMA cache_size=-524288")  # the random record-id index
    count = 0
    rows: list[tuple[Any, ...]] = []
    try:
        for value in values:
            value["choices"] = json.dumps(value["choices"], sort_keys=True, separators=(",", ":"))
            for key in ("start", "end", "last_seen"):
                value[key] = _stamp(value[key])
            rows.append(tuple(value[key] for key in keys))
            if len(rows) >= batch:
                with connection:
                    connection.executemany(sql, rows)
                count += len(rows)
                rows.clear()
        if rows:
            with connection:
                connection.executemany(sql, rows)
            count += len(rows)
    finally:
        connection.close()
    return count


def _memory_kib(field: str) -> int:
    """``VmRSS``/``VmHWM`` of this process from /proc (ru_maxrss where there is no /proc)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def export_child(db: str, fmt: str, out: str) -> None:
    """Run one export in this (child) process and print a JSON line with its figures."""
    store = AccountingStore.from_url(f"sqlite:///{db}")
    store.open_sessions()  # migrations checked before the clock starts
    with contextlib.suppress(OSError):  # reset the peak (VmHWM): import-time peaks do not count
        Path("/proc/self/clear_refs").write_text("5")
    baseline = _memory_kib("VmRSS")
    t0, c0 = time.perf_counter(), time.process_time()
    result = run_export(
        store,
        fmt,
        START,
        END,
        out=out,
        now=END,
        xdmod=XdmodOptions(resource="iris-jhub"),
        apel=ApelOptions(site_name="UKI-BENCH", cloud_compute_service="jhub.bench"),
    )
    seconds = time.perf_counter() - t0
    cpu = time.process_time() - c0
    peak = _memory_kib("VmHWM")
    store.close()
    size = sum(p.stat().st_size for p in Path(out).rglob("*") if p.is_file())
    if Path(out).is_file():
        size = Path(out).stat().st_size
    print(
        json.dumps(
            {
                "seconds": seconds,
                "cpu": cpu,
                "items": result.items,
                "messages": len(result.messages),
                "bytes": size,
                "baseline_kib": baseline,
                "peak_delta_kib": peak - baseline,
            }
        )
    )


def run(out: Out = print, smoke: bool = False) -> None:
    """Generate the sessions, export them in each format and print the figures.

    ``smoke``: :data:`SMOKE_SESSIONS` sessions unless ``IRIS_BENCH_SESSIONS`` is set."""
    n = session_count(SMOKE_SESSIONS if smoke else DEFAULT_SESSIONS)
    out(f"iris-jupyterhub accounting export benchmark | N={n:,} sessions (IRIS_BENCH_SESSIONS)")
    with tempfile.TemporaryDirectory(prefix="iris-bench-accounting-") as tmp:
        db = Path(tmp) / "accounting.sqlite"
        store = AccountingStore.from_url(f"sqlite:///{db}")
        store.open_sessions()  # creates the schema
        store.close()
        t0 = time.perf_counter()
        inserted = generate(db, session_values(n))
        seconds = time.perf_counter() - t0
        check = AccountingStore.from_url(f"sqlite:///{db}")
        first = next(sessions(1))
        stored = check.get(first.record_id)
        check.close()
        assert stored is not None
        assert stored == type(first)(**{**first.__dict__, "job_id": 1}), "generated rows differ"
        record("accounting", f"generate {inserted:,} session rows", inserted / seconds, "rows/s")
        out(
            f"  generate: {inserted:,} rows in {seconds:.1f}s ({inserted / seconds:,.0f}/s), "
            f"database {db.stat().st_size / 2**20:.0f} MiB"
        )
        targets = {
            "xdmod": Path(tmp) / "xdmod.log",
            "apel": Path(tmp) / "spool",
            "json": Path(tmp) / "sessions.jsonl",
        }
        workers = max(1, min(len(targets), os.cpu_count() or 1))
        out(f"  exports: {workers} at a time (one child process each)")
        with concurrent.futures.ThreadPoolExecutor(workers) as pool:
            done = pool.map(lambda item: (item[0], _export(db, *item)), targets.items())
            for fmt, figures in done:
                _report(out, fmt, n, figures)


def _export(db: Path, fmt: str, target: Path) -> dict[str, Any]:
    child = subprocess.run(
        [sys.executable, "-m", "benchmarks.accounting", "--child", str(db), fmt, str(target)],
        check=True,
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[1],
    )
    figures: dict[str, Any] = json.loads(child.stdout.strip().splitlines()[-1])
    if target.is_file():
        target.unlink()
    return figures


def _report(out: Out, fmt: str, n: int, figures: dict[str, Any]) -> None:
    unit = "records" if fmt == "apel" else "lines"
    record("accounting", f"export {fmt} ({n:,} sessions)", n / figures["cpu"], "sessions/CPU s")
    extra = f" in {figures['messages']:,} messages" if fmt == "apel" else ""
    out(
        f"  export {fmt:5s}: {figures['items']:,} {unit}{extra} in "
        f"{figures['seconds']:.1f}s (CPU {figures['cpu']:.1f}s, "
        f"{n / figures['cpu']:,.0f} sessions per CPU second), "
        f"{figures['bytes'] / 2**20:.0f} MiB written, peak RSS +"
        f"{figures['peak_delta_kib'] / 1024:.1f} MiB over a "
        f"{figures['baseline_kib'] / 1024:.0f} MiB baseline"
    )


if __name__ == "__main__":
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        export_child(sys.argv[2], sys.argv[3], sys.argv[4])
    else:
        start = time.perf_counter()
        run(print)
        print(f"total {time.perf_counter() - start:.1f}s")
