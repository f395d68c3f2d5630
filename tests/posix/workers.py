"""Functions run in separate processes (``multiprocessing`` spawn) by the concurrency tests."""

from __future__ import annotations

import logging
import random
from typing import Any

from iris_jupyterhub.posix import IdentityKey, IdentityRegistry

IAM = "https://iris-iam.stfc.ac.uk"


def map_keys(url: str, worker: int, subjects: list[str], barrier: Any, out: Any) -> None:
    """Map ``subjects`` in a shuffled order after all workers reach ``barrier``."""
    registry = IdentityRegistry(db_url=url, lock_timeout=60, connect_timeout=30)
    registry.engine  # noqa: B018 - migrate before the race starts
    order = list(subjects)
    random.Random(worker).shuffle(order)  # noqa: S311 - a reproducible test order
    barrier.wait(timeout=120)
    result: dict[str, Any] = {}
    try:
        for subject in order:
            groups = ["iris", f"team{hash(subject) % 5}", f"w{worker}"]
            account = registry.map_identity(IdentityKey(IAM, subject), subject[:12], groups)
            result[subject] = [account.uid, account.gid, account.username]
        out.put((worker, result, None))
    except Exception as error:  # report to the test instead of dying silently
        out.put((worker, result, repr(error)))
    finally:
        registry.close()


class _Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def migrate(url: str, barrier: Any, out: Any) -> None:
    """Open a registry on ``url`` together with the other workers; report migrations run."""
    handler = _Collect()
    logger = logging.getLogger("alembic.runtime.migration")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    registry = IdentityRegistry(db_url=url, lock_timeout=60)
    barrier.wait(timeout=120)
    try:
        registry.engine  # noqa: B018 - first use applies the migrations
        account = registry.map_identity(IdentityKey(IAM, "same"), "same", ["iris"])
        ran = sum("Running upgrade" in m for m in handler.messages)
        out.put((ran, account.uid, None))
    except Exception as error:
        out.put((0, None, repr(error)))
    finally:
        registry.close()


def lookup_all(url: str, subjects: list[str], out: Any) -> None:
    """Re-open the registry in a new process and map the subjects again."""
    registry = IdentityRegistry(db_url=url)
    answers = {}
    for subject in subjects:
        account = registry.map_identity(IdentityKey(IAM, subject), "ignored", ["iris"])
        answers[subject] = account.to_auth_state()
    registry.close()
    out.put(answers)
