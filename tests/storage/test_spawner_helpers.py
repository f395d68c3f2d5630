"""What the spawner's storage hook does: nothing when storage is off; statuses of failures.

How prepared storage goes into the pod is tested in tests/spawner/test_pod.py."""

from __future__ import annotations

import copy
import logging
from types import SimpleNamespace

import pytest
from traitlets.config import Config

from iris_jupyterhub.storage.errors import (
    StorageConfigError,
    StorageConflictError,
    StorageError,
    StorageNotFoundError,
    StorageQuotaError,
    StorageStateError,
    StorageUnavailableError,
    StorageVersionError,
)
from iris_jupyterhub.storage.spawner import prepare_storage


def spawner(config: Config) -> SimpleNamespace:
    """The spawner attributes the storage hook could reach, with values of their own."""
    return SimpleNamespace(
        config=config,
        log=logging.getLogger("spawner"),
        namespace="jhub",
        volumes=[{"name": "scratch", "emptyDir": {}}],
        volume_mounts=[{"name": "scratch", "mountPath": "/scratch"}],
        init_containers=[],
        environment={"HOME": "/home/ada"},
        pod_security_context={"runAsUser": 2000001, "fsGroup": 2000001},
    )


async def test_storage_is_off_without_a_manila_storage_section() -> None:
    """No c.ManilaStorage at all, or enabled False: nothing is prepared or changed."""
    configured = Config()
    configured.ManilaStorage.enabled = False
    for config in (Config(), configured):
        s = spawner(config)
        before = copy.deepcopy(vars(s))
        assert await prepare_storage(s, {"identity": {}, "posix": {}}) is None
        assert vars(s) == before


async def test_a_failure_changes_nothing_on_the_spawner() -> None:
    """The hook only returns storage (build_pod puts it into the pod) or raises."""
    config = Config()
    config.ManilaStorage.enabled = True  # no auth_url, no credentials
    s = spawner(config)
    before = copy.deepcopy(vars(s))
    with pytest.raises(StorageConfigError):
        await prepare_storage(s, {"identity": {}, "posix": {}})
    assert vars(s) == before


@pytest.mark.parametrize(
    ("error", "status", "retry_after"),
    [
        (StorageUnavailableError("down", retryable=True), 503, "120"),
        (StorageUnavailableError("credentials rejected"), 503, "120"),
        (StorageQuotaError("overLimit"), 507, None),
        (StorageStateError("share 42 is in status error"), 500, None),
        (StorageConflictError("read-only rule"), 500, None),
        (StorageNotFoundError("404"), 500, None),
        (StorageVersionError("2.40"), 500, None),
        (StorageConfigError("no manila"), 500, None),
        (StorageError("other"), 500, None),
    ],
)
def test_each_storage_error_answers_with_its_status(
    error: StorageError, status: int, retry_after: str | None
) -> None:
    http = error.to_http_error()
    assert (http.status_code, error.status) == (status, status)
    assert dict(getattr(http, "headers", None) or {}).get("Retry-After") == retry_after
    assert http.jupyterhub_message == error.user_message  # type: ignore[attr-defined]
    assert str(error) not in error.user_message  # the detail stays in the log
