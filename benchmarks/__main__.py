"""``python -m benchmarks [--smoke]``: run every benchmark and print a report.

``make bench`` runs them at full size (about 13 minutes on 2 cores); ``make bench-smoke``
(``--smoke``) runs every benchmark and every code path at a small size in a few minutes, so
CI notices one that no longer runs: the tables have the same shape, the figures mean little.

Exits 0 whatever the numbers are (a ratio over target is printed, not failed); exits 1 only
when a benchmark could not run at all (the IdP, a hub or PostgreSQL did not start, a warm-up
login failed).
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback

from benchmarks import accounting, accounting_spawn, login, posix, spawner, storage


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks", description="Run every benchmark and print the figures."
    )
    parser.add_argument(
        "--smoke",
        action="store_true",
        help="a small size of every benchmark: checks they run; the figures are not meaningful",
    )
    smoke = parser.parse_args(argv).smoke
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
        section = time.perf_counter()
        try:
            bench(print, smoke)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"[{name}] {time.perf_counter() - section:.1f}s")
    print(f"total {time.perf_counter() - start:.1f}s", end="")
    print(f"; could not run: {', '.join(failed)}" if failed else "")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
