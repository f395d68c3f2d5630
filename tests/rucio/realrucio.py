"""Parts for tests against a real Rucio server (:mod:`devstack.rucio`) and the test IdP.

Used by tests/rucio/test_rucio_server.py and the whole-stack tests/e2e/test_rucio.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from devstack.idp import IdPProcess
from devstack.rucio import RucioAccount, RucioError, rucio_venv

REPO_ROOT = Path(__file__).resolve().parents[2]
TOKEN_TTL = 20
"""Access-token lifetime of the Rucio tests (seconds), as the issue asks."""


def idp_sub(provider: str, login: str) -> str:
    """The ``sub`` of a test user (tests/idp/users.json)."""
    users = json.loads((REPO_ROOT / "tests" / "idp" / "users.json").read_text())["users"]
    return str(next(u["sub"] for u in users if u["provider"] == provider and u["login"] == login))


def rucio_accounts(idp: IdPProcess) -> list[RucioAccount]:
    """Rucio accounts of the test users: ``ada`` (IAM and Check-in identities) and ``carol``.

    ``bob`` and ``eve`` have no Rucio identity.
    """
    return [
        RucioAccount(
            "ada",
            [
                (idp_sub("iam", "ada"), idp.issuer("iam")),
                (idp_sub("checkin", "ada"), idp.issuer("checkin")),
            ],
        ),
        RucioAccount("carol", [(idp_sub("iam", "carol"), idp.issuer("iam"))]),
    ]


def require_rucio_venv() -> Path:
    """The Rucio virtualenv, or skip (naming the make target) when it is missing."""
    try:
        return rucio_venv(REPO_ROOT)
    except RucioError as error:
        pytest.skip(str(error))


def rucio_token(idp: IdPProcess, provider: str, login: str, audience: str | None = "rucio") -> str:
    """Log in at the IdP as the hub's client, then refresh with ``audience`` (as the hub does)."""
    tokens = idp.login_tokens(provider, login, f"{login}-pass")
    response = idp.refresh(provider, tokens["refresh_token"], audience=audience)
    assert response.status_code == 200, response.text
    token: str = response.json()["access_token"]
    return token
