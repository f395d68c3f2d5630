"""The supported hub stacks (``make test-stacks``): a pin file is a hub image's
``requirements.txt`` (``requirements-z2jh-<chart version>.txt``, copied from the z2jh chart's
``images/hub/requirements.txt``), and a stack virtualenv must hold exactly those versions.

* ``python -m devstack.pins tools PINS`` prints the test tools to install into a stack (the
  ``test`` extra of ``setup.cfg``) without those the pin file pins: the image's pins win, so a
  tool pinned differently (``cryptography``, ``jsonschema``) is tested at the image's version;
* ``python -m devstack.pins check PINS`` (run with the stack's own Python) fails, listing every
  difference, unless each pinned distribution is installed at its pinned version.
"""

from __future__ import annotations

import argparse
import configparser
import sys
from collections.abc import Iterable, Mapping
from importlib.metadata import distributions
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[1]


def parse_pins(text: str) -> dict[str, str]:
    """``name==version`` lines of a pip-compile output, by canonical name (comments and
    ``# via`` lines skipped); anything else that is not a comment is an error."""
    pins: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement as err:
            raise ValueError(f"line {number}: {raw!r} is not a requirement ({err})") from None
        specifiers = list(requirement.specifier)
        if len(specifiers) != 1 or specifiers[0].operator != "==":
            raise ValueError(f"line {number}: {raw!r} is not an exact pin (name==version)")
        pins[str(canonicalize_name(requirement.name))] = specifiers[0].version
    return pins


def read_pins(path: Path) -> dict[str, str]:
    return parse_pins(path.read_text(encoding="utf-8"))


def extra_requirements(extra: str = "test") -> list[str]:
    """The requirement lines of an extra in this checkout's ``setup.cfg``."""
    parser = configparser.ConfigParser()
    parser.read(REPO_ROOT / "setup.cfg", encoding="utf-8")
    text = parser.get("options.extras_require", extra)
    return [line.strip() for line in text.splitlines() if line.strip()]


def stack_tools(pins: Mapping[str, str], requirements: Iterable[str]) -> list[str]:
    """``requirements`` without those naming a pinned distribution (the pins win)."""
    return [
        line for line in requirements if str(canonicalize_name(Requirement(line).name)) not in pins
    ]


def installed_versions() -> dict[str, str]:
    """Every distribution this interpreter sees, by canonical name."""
    return {
        str(canonicalize_name(dist.metadata["Name"])): dist.version
        for dist in distributions()
        if dist.metadata["Name"]
    }


def differences(pins: Mapping[str, str], installed: Mapping[str, str]) -> list[str]:
    """One sentence per pinned distribution missing or installed at another version."""
    found = []
    for name, version in sorted(pins.items()):
        have = installed.get(name)
        if have is None:
            found.append(f"{name}=={version} is pinned but not installed")
        elif have != version:
            found.append(f"{name}=={version} is pinned but {name} {have} is installed")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devstack.pins", description=__doc__)
    parser.add_argument("command", choices=["tools", "check"])
    parser.add_argument("pins", type=Path, help="a hub image's requirements.txt")
    args = parser.parse_args(argv)
    pins = read_pins(args.pins)
    if args.command == "tools":
        dropped = sorted(set(extra_requirements()) - set(stack_tools(pins, extra_requirements())))
        print(f"# test tools for {args.pins}; pinned there, so left out: {dropped}")
        print("\n".join(stack_tools(pins, extra_requirements())))
        return 0
    problems = differences(pins, installed_versions())
    if problems:
        print(f"{args.pins}: the stack's pinned versions changed:", file=sys.stderr)
        print("\n".join(f"  {p}" for p in problems), file=sys.stderr)
        return 1
    print(f"{args.pins}: all {len(pins)} pinned versions installed unchanged ({sys.executable})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
