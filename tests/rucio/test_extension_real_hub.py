"""The extension in a real Jupyter Server against the real hub endpoint and the real test IdP.

The hub is :mod:`tests.rucio.test_endpoint`'s (Rucio instances ``ral`` for ``iris/lsst``
and ``cam`` for ``dune``, 30-second access tokens); the server is started by the test with
the user's own API token, as the hub would start it. The whole stack (spawner, pod
environment, a real Rucio server) is the whole-stack test's.
"""

from __future__ import annotations

import json
import stat
from collections.abc import Callable, Iterator
from pathlib import Path

import jwt
import pytest

from devstack.idp import public_jwk
from devstack.login import hub_login
from devstack.stacks import Stack, start_stack

from . import test_server_extension
from .test_endpoint import INSTANCES, RUCIO_HUB_CONFIG, TTL, user_token
from .test_server_extension import Server, stop, wait_for

pytestmark = pytest.mark.e2e
start_server = test_server_extension.start_server  # the fixture, shared


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    options = {"iam": {"ttl": {"AccessToken": TTL}, "rotate_refresh_token": True}}
    stack = start_stack(
        tmp_path_factory.mktemp("rucio-ext"), "iam", RUCIO_HUB_CONFIG, provider_options=options
    )
    yield stack
    stack.stop()


async def test_the_extension_keeps_a_real_rucio_token_from_the_hub(
    tmp_path: Path, stack: Stack, start_server: Callable[..., object]
) -> None:
    assert hub_login(stack.hub.url, "ada", "ada-pass").status == 302
    rucio_dir = tmp_path / "run" / "iris-rucio"
    listed = [  # what IRISSpawner puts in IRIS_RUCIO_INSTANCES for Ada (iris/lsst: ral only)
        {**{k: INSTANCES[0][k] for k in ("name", "display_name", "rucio_host", "auth_host", "vo")},
         "account": "aresearcher", "ca_cert": "", "default": True},
    ]  # fmt: skip
    environ = {
        "IRIS_RUCIO_INSTANCES": json.dumps(listed),
        "JUPYTERHUB_API_URL": f"{stack.hub.url}/hub/api",
        "JUPYTERHUB_API_TOKEN": user_token(stack, "aresearcher"),
    }
    server: Server = await start_server(None, rucio_dir, environ=environ)  # type: ignore[misc]
    token = rucio_dir / "ral.token"
    await wait_for(token.exists, "the token file", server)
    first = token.read_text()
    assert stat.S_IMODE(token.stat().st_mode) == 0o600
    claims = jwt.decode(
        first,
        jwt.PyJWK(public_jwk(stack.keys["iam"])).key,
        algorithms=["RS256"],
        audience="rucio",
        issuer=stack.issuer,
    )
    assert claims["sub"] == stack.user("ada")["sub"]
    # renewed before it expires (30 s tokens; the hub reuses one for half its life)
    await wait_for(lambda: token.exists() and token.read_text() != first, "a renewal", server)
    renewed = jwt.decode(token.read_text(), options={"verify_signature": False})
    assert renewed["exp"] > claims["exp"]
    assert await stop(server) == 0
    assert not token.exists()
    assert first not in server.log()
