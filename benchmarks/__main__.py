"""``python -m benchmarks``: run every benchmark and print a report.

Exits 0 whatever the numbers are (a ratio over target is printed, not failed); exits 1 only
when a benchmark could not run at all (the IdP, a hub or PostgreSQL did not start, a warm-up
login failed).
"""

from __future__ import annotations

import sys
import time
import traceback

from benchmarks import accounting, accounting_spawn, login, posix, spawner, storage


def main() -> int:
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
            bench(print)
        except Exception:
            traceback.print_exc()
            failed.append(name)
        print(f"[{name}] {time.perf_counter() - section:.1f}s")
    print(f"total {time.perf_counter() - start:.1f}s", end="")
    print(f"; could not run: {', '.join(failed)}" if failed else "")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
