"""``configure_hub``: the custom scope, the grant to users and to server tokens, on the
configuration shapes of JupyterHub 6 and 5 (z2jh 4.2.0/4.4.0), loaded by JupyterHub itself."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from jupyterhub import version_info
from jupyterhub.app import JupyterHub
from traitlets.config import Config

from iris_jupyterhub.rucio import SCOPE, USER_SCOPE, configure_hub
from iris_jupyterhub.rucio.hub import server_token_scopes

SERVER_ROLE = ["users:activity!user", "access:servers!server"]
RAL = {"name": "ral", "rucio_host": "https://rucio.example.ac.uk", "groups": ["iris"]}


@pytest.mark.skipif(version_info < (6,), reason="extra_user_scopes is new in JupyterHub 6")
def test_jupyterhub_6_uses_extra_user_scopes() -> None:
    c = Config()
    configure_hub(c, [RAL], jupyterhub_major=6)
    assert c.RucioTokens.instances == [RAL]
    assert "load_roles" not in c.JupyterHub
    assert c.Spawner.server_token_scopes == [*SERVER_ROLE, USER_SCOPE]
    # and JupyterHub takes it (the trait values as the hub sees them)
    app = JupyterHub(config=c)
    assert app.custom_scopes[SCOPE]["description"]
    assert USER_SCOPE in app.extra_user_scopes


def test_jupyterhub_5_redefines_the_user_role() -> None:
    c = Config()
    c.JupyterHub.custom_scopes = {"custom:other": {"description": "kept"}}
    configure_hub(c, jupyterhub_major=5)
    assert set(c.JupyterHub.custom_scopes) == {"custom:other", SCOPE}
    roles = JupyterHub(config=c).load_roles
    [user] = [r for r in roles if r["name"] == "user"]
    assert user["scopes"] == ["self", USER_SCOPE]


def test_an_existing_user_role_keeps_its_scopes() -> None:
    c = Config()
    c.JupyterHub.load_roles = [
        {"name": "user", "scopes": ["self", "access:services"]},
        {"name": "server", "scopes": ["users:activity!user", "read:users:name"]},
    ]
    configure_hub(c, jupyterhub_major=6)
    configure_hub(c, jupyterhub_major=6)  # twice: nothing doubled
    assert c.JupyterHub.load_roles[0]["scopes"] == ["self", "access:services", USER_SCOPE]
    # the server role of load_roles is the base of the server tokens' scopes
    assert c.Spawner.server_token_scopes == ["users:activity!user", "read:users:name", USER_SCOPE]


def test_configured_server_token_scopes_are_extended() -> None:
    assert server_token_scopes(["inherit"], None) == ["inherit", USER_SCOPE]
    assert server_token_scopes([], None) == [*SERVER_ROLE, USER_SCOPE]

    async def scopes(spawner: Any) -> list[str]:
        return [f"read:users!user={spawner}"]

    wrapped = server_token_scopes(scopes, None)
    assert asyncio.run(wrapped("ada")) == ["read:users!user=ada", USER_SCOPE]
    plain = server_token_scopes(lambda spawner: [], None)
    assert asyncio.run(plain("ada")) == [*SERVER_ROLE, USER_SCOPE]


REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS = {
    "jupyterhub 6.1 (this venv)": Path(sys.executable),
    "z2jh 4.2.0 (jupyterhub 5.3)": REPO_ROOT / ".venv-z2jh-4.2.0/bin/python",
    "z2jh 4.4.0 (jupyterhub 5.5)": REPO_ROOT / ".venv-z2jh-4.4.0/bin/python",
}
CHECK = f"""
from jupyterhub import scopes
scopes.define_custom_scopes({{{SCOPE!r}: {{"description": "test"}}}})
held = scopes.parse_scopes({{{USER_SCOPE!r} + "=ada"}})
for user in ("ada", "bob"):
    print(scopes.has_scope({SCOPE!r} + "!user=" + user, held))
"""


@pytest.mark.parametrize("stack", sorted(STACKS))
def test_the_user_filter_in_each_supported_jupyterhub(stack: str) -> None:
    """The owner's filtered grant passes JupyterHub's scope check; another user's does not."""
    python = STACKS[stack]
    if not python.exists():
        pytest.skip(f"{python} is absent (make test-stacks builds it)")
    out = subprocess.run([str(python), "-c", CHECK], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["True", "False"]
