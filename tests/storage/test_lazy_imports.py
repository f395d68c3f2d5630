"""The OpenStack clients load only when storage is used: importing the spawner is cheap."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from devstack.hub import REPO_ROOT

HEAVY = (
    "httpx",
    "iris_jupyterhub.storage.keystone",
    "iris_jupyterhub.storage.manila",
    "iris_jupyterhub.storage.service",
    "iris_jupyterhub.storage.shares",
)


def loaded_after(statement: str) -> list[str]:
    """The modules of HEAVY in sys.modules after ``statement`` in a fresh interpreter."""
    probe = f"import json, sys\n{statement}\nprint(json.dumps(sorted(sys.modules)))"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True
    ).stdout
    return [name for name in json.loads(out.splitlines()[-1]) if name in HEAVY]


@pytest.mark.parametrize(
    "statement",
    [
        "import iris_jupyterhub.spawner",
        "import iris_jupyterhub.storage",
        "from iris_jupyterhub.spawner import IRISSpawner",
        "from iris_jupyterhub.storage import ManilaStorage, PodStorage, prepare_storage",
    ],
)
def test_importing_does_not_load_the_openstack_clients(statement: str) -> None:
    assert loaded_after(statement) == []


def test_the_clients_load_on_first_use() -> None:
    loaded = loaded_after("from iris_jupyterhub.storage import ManilaClient")
    assert {"httpx", "iris_jupyterhub.storage.manila"} <= set(loaded)
    assert "iris_jupyterhub.storage.service" not in loaded
    loaded = loaded_after("import iris_jupyterhub.storage as s; s.StorageService")
    assert set(HEAVY) <= set(loaded)


def test_every_public_name_resolves() -> None:
    from iris_jupyterhub import storage

    for name in storage.__all__:
        assert getattr(storage, name) is not None, name
    assert set(storage.__all__) <= set(dir(storage))
    with pytest.raises(AttributeError, match="no_such_name"):
        storage.no_such_name  # type: ignore[attr-defined]  # noqa: B018
