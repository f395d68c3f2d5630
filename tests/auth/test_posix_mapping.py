"""What a login answers when the identity registry fails: each RegistryError's own status.

Real registries on real SQLite files, broken the way production ones break (a missing
directory, a full id range, rows changed behind the registry's back, a database error).
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from tornado import web

from iris_jupyterhub.auth.posix_mapping import map_login
from iris_jupyterhub.errors import UserFacingError
from iris_jupyterhub.posix import (
    IdentityConflictError,
    IdentityRegistry,
    InvalidIdentityError,
    RangeExhaustedError,
    RegistryError,
    RegistryUnavailableError,
)

ISSUER = "https://iam.example.org"
LOG = logging.getLogger("test.posix_mapping")


def identity(subject: str) -> dict[str, str]:
    return {"issuer": ISSUER, "subject": subject, "subject_claim": "sub"}


@pytest.fixture
def registries(tmp_path: Path) -> Iterator[list[IdentityRegistry]]:
    made: list[IdentityRegistry] = []
    yield made
    for registry in made:
        registry.close()


def registry_at(made: list[IdentityRegistry], url: str, **options: object) -> IdentityRegistry:
    registry = IdentityRegistry(db_url=url, **options)
    made.append(registry)
    return registry


async def refusal(
    registry: IdentityRegistry, subject: str, caplog: pytest.LogCaptureFixture
) -> tuple[web.HTTPError, UserFacingError]:
    with pytest.raises(web.HTTPError) as info:
        await map_login(registry, identity(subject), subject, ["iris"], LOG)
    cause = info.value.__cause__
    assert isinstance(cause, RegistryError)
    assert str(cause) in caplog.text  # the admin detail is logged
    assert info.value.jupyterhub_message == cause.user_message  # type: ignore[attr-defined]
    assert str(cause) not in info.value.jupyterhub_message  # type: ignore[attr-defined]
    return info.value, cause


def headers(error: web.HTTPError) -> dict[str, str]:
    return dict(getattr(error, "headers", None) or {})


async def test_unavailable_database_is_503_with_retry_after(
    tmp_path: Path, registries: list[IdentityRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    registry = registry_at(registries, f"sqlite:///{tmp_path}/missing-dir/ids.sqlite")
    error, cause = await refusal(registry, "ada", caplog)
    assert isinstance(cause, RegistryUnavailableError)
    assert (error.status_code, headers(error)) == (503, {"Retry-After": "60"})
    assert "try again in a minute or two" in cause.user_message


async def test_exhausted_range_is_503_with_retry_after(
    tmp_path: Path, registries: list[IdentityRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/ids.sqlite"
    registry = registry_at(registries, url, uid_range=(100_000, 100_000))
    await map_login(registry, identity("ada"), "ada", ["iris"], LOG)
    error, cause = await refusal(registry, "bob", caplog)
    assert isinstance(cause, RangeExhaustedError)
    assert (error.status_code, headers(error)) == (503, {"Retry-After": "60"})
    assert "IdentityRegistry.uid_range" in caplog.text


async def test_conflicting_records_are_403(
    tmp_path: Path, registries: list[IdentityRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/ids.sqlite"
    registry = registry_at(registries, url)
    ada = await map_login(registry, identity("ada"), "ada", ["iris"], LOG)
    await map_login(registry, identity("bob"), "bob", ["iris"], LOG)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP INDEX IF EXISTS ix_posix_identities_uid"))
        connection.execute(
            sa.text("UPDATE posix_identities SET uid = :uid WHERE username = 'bob'"),
            {"uid": ada["uid"]},
        )
    engine.dispose()
    error, cause = await refusal(registry, "bob", caplog)
    assert isinstance(cause, IdentityConflictError)
    assert (error.status_code, headers(error)) == (403, {})
    assert "POSIX mapping refused" in caplog.text


async def test_identity_that_cannot_be_a_key_is_403(
    tmp_path: Path, registries: list[IdentityRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    registry = registry_at(registries, f"sqlite:///{tmp_path}/ids.sqlite")
    error, cause = await refusal(registry, "x" * 5000, caplog)
    assert isinstance(cause, InvalidIdentityError)
    assert (error.status_code, headers(error)) == (403, {})
    assert "x" * 100 not in caplog.text  # never the whole subject in the log


async def test_other_database_error_is_503_with_retry_after(
    tmp_path: Path, registries: list[IdentityRegistry], caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path}/ids.sqlite"
    registry = registry_at(registries, url)
    await map_login(registry, identity("ada"), "ada", ["iris"], LOG)
    engine = sa.create_engine(url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TRIGGER refuse BEFORE INSERT ON posix_identities "
                "BEGIN SELECT RAISE(ABORT, 'refused by the test'); END"
            )
        )
    engine.dispose()
    error, cause = await refusal(registry, "bob", caplog)
    assert type(cause) is RegistryError
    assert (error.status_code, headers(error)) == (503, {"Retry-After": "60"})
    assert "refused by the test" in caplog.text


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (RegistryError("x"), 503, "60"),
        (RegistryUnavailableError("x"), 503, "60"),
        (RangeExhaustedError("x"), 503, "60"),
        (IdentityConflictError("x"), 403, None),
        (InvalidIdentityError("x"), 403, None),
    ],
)
def test_the_class_status_is_the_answer(
    error: RegistryError, status: int, retry_after: str | None
) -> None:
    assert error.status == status
    http = error.to_http_error()
    assert http.status_code == status
    assert headers(http).get("Retry-After") == retry_after
