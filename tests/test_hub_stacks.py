"""The supported hub stacks: the z2jh hub images' pinned requirements (copied into the repo as
``requirements-z2jh-<chart version>.txt``) and the library's ``install_requires``.

``make test-stacks`` installs each stack and runs the whole-stack tests on it; these tests
check, without installing anything, that the bounds admit every pinned version (issue 12:
``jupyterhub>=5.5`` made pip upgrade the z2jh 4.2.0 hub's JupyterHub 5.3.0), that the copies
are the chart's files, and the helpers ``make test-stacks`` uses (:mod:`devstack.pins`).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from packaging.utils import canonicalize_name
from packaging.version import Version

from devstack.pins import differences, extra_requirements, parse_pins, read_pins, stack_tools
from tests.test_requirements import built_requirements

REPO_ROOT = Path(__file__).resolve().parents[1]
STACKS = {"4.2.0": "5.3.0", "4.4.0": "5.5.0"}  # chart version: its hub image's JupyterHub
SHARED = REPO_ROOT.parent / "shared"


def pin_file(chart: str) -> Path:
    return REPO_ROOT / f"requirements-z2jh-{chart}.txt"


@pytest.mark.parametrize(("chart", "jupyterhub"), sorted(STACKS.items()))
def test_the_pin_file_is_the_hub_image_of_that_chart(chart: str, jupyterhub: str) -> None:
    assert read_pins(pin_file(chart))["jupyterhub"] == jupyterhub


@pytest.mark.parametrize("chart", sorted(STACKS))
def test_the_pin_file_is_a_copy_of_the_charts_own(chart: str) -> None:
    original = SHARED / f"z2jh-{chart}" / "images" / "hub" / "requirements.txt"
    if not original.exists():
        pytest.skip(f"{original} is not beside this checkout")
    assert pin_file(chart).read_bytes() == original.read_bytes()


@pytest.mark.parametrize(
    "pins",
    [*(f"requirements-z2jh-{chart}.txt" for chart in sorted(STACKS)), "requirements-test.txt"],
)
def test_install_requires_admits_every_pinned_version(pins: str, tmp_path: Path) -> None:
    pinned = read_pins(REPO_ROOT / pins)
    refused = {
        str(r): pinned[name]
        for r in built_requirements(str(tmp_path))
        if r.marker is None
        and (name := str(canonicalize_name(r.name))) in pinned
        and pinned[name] not in r.specifier
    }
    assert not refused, f"{pins}: install_requires would change these pinned versions: {refused}"


def test_the_lower_bounds_are_the_oldest_versions_a_stack_proves(tmp_path: Path) -> None:
    """A lower bound below the oldest tested version claims support nobody tested; one above
    it would make pip upgrade that hub image's package."""
    stacks = [read_pins(pin_file(chart)) for chart in sorted(STACKS)]
    wrong = {}
    for requirement in built_requirements(str(tmp_path)):
        name = str(canonicalize_name(requirement.name))
        tested = [Version(pins[name]) for pins in stacks if name in pins]
        if requirement.marker is not None or not tested:
            continue
        lower = [Version(s.version) for s in requirement.specifier if s.operator == ">="]
        if lower != [min(tested)]:
            wrong[str(requirement)] = str(min(tested))
    assert not wrong, f"lower bound: oldest version tested {wrong}"


def test_the_makefile_tests_every_pinned_stack() -> None:
    makefile = (REPO_ROOT / "Makefile").read_text(encoding="utf-8")
    listed = re.search(r"^Z2JH_STACKS\s*:=\s*(.*)$", makefile, re.MULTILINE)
    assert listed is not None
    files = {
        p.name[len("requirements-z2jh-") : -len(".txt")]
        for p in REPO_ROOT.glob("requirements-z2jh-*.txt")
    }
    assert set(listed.group(1).split()) == files == set(STACKS)


def test_the_stack_tools_leave_out_what_the_image_pins() -> None:
    pins = read_pins(pin_file("4.2.0"))
    tools = stack_tools(pins, extra_requirements())
    names = {line.split("==")[0].split("[")[0] for line in tools}
    assert {"pytest", "playwright", "psycopg"} <= names
    assert "cryptography==50.0.2" in extra_requirements()
    assert not names & {"cryptography", "jsonschema"}
    assert pins["cryptography"] == "44.0.2"


def test_pins_are_read_by_canonical_name_and_comments_skipped() -> None:
    text = "#\n# header\nRuamel.YAML==0.18.10\n    # via oauthenticator\nPyJWT==2.10.1  # note\n"
    assert parse_pins(text) == {"ruamel-yaml": "0.18.10", "pyjwt": "2.10.1"}


@pytest.mark.parametrize("line", ["jupyterhub>=5.3", "jupyterhub", "not a requirement!"])
def test_a_line_that_is_not_an_exact_pin_is_refused(line: str) -> None:
    with pytest.raises(ValueError, match="line 2"):
        parse_pins(f"# header\n{line}\n")


def test_every_changed_or_missing_pin_is_named() -> None:
    pins = {"jupyterhub": "5.3.0", "tornado": "6.4.2", "statsd": "4.0.1"}
    installed = {"jupyterhub": "5.5.4", "tornado": "6.4.2", "httpx": "0.28.1"}
    assert differences(pins, installed) == [
        "jupyterhub==5.3.0 is pinned but jupyterhub 5.5.4 is installed",
        "statsd==4.0.1 is pinned but not installed",
    ]
    assert differences(pins, {**installed, "jupyterhub": "5.3.0", "statsd": "4.0.1"}) == []
