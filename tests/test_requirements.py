"""A plain ``pip install iris-jupyterhub`` gives everything the library imports.

Defect 1 of issue 11: KubeSpawner and python-slugify were only in the ``kubernetes`` extra,
so ``c.JupyterHub.spawner_class = "iris"`` failed with ``No module named 'slugify'``.
These tests read the requirements of the distribution built from this source tree (not
the metadata of whatever is installed, which may be stale) and check every third-party
top-level import of ``iris_jupyterhub/`` against its unconditional requirements.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from functools import cache
from importlib.metadata import PathDistribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

REPO_ROOT = Path(__file__).resolve().parents[1]
PACKAGE = REPO_ROOT / "iris_jupyterhub"


@cache
def built_requirements(tmp: str) -> list[Requirement]:
    """The requirements in the metadata setuptools builds from the source tree (egg_info,
    written to ``tmp``: the setup.cfg of this tree, whatever is installed)."""
    setup = "from setuptools import setup; setup()"
    subprocess.run(
        [sys.executable, "-c", setup, "-q", "egg_info", "--egg-base", tmp],
        cwd=REPO_ROOT,
        capture_output=True,
        check=True,
    )
    (egg_info,) = Path(tmp).glob("*.egg-info")
    return [Requirement(line) for line in PathDistribution(egg_info).requires or []]


def unconditional(requirements: list[Requirement]) -> set[str]:
    """Names of requirements without a marker (no extra, no python_version condition)."""
    return {str(canonicalize_name(r.name)) for r in requirements if r.marker is None}


def third_party_imports() -> dict[str, list[str]]:
    """Top-level modules imported anywhere in the package (lazily too), and where."""
    found: dict[str, list[str]] = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                if top != "iris_jupyterhub" and top not in sys.stdlib_module_names:
                    found.setdefault(top, []).append(str(path.relative_to(REPO_ROOT)))
    return found


def test_the_spawner_needs_no_extra(tmp_path: Path) -> None:
    required = unconditional(built_requirements(str(tmp_path)))
    assert {"jupyterhub-kubespawner", "python-slugify", "kubernetes-asyncio"} <= required


def test_every_import_is_an_unconditional_requirement(tmp_path: Path) -> None:
    required = unconditional(built_requirements(str(tmp_path)))
    providers = packages_distributions()
    missing: dict[str, tuple[list[str], list[str]]] = {}
    for module, where in third_party_imports().items():
        names = {str(canonicalize_name(d)) for d in providers.get(module, [])}
        if not names & required:
            missing[module] = (sorted(names) or ["<not installed>"], where[:3])
    assert not missing, f"imported but not in install_requires: {missing}"


def test_the_scan_sees_the_imports_that_matter() -> None:
    imports = third_party_imports()
    assert {"kubespawner", "slugify", "jupyterhub", "httpx", "sqlalchemy"} <= set(imports)
    assert "os" not in imports
    assert "iris_jupyterhub" not in imports
