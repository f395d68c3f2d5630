"""Debian's Chromium driven by Playwright: shared launch settings and fixtures' helper.

Chromium comes from apt (``/usr/bin/chromium``, installed by ``make apt-deps``), never from
``playwright install``. Running as root needs ``--no-sandbox``; the other flags keep the
browser from reaching for the network this machine does not have. Under CI a missing
browser is a failure, never a silent skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from devstack.hub import REPO_ROOT

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless",
    "--disable-dev-shm-usage",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
]
ARTIFACTS = REPO_ROOT / "test-artifacts"


def require_chromium() -> None:
    """Skip (locally) or fail (CI) when Debian's Chromium is not installed."""
    if CHROMIUM.exists():
        return
    message = "Debian chromium missing: run `make apt-deps`"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@contextmanager
def chromium() -> Iterator[Any]:
    """A headless Chromium browser (Playwright sync API)."""
    require_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield browser
        finally:
            browser.close()
