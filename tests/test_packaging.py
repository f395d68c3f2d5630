"""The wheel holds the library only: built from the source tree and listed.

The development stack (``devstack/``), the tests and the benchmarks live beside the library in
the checkout; none of them may ship, and the library must never import them.
"""

from __future__ import annotations

import ast
import configparser
import importlib
import importlib.util
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
LIBRARY = REPO_ROOT / "iris_jupyterhub"
DEVELOPMENT_ONLY = {"devstack", "tests", "benchmarks", "demo"}
#: Never copied into the build directory: environments, caches and earlier build output.
_NOT_SOURCE = shutil.ignore_patterns(
    ".git",
    ".venv*",
    "node_modules",
    "__pycache__",
    "*.egg-info",
    "build",
    "dist",
    "_build",
    ".demo",
    ".*_cache",
)

ENTRY_POINTS = {
    "console_scripts": {"iris-jupyterhub": "iris_jupyterhub.cli:main"},
    "jupyterhub.authenticators": {
        "iris-oidc": "iris_jupyterhub.auth:OIDCAuthenticator",
        "iris-iam": "iris_jupyterhub.auth:IAMAuthenticator",
        "egi-checkin": "iris_jupyterhub.auth:EGICheckinAuthenticator",
    },
    "jupyterhub.spawners": {"iris": "iris_jupyterhub.spawner:IRISSpawner"},
}


@dataclass(frozen=True)
class Wheel:
    names: list[str]
    dist_info: str

    def read(self, name: str, path: Path) -> str:
        with zipfile.ZipFile(path) as archive:
            return archive.read(f"{self.dist_info}/{name}").decode()


def _can_build_without_isolation() -> bool:
    """setuptools >= 68 (the declared build requirement) with ``bdist_wheel`` in this
    interpreter: then the build needs no package index."""
    try:
        setuptools = tuple(int(p) for p in metadata.version("setuptools").split(".")[:2])
    except metadata.PackageNotFoundError:
        return False
    if setuptools >= (70, 1):  # bdist_wheel moved into setuptools
        return True
    return setuptools >= (68, 0) and importlib.util.find_spec("wheel") is not None


@pytest.fixture(scope="module")
def wheel_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel pip builds from a copy of the checkout (the build writes ``build/`` and
    ``*.egg-info`` beside the sources; the checkout stays clean)."""
    source = tmp_path_factory.mktemp("source") / "iris-jupyterhub"
    shutil.copytree(REPO_ROOT, source, ignore=_NOT_SOURCE)
    out = tmp_path_factory.mktemp("wheel")
    cmd = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(out)]
    if _can_build_without_isolation():
        cmd.append("--no-build-isolation")
    build = subprocess.run([*cmd, str(source)], capture_output=True, text=True, check=False)
    assert build.returncode == 0, f"{' '.join(cmd)} failed:\n{build.stdout}\n{build.stderr}"
    (wheel,) = out.glob("iris_jupyterhub-*.whl")
    return wheel


@pytest.fixture(scope="module")
def wheel(wheel_path: Path) -> Wheel:
    with zipfile.ZipFile(wheel_path) as archive:
        names = archive.namelist()
    (dist_info,) = {n.split("/")[0] for n in names if n.split("/")[0].endswith(".dist-info")}
    return Wheel(names, dist_info)


def test_the_wheel_holds_the_library_and_its_metadata_only(wheel: Wheel) -> None:
    assert wheel.dist_info.startswith("iris_jupyterhub-")
    outside = [
        n for n in wheel.names if not n.startswith(("iris_jupyterhub/", f"{wheel.dist_info}/"))
    ]
    assert outside == []
    development = [n for n in wheel.names if DEVELOPMENT_ONLY & set(n.split("/"))]
    assert development == []


def test_every_library_file_ships(wheel: Wheel) -> None:
    """Code, the typing marker, both Alembic migration trees and any templates."""
    sources = {
        p.relative_to(REPO_ROOT).as_posix()
        for p in LIBRARY.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts and p.suffix != ".pyc"
    }
    assert sources - set(wheel.names) == set()
    for required in (
        "iris_jupyterhub/py.typed",
        "iris_jupyterhub/posix/migrations/env.py",
        "iris_jupyterhub/posix/migrations/script.py.mako",
        "iris_jupyterhub/accounting/migrations/env.py",
        "iris_jupyterhub/accounting/migrations/script.py.mako",
    ):
        assert required in wheel.names
    for tree in ("posix", "accounting"):
        versions = [
            n
            for n in wheel.names
            if n.startswith(f"iris_jupyterhub/{tree}/migrations/versions/")
            and not n.endswith("__init__.py")
        ]
        assert versions, f"no {tree} migration revisions in the wheel"


def test_entry_points_name_the_plugins_and_the_command(wheel: Wheel, wheel_path: Path) -> None:
    parser = configparser.ConfigParser(delimiters=("=",))
    parser.optionxform = str  # type: ignore[assignment,method-assign]  # keep case
    parser.read_string(wheel.read("entry_points.txt", wheel_path))
    declared = {group: dict(parser[group]) for group in parser.sections()}
    assert declared == ENTRY_POINTS
    for group in ENTRY_POINTS.values():
        for target in group.values():
            module, _, attribute = target.partition(":")
            assert callable(getattr(importlib.import_module(module), attribute)), target


def _imported_modules(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
        elif (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute | ast.Name)
            and getattr(node.func, "attr", getattr(node.func, "id", "")) == "import_module"
            and node.args
            and isinstance(node.args[0], ast.Constant)
            and isinstance(node.args[0].value, str)
        ):
            names.add(node.args[0].value)
    return names


def test_the_library_never_imports_development_code() -> None:
    offenders = {
        f"{path.relative_to(REPO_ROOT)}: {name}"
        for path in LIBRARY.rglob("*.py")
        for name in _imported_modules(path)
        if name.split(".")[0] in DEVELOPMENT_ONLY
    }
    assert offenders == set()


def test_the_development_stack_and_benchmarks_never_import_tests() -> None:
    """``devstack/`` is the one stack ``make demo``, the tests and the benchmarks share."""
    offenders = {
        f"{path.relative_to(REPO_ROOT)}: {name}"
        for package in ("devstack", "benchmarks")
        for path in (REPO_ROOT / package).rglob("*.py")
        for name in _imported_modules(path)
        if name.split(".")[0] == "tests"
    }
    assert offenders == set()
