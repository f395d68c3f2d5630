"""The real Rucio server (devstack.rucio) accepts the test IdP's aud=rucio tokens, and only
those; uploads to its POSIX RSEs, lists and replicates. Skipped without ``.venv-rucio``."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest

from devstack.idp import IdPProcess
from devstack.rucio import RucioServer, client_config

from .realrucio import REPO_ROOT, TOKEN_TTL, require_rucio_venv, rucio_accounts, rucio_token

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IdPProcess]:
    """IAM with 20 s access tokens; Check-in with 2 s ones (the expiry test)."""
    with IdPProcess(
        REPO_ROOT,
        tmp_path_factory.mktemp("idp"),
        access_token_ttl=TOKEN_TTL,
        audiences=["rucio", "fts"],
        provider_options={"checkin": {"ttl": {"AccessToken": 2}}},
    ) as process:
        yield process


@pytest.fixture(scope="module")
def rucio(idp: IdPProcess, tmp_path_factory: pytest.TempPathFactory) -> Iterator[RucioServer]:
    require_rucio_venv()
    server = RucioServer(
        tmp_path_factory.mktemp("rucio"),
        {"iam": idp.issuer("iam"), "checkin": idp.issuer("checkin")},
        rucio_accounts(idp),
    )
    with server:
        yield server


def whoami(rucio: RucioServer, token: str) -> httpx.Response:
    """``rucio whoami`` over REST: the token only in ``X-Rucio-Auth-Token``."""
    return httpx.get(
        f"{rucio.url}/accounts/whoami",
        headers={"X-Rucio-Auth-Token": token},
        follow_redirects=True,
        timeout=30,
    )


def test_token_with_rucio_audience_maps_to_the_account(
    idp: IdPProcess, rucio: RucioServer
) -> None:
    token = rucio_token(idp, "iam", "ada")
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["aud"] == "rucio"
    assert claims["exp"] - claims["iat"] == 20
    response = whoami(rucio, token)
    assert response.status_code == 200, response.text
    assert response.json()["account"] == "ada"


def test_rucio_cli_reads_the_bearer_token_file(
    idp: IdPProcess, rucio: RucioServer, tmp_path: Path
) -> None:
    config = tmp_path / "rucio.cfg"
    config.write_text(client_config(rucio.url, "carol"))
    token_file = tmp_path / "carol.token"
    token_file.write_text(rucio_token(idp, "iam", "carol"))
    done = rucio.rucio("whoami", config=config, token_file=token_file)
    assert done.returncode == 0, done.stderr
    assert "account    : carol" in done.stdout


def test_second_issuer_is_trusted_and_expired_token_refused(
    idp: IdPProcess, rucio: RucioServer
) -> None:
    token = rucio_token(idp, "checkin", "ada")  # Check-in: 2 s tokens
    claims = jwt.decode(token, options={"verify_signature": False})
    assert claims["iss"] == idp.issuer("checkin")
    fresh = whoami(rucio, token)
    assert fresh.status_code == 200, fresh.text
    expired = rucio_token(idp, "checkin", "ada")
    time.sleep(
        max(0.0, jwt.decode(expired, options={"verify_signature": False})["exp"] - time.time())
        + 1.5
    )
    refused = whoami(rucio, expired)
    assert refused.status_code == 401, refused.text
    assert refused.json()["ExceptionClass"] == "CannotAuthenticate"


@pytest.mark.parametrize("audience", ["fts", None])
def test_token_for_another_audience_is_refused(
    idp: IdPProcess, rucio: RucioServer, audience: str | None
) -> None:
    token = rucio_token(idp, "iam", "ada", audience=audience)
    response = whoami(rucio, token)
    assert response.status_code == 401, response.text
    # the same user's aud=rucio token is accepted: the audience is what was refused
    assert whoami(rucio, rucio_token(idp, "iam", "ada")).status_code == 200


def test_user_without_rucio_identity_is_refused(idp: IdPProcess, rucio: RucioServer) -> None:
    response = whoami(rucio, rucio_token(idp, "iam", "bob"))
    assert response.status_code == 401, response.text


def test_token_in_authorization_header_is_not_read(idp: IdPProcess, rucio: RucioServer) -> None:
    response = httpx.get(
        f"{rucio.url}/accounts/whoami",
        headers={"Authorization": f"Bearer {rucio_token(idp, 'iam', 'ada')}"},
        timeout=30,
    )
    assert response.status_code in (400, 401), response.text


def test_upload_list_and_replicate_between_posix_rses(
    idp: IdPProcess, rucio: RucioServer, tmp_path: Path
) -> None:
    config = tmp_path / "rucio.cfg"
    config.write_text(client_config(rucio.url, "ada"))
    token_file = tmp_path / "ada.token"
    data = tmp_path / "results.csv"
    data.write_text("run,events\n1,42\n")

    def run(*args: str) -> str:
        token_file.write_text(rucio_token(idp, "iam", "ada"))  # 20 s tokens: fresh per command
        done = rucio.rucio(*args, config=config, token_file=token_file)
        assert done.returncode == 0, done.stdout + done.stderr
        return done.stdout + done.stderr

    # Rucio's generic permission policy lets only admins change a replica's state, so a user
    # registers the replica once the file is stored (as VOs with that policy tell users to)
    output = run(
        "upload", "--register-after-upload", "--rse", "RAL_USERDISK", "--scope", "user.ada",
        str(data),
    )  # fmt: skip
    assert "Successfully uploaded file results.csv" in output, output
    assert "ERROR" not in output, output
    stored = list(rucio.rse_path("RAL_USERDISK").rglob("results.csv"))
    assert [p.read_text() for p in stored] == ["run,events\n1,42\n"]
    replicas = run("replica", "list", "file", "user.ada:results.csv")
    assert "RAL_USERDISK" in replicas, replicas
    rule = run("rule", "add", "--copies", "1", "--rses", "CAM_USERDISK", "user.ada:results.csv")
    rule_id = rule.strip().splitlines()[-1].strip()
    assert len(rule_id) == 32, rule
    rules = run("rule", "list", "--did", "user.ada:results.csv")
    assert rule_id in rules, rules
    assert "CAM_USERDISK" in rules, rules
