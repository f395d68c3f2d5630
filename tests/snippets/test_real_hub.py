"""A real hub (devstack ``HubProcess``) configured only by the templates, as a plain drop-in.

The hub's ``jupyterhub_config.py`` loads every template but ``11-egi-checkin.py`` with
``load_subconfig`` and ends with ``check_config(c)``, as docs/admin/snippets.md says; the
settings come from the environment only. The hub must start, list the accounting service
the template registered, and that service (loading the hub's file again, with the
environment the template gave it) must write its first XDMoD export.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from devstack.hub import HubProcess
from devstack.idp import free_port
from tests.snippets.loaders import SNIPPETS

pytestmark = pytest.mark.e2e


def test_hub_starts_from_the_templates(tmp_path: Path) -> None:
    names = sorted(p.name for p in SNIPPETS.glob("[0-9]*.py") if p.name != "11-egi-checkin.py")
    loads = "".join(f"load_subconfig({str(SNIPPETS / n)!r})\n" for n in names)
    config = loads + "from iris_jupyterhub.startup import check_config\ncheck_config(c)\n"
    xdmod = tmp_path / "xdmod"
    env = {
        "IRIS_HUB_URL": "http://127.0.0.1:8000",
        "IRIS_IAM_ISSUER": "http://127.0.0.1:9/",  # never contacted at start-up
        "IRIS_IAM_CLIENT_ID": "hub",
        "IRIS_IAM_CLIENT_SECRET": "s3cret",
        "IRIS_IAM_ALLOWED_GROUPS": "iris",
        "IRIS_REGISTRY_DB_URL": f"sqlite:///{tmp_path}/registry.sqlite",
        "IRIS_GPU_GROUPS": "iris/gpu",
        "OS_AUTH_URL": "http://127.0.0.1:9/v3",
        "OS_APPLICATION_CREDENTIAL_ID": "app",
        "OS_APPLICATION_CREDENTIAL_SECRET": "app-secret",
        "OS_REGION_NAME": "RegionOne",
        "IRIS_ACCOUNTING_XDMOD_DIR": str(xdmod),
        "IRIS_RUCIO_INSTANCE_LIST": "[{name: ral, rucio_host: 'https://r.example', groups: [i]}]",
    }
    hub = HubProcess(tmp_path / "hub", free_port(), config, env=env)
    try:
        hub.start(timeout=90)
        config_file = tmp_path / "hub" / "jupyterhub_config.py"
        deadline = time.monotonic() + 60
        while not (xdmod.is_dir() and any(xdmod.iterdir())) and time.monotonic() < deadline:
            time.sleep(0.5)
        log = hub.log_text()
        assert "Starting managed service iris-accounting" in log
        assert f"iris_jupyterhub.accounting.service --config {config_file}" in log
        assert xdmod.is_dir(), hub.log_tail()
        assert [p.name for p in xdmod.iterdir()], hub.log_tail()  # the first export
        assert "was loaded with load_subconfig" in log  # 99-iris-check.py said what to do
    finally:
        hub.stop()
