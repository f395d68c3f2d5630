"""Suite-wide pytest hooks: how the tests are shared out between pytest-xdist workers.

``make test`` runs the suite with ``-n 4 --dist loadgroup`` (``PYTEST_WORKERS``). A test that
uses a module-scoped fixture of this repository (a whole stack: IdP, hub, proxy, Kubernetes
stand-in, a rendered chart, a built wheel, ...) puts its whole module in the module's
``xdist_group``, so one worker runs the whole module in file order and builds the fixture
once, exactly as a serial run does.
Every other test is its own unit of work and goes to whichever worker is free. Without
pytest-xdist (``-n 0``, or a plain ``pytest``) the marks change nothing.

Session-scoped fixtures (the PostgreSQL server of ``tests/posix/conftest.py``) are built once
per worker; every fixture and stand-in takes free ports and its own temporary directory, so
workers never share a port, a file or a database.
"""

from __future__ import annotations

from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
#: Where the fixtures that make a module one unit of work are defined.
OWN_CODE = (REPO_ROOT / "tests", REPO_ROOT / "devstack", REPO_ROOT / "benchmarks")


def _is_own(path: str | None) -> bool:
    if not path:
        return False
    resolved = Path(path).resolve()
    return any(resolved.is_relative_to(root) for root in OWN_CODE)


def shares_a_module_fixture(item: pytest.Item) -> bool:
    """Whether ``item`` uses a module-scoped fixture defined in this repository."""
    info = getattr(item, "_fixtureinfo", None)
    if info is None:
        return False
    for definitions in info.name2fixturedefs.values():
        for definition in definitions:
            code = getattr(definition.func, "__code__", None)
            if definition.scope == "module" and _is_own(code and code.co_filename):
                return True
    return False


@pytest.hookimpl(tryfirst=True)  # before pytest-xdist reads the xdist_group marks
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Every test of a module where any test uses a module-scoped fixture goes in the
    module's group: a test may reach the fixture only at run time
    (``request.getfixturevalue``), and some tests rely on the file order of their module."""
    modules = {item.nodeid.split("::", 1)[0] for item in items if shares_a_module_fixture(item)}
    for item in items:
        module = item.nodeid.split("::", 1)[0]
        if module in modules and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group(module))
