"""``make bench``'s results: one table, a JSON file per run that never overwrites another,
and the comparison with the previous file."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path

from benchmarks import results
from benchmarks.results import Figure

FIGURES = [
    Figure(
        "spawner", "pod-manifest build, median", 900.0, "us", 800.0, "KubeSpawner", "<= 1.2x", True
    ),
    Figure("registry", "PostgreSQL map_identity fast, p99", 4.0, "ms", target="< 5 ms", met=True),
]


def test_a_later_run_the_same_day_gets_a_suffix_and_compares_with_the_earlier(
    tmp_path: Path,
) -> None:
    first = results.write_json(FIGURES, tmp_path, smoke=False, seconds=1.0, failed=[])
    second = results.write_json(FIGURES[:1], tmp_path, smoke=True, seconds=2.0, failed=["x"])
    date = datetime.now(timezone.utc).strftime("%Y-%m-%d")
    assert (first.name, second.name) == (f"{date}.json", f"{date}-2.json")
    assert json.loads(first.read_text())["figures"][0]["ratio"] == 900.0 / 800.0
    assert json.loads(second.read_text())["smoke"] is True
    assert results.previous(tmp_path, second) == first
    assert results.previous(tmp_path, first) is None
    later = [Figure("spawner", "pod-manifest build, median", 450.0, "us", 900.0, "KubeSpawner")]
    compared = results.comparison(first, later)
    assert "0.50x" in compared  # the value halved
    assert "1.12x" in compared  # the ratio before


def test_the_table_has_every_figure_with_its_baseline_and_verdict() -> None:
    table = results.table(FIGURES).splitlines()
    assert len(table) == 2 + len(FIGURES)
    assert "800 (KubeSpawner)" in table[2]
    assert "1.12x" in table[2]
    assert table[2].endswith("met")
    assert "< 5 ms" in table[3]
