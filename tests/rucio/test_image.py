"""The notebook side in the singleuser image: installed, enabled, light to import."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from traitlets.config import PyFileConfigLoader

from tests.test_images import SERVER_CONFIG, SINGLEUSER, parse

ROOT = Path(__file__).resolve().parents[2]
# Packages of the hub side that a docker-stacks singleuser image does not have (the wheel is
# installed there with --no-deps), plus the optional Rucio client and Jupyter Server itself.
NOT_IN_THE_IMAGE = (
    "oauthenticator",
    "kubespawner",
    "kubernetes_asyncio",
    "httpx",
    "jwt",
    "psycopg",
    "dirq",
    "slugify",
    "rucio",
    "jupyter_server",
)


def test_the_notebook_side_imports_without_the_hub_s_dependencies() -> None:
    """What the Dockerfile's import check runs, with the hub-only packages made unimportable."""
    blocker = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        f"        if name.split('.')[0] in {NOT_IN_THE_IMAGE!r}:\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "import iris_jupyterhub.rucio\n"
        "import iris_jupyterhub.rucio.extension\n"
        "import iris_jupyterhub.rucio.helper\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in "
        f"{NOT_IN_THE_IMAGE!r}))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", blocker],
        capture_output=True,
        text=True,
        check=False,
        cwd=ROOT,
        env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


def test_the_image_installs_the_library_and_the_tested_rucio_client() -> None:
    final = parse(SINGLEUSER).final
    runs = " ".join(final.all("RUN"))
    assert "pip install --no-cache-dir --no-deps /tmp/wheels/iris_jupyterhub-*.whl" in runs
    assert "import iris_jupyterhub.rucio.extension" in runs
    args = dict(arg.partition("=")[::2] for arg in final.all("ARG"))
    assert args["RUCIO_CLIENTS_VERSION"] == "41.5.1"
    assert args["RUCIO_JUPYTERLAB_VERSION"] == "", "off by default: it pins notebook<7"


def load_server_config(monkeypatch: pytest.MonkeyPatch, environ: dict[str, str]) -> object:
    for name in ("HOME", "JUPYTERHUB_ROOT_DIR", "IRIS_RUCIO_INSTANCES", "IRIS_RUCIO_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    loader = PyFileConfigLoader(SERVER_CONFIG.name, path=str(SERVER_CONFIG.parent))
    return loader.load_config()


def test_the_server_config_enables_the_extension_and_keeps_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = load_server_config(monkeypatch, {})
    extensions = config.ServerApp.jpserver_extensions  # type: ignore[attr-defined]
    assert extensions.get_value({"jupyterlab": True}) == {
        "jupyterlab": True,
        "iris_jupyterhub.rucio.extension": True,
    }
    assert "RucioConfig" not in config  # type: ignore[operator]


def test_the_server_config_points_rucio_jupyterlab_at_the_token_files(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    instances = [{"name": "ral", "display_name": "RAL", "rucio_host": "https://rucio.ral.example"}]
    environ = {"IRIS_RUCIO_INSTANCES": json.dumps(instances), "IRIS_RUCIO_DIR": "/run/iris-rucio"}
    config = load_server_config(monkeypatch, environ)
    rucio = config.RucioConfig  # type: ignore[attr-defined]
    assert rucio.default_instance == "ral"
    assert rucio.instances[0]["oidc_auth"] == "file"
    assert rucio.instances[0]["oidc_file_name"] == "/run/iris-rucio/ral.token"
