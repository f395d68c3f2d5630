"""Process bookkeeping for the demo: process groups, descendants, a clean stop.

Descendants are found through ``/proc`` (Linux). Elsewhere only the direct children and
their process groups are stopped, and JupyterHub's own clean-up stops the servers it started.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from pathlib import Path

__all__ = ["Recorded", "alive", "descendants", "terminate"]

#: pid -> start time (clock ticks since boot), so a re-used pid is never signalled.
Recorded = dict[int, int]

_PROC = Path("/proc")


def _stat(pid: int) -> tuple[str, int, int] | None:
    """(state, ppid, start time) of ``pid`` from ``/proc/<pid>/stat``, or None."""
    try:
        text = (_PROC / str(pid) / "stat").read_text()
    except (OSError, ValueError):
        return None
    fields = text[text.rfind(")") + 2 :].split()
    # fields[0] is field 3 of proc(5): state; ppid is field 4, starttime field 22
    return fields[0], int(fields[1]), int(fields[19])


def descendants(roots: list[int]) -> Recorded:
    """Every live process below ``roots`` (not the roots themselves)."""
    if not _PROC.is_dir():
        return {}
    children: dict[int, list[tuple[int, int]]] = {}
    for entry in _PROC.iterdir():
        if not entry.name.isdigit():
            continue
        info = _stat(int(entry.name))
        if info is not None and info[0] != "Z":
            children.setdefault(info[1], []).append((int(entry.name), info[2]))
    found: Recorded = {}
    todo = list(roots)
    while todo:
        for pid, start in children.get(todo.pop(), []):
            if pid not in found:
                found[pid] = start
                todo.append(pid)
    return found


def alive(pid: int, start: int | None = None) -> bool:
    """True if ``pid`` runs (not a zombie) and, if given, started at ``start``."""
    info = _stat(pid)
    if info is None:
        if _PROC.is_dir():
            return False
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    return info[0] != "Z" and (start is None or info[2] == start)


def terminate(recorded: Recorded, timeout: float = 10) -> None:
    """SIGTERM the recorded processes still alive, then SIGKILL what is left after ``timeout``."""
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        left = [pid for pid, start in recorded.items() if alive(pid, start)]
        if not left:
            return
        for pid in left:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline and any(alive(p, recorded[p]) for p in left):
            time.sleep(0.1)
