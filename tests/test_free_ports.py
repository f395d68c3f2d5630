"""``devstack.idp.free_port``: the ports every stand-in, hub and proxy of the tests listens on.

The port is closed again before the server binds it, and the kernel hands a just-closed port
out again, so the hub's proxy and the IdP of one stack were once given the same port
(EADDRINUSE, under pytest-xdist). No process may be given a port twice, and no two xdist
workers the same port.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

from devstack.hub import REPO_ROOT
from devstack.idp import free_port

DRAWS = 2000


def test_one_process_never_gets_the_same_port_twice() -> None:
    ports = [free_port() for _ in range(DRAWS)]
    assert len(set(ports)) == DRAWS


def _ports_of_worker(index: int, workers: int) -> set[int]:
    code = "import json; from devstack.idp import free_port; "
    code += f"print(json.dumps([free_port() for _ in range({DRAWS // 4})]))"
    env = dict(os.environ, PYTEST_XDIST_WORKER=f"gw{index}")
    env["PYTEST_XDIST_WORKER_COUNT"] = str(workers)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO_ROOT), env.get("PYTHONPATH")]))
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    return set(json.loads(out.stdout))


def test_xdist_workers_never_share_a_port() -> None:
    workers = 4
    drawn = [_ports_of_worker(index, workers) for index in range(workers)]
    assert all(len(ports) == DRAWS // 4 for ports in drawn)
    for index, ports in enumerate(drawn):
        for other in drawn[index + 1 :]:
            assert not ports & other
