"""``python -m benchmarks [--smoke]``: run every benchmark and print a report.

``make bench`` runs them at full size (about 13 minutes on 2 cores); ``make bench-smoke``
(``--smoke``) runs every benchmark and every code path at a small size in a few minutes, so
CI notices one that no longer runs: the tables have the same shape, the figures mean little.

At the end it prints ONE table of every figure with its same-run baseline and ratio,
writes it as JSON (:mod:`benchmarks.results`: ``benchmarks/results/<UTC date>.json`` for a
full run, never overwriting an earlier one; a temporary directory for ``--smoke``; or
``--results DIR``) and prints the comparison with the previous results file there.

Exits 0 whatever the numbers are (a ratio over target is printed, not failed); exits 1 only
when a benchmark could not run at all (the IdP, a hub or PostgreSQL did not start, a warm-up
login failed).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from pathlib import Path

from benchmarks import accounting, accounting_spawn, login, posix, results, spawner, storage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run every benchmark and print the figures."
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a small size of every benchmark: checks they run; the figures are not meaningful",
    )
    parser.add_argument(
        "--results",
        type=Path,
        default=None,
        help=f"directory for the JSON results (default: {results.RESULTS_DIR}; with --smoke "
        f"{results.SMOKE_DIR})",
    )
    parser.add_argument(
        "--only",
        action="append",
        default=None,
        help="run only this benchmark (login, posix, spawner, accounting, accounting-spawn, "
        "storage); repeatable",
    )
    args = parser.parse_args(argv)
    smoke = args.smoke
    if smoke:
        print("smoke size (--smoke): every benchmark runs; the figures are not meaningful")
    start = time.perf_counter()
    failed = []
    for name, bench in [
        ("login", login.run),
        ("posix", posix.run),
        ("spawner", spawner.run),
        ("accounting", accounting.run),
        ("accounting-spawn", accounting_spawn.run),
        ("storage", storage.run),
    ]:
        if args.only and name not in args.only:
            continue
        section = time.perf_counter()
        try:
            bench(print, smoke)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"[{name}] {time.perf_counter() - section:.1f}s")
    seconds = time.perf_counter() - start
    print(f"total {seconds:.1f}s", end="")
    print(f"; could not run: {', '.join(failed)}" if failed else "")
    report(
        args.results or (results.SMOKE_DIR if smoke else results.RESULTS_DIR),
        smoke,
        seconds,
        failed,
    )
    return 1 if failed else 0


def report(directory: Path, smoke: bool, seconds: float, failed: list[str]) -> None:
    """The table of every figure, the JSON file, the comparison with the previous file."""
    figures = results.collected()
    note = " (smoke size: figures not meaningful)" if smoke else ""
    print(f"\n== every figure, with its same-run baseline{note} ==")
    print("   (a shared machine makes absolute times noisy: compare the ratios)")
    print(results.table(figures))
    path = results.write_json(figures, directory, smoke=smoke, seconds=seconds, failed=failed)
    print(f"\nresults written to {path}")
    before = results.previous(directory, path)
    if before is None:
        print("no earlier results file to compare with")
        return
    print(f"\n== compared with {before.name} ==")
    print(results.comparison(before, figures))


if __name__ == "__main__":
    sys.exit(main())
