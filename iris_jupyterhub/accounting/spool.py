"""Hand APEL messages to the SSM sender through its outgoing directory queue.

``ssmsend`` (the APEL Secure Stomp Messenger) sends every message it finds in its outgoing
queue, a ``dirq`` ``QueueSimple`` directory (``path_type: dirq``, by default
``/var/spool/apel/outgoing``), and removes it once sent. Writing there is all the export
has to do; ``ssmsend`` runs from cron or a systemd timer.

The directory is checked before anything is queued: ``dirq`` retries forever when it
cannot create an element file for any reason other than a missing directory, so an
unwritable spool would hang the export instead of failing. A failure raises
:class:`SpoolError` naming the directory; messages already queued stay queued (each is a
complete message), and the database is not changed, so the export can simply be run again.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

from dirq.QueueSimple import QueueSimple  # type: ignore[import-untyped]

__all__ = ["DEFAULT_SPOOL_DIR", "SpoolError", "check_spool", "queue_messages"]

DEFAULT_SPOOL_DIR = Path("/var/spool/apel/outgoing")
"""The SSM sender's default outgoing queue."""


class SpoolError(OSError):
    """The outgoing queue cannot be written."""


def check_spool(path: Path) -> None:
    """Create ``path`` if needed and prove a file can be written in it (or raise SpoolError)."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        handle, probe = tempfile.mkstemp(dir=path, prefix=".iris-probe-")
        os.close(handle)
        os.unlink(probe)
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise SpoolError(f"APEL spool directory {path} is not writable: {reason}") from None


def queue_messages(path: Path, messages: Iterable[str]) -> list[str]:
    """Add each message to the ``dirq`` queue at ``path``; return the element names."""
    check_spool(path)
    try:
        queue = QueueSimple(str(path))
        return [queue.add(message) for message in messages]
    except OSError as error:
        reason = error.strerror or type(error).__name__
        raise SpoolError(f"cannot write to APEL spool directory {path}: {reason}") from None
