"""The IRISSpawner form in a real browser: Debian's Chromium driven by Playwright.

A researcher logs in through the IdP's own sign-in page, sees the profiles of her groups,
chooses one with the keyboard and label-based locators only, and gets a pod (in the
Kubernetes stand-in) with the GPU and POSIX group she chose. A researcher outside the GPU
group does not see that profile, and a tampered form gets a readable 403 and no pod.

Chromium comes from apt (``/usr/bin/chromium``), never from ``playwright install``.
Screenshots go to ``test-artifacts/`` (gitignored); the form's also to
``docs/_static/spawn-form.png`` for the admin docs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from devstack.browser import ARTIFACTS, chromium
from devstack.configs import IRIS_SPAWNER_CONFIG as CONFIG
from devstack.hub import REPO_ROOT, spawn_page_status
from devstack.stacks import KubeStack

playwright_api = pytest.importorskip("playwright.sync_api")
expect = playwright_api.expect

DOCS_SCREENSHOT = REPO_ROOT / "docs" / "_static" / "spawn-form.png"

pytestmark = [
    pytest.mark.e2e,
]


@pytest.fixture(scope="module")
def kube_hub_config() -> str:
    return CONFIG


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as launched:
        yield launched


@pytest.fixture
def page(browser: Any) -> Iterator[Any]:
    context = browser.new_context(viewport={"width": 1000, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    yield page
    context.close()


def log_in(page: Any, ks: KubeStack, who: str) -> None:
    """Through the hub's login page and the IdP's sign-in form, to ``/hub/spawn``."""
    hub = ks.hub.url
    page.goto(f"{hub}/hub/login?next=%2Fhub%2Fspawn")
    page.get_by_role("button", name=re.compile(r"^Sign in with")).click()
    page.wait_for_url(f"{ks.stack.idp.base_url}/**")
    page.get_by_label("Username").fill(who)
    page.get_by_label("Password").fill(f"{who}-pass")
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(re.compile(rf"^{re.escape(hub)}/hub/spawn"))


def focused(page: Any) -> dict[str, str]:
    """What has the keyboard focus: tag, name, type, value, id and label texts."""
    return dict(
        page.evaluate(
            """() => {
              const el = document.activeElement;
              const labels = el.labels ? [...el.labels].map(l => l.innerText.trim()) : [];
              return {tag: el.tagName.toLowerCase(), name: el.name || "", type: el.type || "",
                      form: (el.form && el.form.id) || "",
                      value: el.value || "", id: el.id || "", label: labels.join(" | ")};
            }"""
        )
    )


def tab_order(page: Any, limit: int = 40) -> list[dict[str, str]]:
    """The elements reached by pressing Tab from the top of the page, up to Start."""
    page.locator("body").focus()
    seen: list[dict[str, str]] = []
    for _ in range(limit):
        page.keyboard.press("Tab")
        here = focused(page)
        seen.append(here)
        if (here["type"] == "submit" and here["form"]) or here["tag"] == "body":
            break
    return seen


def posix_of(ks: KubeStack, name: str) -> dict[str, Any]:
    return dict(ks.hub.api("GET", f"/users/{name}").json()["auth_state"]["posix"])


def test_ada_chooses_gpu_profile_and_group_with_the_keyboard(
    page: Any, kube_stack: KubeStack
) -> None:
    ks = kube_stack
    ARTIFACTS.mkdir(exist_ok=True)
    log_in(page, ks, "ada")
    form = page.locator("form#spawn_form")
    expect(form.get_by_role("heading", name="Standard")).to_be_visible()
    expect(form.get_by_role("heading", name="LSST GPU")).to_be_visible()
    group = page.get_by_label("Run as group")
    expect(group).to_be_visible()
    expect(group).to_have_accessible_description(re.compile("New files are owned by this group"))
    account = posix_of(ks, "aresearcher")
    # the group usage is charged to: for the default (Standard, open to all, run as the
    # personal group) the group that admitted ada, rendered by the hub without script too
    charge = page.locator("#iris-charge")
    expect(charge).to_have_text("Usage is charged to iris")
    served = page.request.get(f"{ks.hub.url}/hub/spawn").text()
    assert re.search(r'id="iris-charge"[^>]*>Usage is charged to iris</p>', served)
    assert group.locator("option").evaluate_all("os => os.map(o => o.value)") == [
        g["name"] for g in account["groups"]
    ]
    assert "iris-lsst" in [g["name"] for g in account["groups"]]
    # the labels of KubeSpawner's option fields are associated with them
    image = page.get_by_label("Image", exact=True)
    expect(image).to_have_attribute("name", "profile-option-standard--image")
    expect(
        page.get_by_label("Custom image", exact=True)
    ).to_be_hidden()  # until "Other..." is chosen
    page.screenshot(path=str(ARTIFACTS / "spawn-form-ada.png"), full_page=True)
    DOCS_SCREENSHOT.parent.mkdir(exist_ok=True)
    title = page.get_by_role("heading", name="Server Options").bounding_box()
    box = form.bounding_box()
    assert title is not None
    assert box is not None
    pad = 16
    page.screenshot(  # the heading and the form, for the admin docs
        path=str(DOCS_SCREENSHOT),
        clip={
            "x": box["x"] - pad,
            "y": title["y"] - pad,
            "width": box["width"] + 2 * pad,
            "height": box["y"] + box["height"] - title["y"] + 2 * pad,
        },
    )

    # Tab from the top reaches the profile radios, the image select, the group select
    # and the Start button, in that order (hidden fields are skipped)
    reached = [(f["tag"], f["name"] or f["type"]) for f in tab_order(page) if f["form"]]
    wanted = [
        ("input", "profile"),
        ("select", "profile-option-standard--image"),
        ("select", "group"),
        ("button", "submit"),
    ]
    assert reached == wanted, reached

    # choose with the keyboard only: back to the radios, arrow to "LSST GPU", then the group
    page.get_by_label("Run as group").focus()
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Shift+Tab")
    assert focused(page)["name"] == "profile"
    page.keyboard.press("ArrowDown")
    expect(page.get_by_role("radio", name="LSST GPU")).to_be_checked()
    expect(charge).to_have_text("Usage is charged to iris/lsst")  # the profile's group
    page.keyboard.press("Tab")
    assert focused(page)["name"] == "group"
    dune = next(g["name"] for g in account["groups"] if g.get("canonical") == "dune")
    group.select_option(dune)
    expect(charge).to_have_text("Usage is charged to dune")  # the group run as
    group.select_option("iris-lsst")
    expect(charge).to_have_text("Usage is charged to iris/lsst")
    page.keyboard.press("Tab")
    assert (focused(page)["type"], focused(page)["form"]) == ("submit", "spawn_form")
    before = len(ks.pod_manifests_of("aresearcher"))
    try:
        page.keyboard.press("Enter")
        page.wait_for_url(
            re.compile(r"/(hub/spawn-pending|user)/aresearcher/"), wait_until="commit"
        )
        ks.wait_ready("aresearcher")
        page.wait_for_url(re.compile(r"/user/aresearcher/"), wait_until="commit")

        pods = ks.pod_manifests_of("aresearcher")
        assert len(pods) == before + 1
        pod = pods[-1]
        assert not ks.kube.validation_errors()
        gid = next(g["gid"] for g in account["groups"] if g["name"] == "iris-lsst")
        assert pod["spec"]["securityContext"]["runAsGroup"] == gid
        assert pod["spec"]["securityContext"]["runAsUser"] == account["uid"]
        limits = pod["spec"]["containers"][0]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == "1"

        # stop it from the hub's home page (JupyterHub's "Stop My Server" is an <a> without
        # href or tabindex, so it cannot be reached with the keyboard: click it)
        page.goto(f"{ks.hub.url}/hub/home")
        page.get_by_role("button", name="Stop My Server").click()
        expect(page.get_by_role("button", name="Start My Server")).to_be_visible(timeout=30_000)
        assert ks.server_model("aresearcher") is None
    finally:
        if ks.server_model("aresearcher") is not None:
            ks.stop_server("aresearcher")


def test_bob_does_not_see_the_gpu_profile_and_a_tampered_form_is_refused(
    page: Any, kube_stack: KubeStack
) -> None:
    ks = kube_stack
    ARTIFACTS.mkdir(exist_ok=True)
    log_in(page, ks, "bob")
    form = page.locator("form#spawn_form")
    expect(form.get_by_role("heading", name="Standard")).to_be_visible()
    expect(form).not_to_contain_text("LSST GPU")
    assert page.locator("input[name=profile]").evaluate_all("rs => rs.map(r => r.value)") == [
        "standard"
    ]

    # forge the form: the only radio now says "lsst-gpu"
    page.evaluate(
        """() => {
          const radio = document.querySelector('input[name="profile"]');
          radio.value = "lsst-gpu";
          radio.checked = true;
        }"""
    )
    before = len(ks.kube.created_pods())
    with page.expect_response(re.compile(r"/hub/spawn")) as answer:
        page.get_by_role("button", name="Start").click()
    assert answer.value.status == spawn_page_status(403)
    expect(page.locator("body")).to_contain_text("'lsst-gpu' is not available to you")
    expect(page.locator("body")).to_contain_text("choose one of: standard")
    page.screenshot(path=str(ARTIFACTS / "spawn-form-bob-403.png"), full_page=True)
    assert len(ks.kube.created_pods()) == before
    assert ks.server_model("bbuilder") is None
