"""Golden files: compare, or rewrite with ``IRIS_UPDATE_GOLDEN=1`` (then review the diff)."""

from __future__ import annotations

import os
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent / "golden"


def check_golden(name: str, text: str) -> None:
    """``text`` must equal ``golden/<name>`` byte for byte."""
    path = GOLDEN / name
    if os.environ.get("IRIS_UPDATE_GOLDEN") == "1":
        path.write_bytes(text.encode("utf-8"))
    assert path.read_bytes() == text.encode("utf-8"), f"{name} differs from the golden file"
