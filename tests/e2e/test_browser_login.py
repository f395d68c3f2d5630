"""Log in with a real browser: Debian's Chromium driven by Playwright, real IdP, hub and proxy.

Chromium comes from apt (``/usr/bin/chromium``, ``make apt-deps``), never from
``playwright install``. Screenshots go to ``test-artifacts/`` (gitignored).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from devstack.browser import ARTIFACTS, chromium
from devstack.configs import IAM_HUB_CONFIG
from devstack.stacks import Stack

playwright_api = pytest.importorskip("playwright.sync_api")


pytestmark = [
    pytest.mark.e2e,
]


@pytest.fixture(scope="module")
def stack(stack_factory: Callable[..., Stack]) -> Stack:
    return stack_factory("iam", IAM_HUB_CONFIG)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context()  # fresh cookies: no session at the hub or the IdP
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def _open_idp_login(page: Any, stack: Stack) -> None:
    """From the hub's login page to the IdP's sign-in form."""
    page.goto(f"{stack.hub.url}/hub/login?next=%2Fhub%2Fhome")
    page.get_by_role("button", name=re.compile(r"^Sign in with")).click()
    page.wait_for_url(f"{stack.idp.base_url}/**")
    playwright_api.expect(page.get_by_label("Username")).to_be_visible()


def test_browser_login(page: Any, stack: Stack) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    _open_idp_login(page, stack)
    page.get_by_label("Username").fill("ada")
    page.get_by_label("Password").fill("ada-pass")
    page.screenshot(path=str(ARTIFACTS / "browser-login-idp.png"), full_page=True)
    page.get_by_role("button", name="Sign in").click()

    page.wait_for_url(f"{stack.hub.url}/hub/home")
    playwright_api.expect(page.get_by_text("aresearcher").first).to_be_visible()
    page.screenshot(path=str(ARTIFACTS / "browser-login-hub.png"), full_page=True)
    cookies = {c["name"] for c in page.context.cookies(stack.hub.url)}
    assert "jupyterhub-session-id" in cookies


def test_browser_deny(page: Any, stack: Stack) -> None:
    _open_idp_login(page, stack)
    with page.expect_response(re.compile(r"/hub/oauth_callback")) as callback:
        page.get_by_role("button", name="Deny").click()
    assert callback.value.status == 403
    playwright_api.expect(page.locator("body")).to_contain_text("access was denied")
    assert page.url.startswith(f"{stack.hub.url}/hub/oauth_callback")
