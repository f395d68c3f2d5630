"""The figures of one ``python -m benchmarks`` run: one table, a JSON file, a comparison.

Each benchmark prints its own report as before and also calls :func:`record` for every
figure it reports, with the baseline measured in the same run (KubeSpawner,
GenericOAuthenticator, a hub without the feature...) where there is one. At the end
:mod:`benchmarks.__main__` prints :func:`table`, writes :func:`write_json` and prints
:func:`comparison` with the previous file.

Where results go: a full run writes ``benchmarks/results/<UTC date>.json`` (a later run
the same day ``<date>-2.json``, ``-3``...; never overwritten), meant to be committed so
that a change can be compared with the last run. A ``--smoke`` run writes to
``<temp dir>/iris-bench-smoke/`` instead (its figures mean nothing; CI runs it only to see
that every benchmark still runs) and says ``"smoke": true`` in the file. ``--results DIR``
chooses another directory for either.

Figures taken on a shared or loaded machine are noisy: compare ratios to the same-run
baseline, not absolute times between runs.
"""

from __future__ import annotations

import json
import math
import os
import platform
import re
import tempfile
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

RESULTS_DIR = Path(__file__).resolve().parent / "results"
SMOKE_DIR = Path(tempfile.gettempdir()) / "iris-bench-smoke"


@dataclass(frozen=True)
class Figure:
    """One measured figure and, where there is one, its baseline from the same run."""

    section: str
    name: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    met: bool | None = None

    @property
    def key(self) -> str:
        return f"{self.section} | {self.name}"

    @property
    def ratio(self) -> float | None:
        if self.baseline is None or not self.baseline or not math.isfinite(self.baseline):
            return None
        return self.value / self.baseline


_FIGURES: list[Figure] = []


def record(
    section: str,
    name: str,
    value: float,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_name: str = "",
    target: str = "",
    met: bool | None = None,
) -> None:
    """Add a figure to this run's table (benchmarks call it next to what they print)."""
    _FIGURES.append(
        Figure(section, name, float(value), unit, baseline, baseline_name, target, met)
    )


def collected() -> list[Figure]:
    """The figures recorded so far in this process."""
    return list(_FIGURES)


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return "-"
    return f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}"


def table(figures: list[Figure]) -> str:
    """Every figure with its same-run baseline, ratio and target, one line each."""
    rows = [("section", "figure", "value", "baseline", "ratio", "target", "")]
    for f in figures:
        ratio = f.ratio
        rows.append(
            (
                f.section,
                f.name,
                f"{_number(f.value)} {f.unit}",
                f"{_number(f.baseline)} ({f.baseline_name})" if f.baseline is not None else "",
                f"{ratio:.2f}x" if ratio is not None else "",
                f.target,
                {True: "met", False: "MISSED", None: ""}[f.met],
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def results_path(directory: Path, now: datetime | None = None) -> Path:
    """``<directory>/<UTC date>.json``, or ``<date>-2.json``... if taken: never overwrite."""
    date = (now or datetime.now(timezone.utc)).strftime("%Y-%m-%d")
    path, n = directory / f"{date}.json", 1
    while path.exists():
        n += 1
        path = directory / f"{date}-{n}.json"
    return path


def write_json(
    figures: list[Figure], directory: Path, *, smoke: bool, seconds: float, failed: list[str]
) -> Path:
    """Write the run's figures to a new file in ``directory``; its path."""
    directory.mkdir(parents=True, exist_ok=True)
    path = results_path(directory)
    data: dict[str, Any] = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "smoke": smoke,
        "seconds": round(seconds, 1),
        "could_not_run": failed,
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
        },
        "figures": [{**asdict(f), "ratio": f.ratio} for f in figures],
    }
    path.write_text(json.dumps(data, indent=1) + "\n")
    return path


_NAME_RE = re.compile(r"^\d{4}-\d{2}-\d{2}(-(\d+))?\.json$")


def previous(directory: Path, current: Path) -> Path | None:
    """The results file written before ``current`` in ``directory`` (by date, then run)."""

    def order(path: Path) -> tuple[str, int]:
        match = _NAME_RE.match(path.name)
        return (path.name[:10], int(match[2]) if match and match[2] else 1)

    files = sorted(
        (p for p in directory.glob("*.json") if _NAME_RE.match(p.name) and p != current),
        key=order,
    )
    older = [p for p in files if order(p) < order(current)]
    return older[-1] if older else None


def comparison(old_path: Path, figures: list[Figure]) -> str:
    """This run's values and ratios against the file ``old_path``, figure by figure."""
    old = {
        f"{f['section']} | {f['name']}": f
        for f in json.loads(old_path.read_text()).get("figures", [])
    }
    rows = [("figure", "before", "now", "change", "ratio before", "ratio now")]
    for f in figures:
        before = old.get(f.key)
        if before is None:
            rows.append((f.key, "-", _number(f.value), "new", "", _ratio(f.ratio)))
            continue
        change = f.value / before["value"] if before["value"] else None
        rows.append(
            (
                f.key,
                _number(before["value"]),
                f"{_number(f.value)} {f.unit}",
                f"{change:.2f}x" if change is not None else "-",
                _ratio(before.get("ratio")),
                _ratio(f.ratio),
            )
        )
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows
    )


def _ratio(value: float | None) -> str:
    return f"{value:.2f}x" if value is not None else ""
