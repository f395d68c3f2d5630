"""The token directory and its files: private, written whole, never with a trailing newline.

The Rucio client reads ``auth_token_file_path`` with ``readline()`` and sends what it read
as the ``X-Rucio-Auth-Token`` header, and rucio-jupyterlab reads ``oidc_file_name`` with
``f.read()``: a trailing newline breaks both (``ValueError: Invalid header value``). So a
token file holds exactly the token. Every file is written through
:func:`iris_jupyterhub.atomic.write_atomically` (a temporary file in the same directory,
created ``0600``, flushed to disk, then one ``rename``), so a reader sees the old token or
the new one, never half of one, and never a file that others may read.
"""

from __future__ import annotations

import contextlib
import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path

from ..atomic import write_atomically

__all__ = [
    "DIRECTORY_MODE",
    "FILE_MODE",
    "DirectoryState",
    "InstanceFiles",
    "check_directory_owner",
    "check_token_text",
    "ensure_private_directory",
    "remove_file",
    "write_private",
    "write_token",
]

FILE_MODE = 0o600
DIRECTORY_MODE = 0o700
# A bearer token is one header value: printable ASCII without spaces (RFC 6750 b64token
# plus the JWT dot); anything else would corrupt the header or the file format.
_TOKEN = re.compile(r"[A-Za-z0-9\-._~+/=]+")


@dataclass(frozen=True)
class InstanceFiles:
    """Where one Rucio instance's files live in the token directory."""

    directory: Path
    name: str

    @property
    def token(self) -> Path:
        """``<dir>/<name>.token``: the access token alone, no newline."""
        return self.directory / f"{self.name}.token"

    @property
    def config(self) -> Path:
        """``<dir>/<name>.cfg``: a Rucio client configuration for this instance."""
        return self.directory / f"{self.name}.cfg"

    @property
    def status(self) -> Path:
        """``<dir>/<name>.status.json``: why there is (or is not) a token, for the helper."""
        return self.directory / f"{self.name}.status.json"


@dataclass(frozen=True)
class DirectoryState:
    """What :func:`ensure_private_directory` found and did."""

    path: Path
    mode: int
    owner: int
    private: bool
    """True when the directory is ours and ``0700``."""


def check_token_text(token: str) -> str:
    """``token`` itself when it is a single bearer-token value, else :class:`ValueError`."""
    if not _TOKEN.fullmatch(token):
        raise ValueError("the access token is not a single bearer-token value")
    return token


def check_directory_owner(path: Path, owner: int, euid: int) -> str | None:
    """Why a token directory owned by uid ``owner`` is not trusted by uid ``euid``, or None.

    Ours, or root's (a Kubernetes ``emptyDir`` mount point is root's), is trusted: anyone
    else who owns it could read the tokens or swap ``rucio.cfg`` to send them elsewhere.
    """
    if owner in (euid, 0):
        return None
    return (
        f"{path} is owned by uid {owner}, not by this server's user (uid {euid}) or root, "
        "so no token is written into it"
    )


def ensure_private_directory(path: Path) -> DirectoryState:
    """Create ``path`` (and parents) as ``0700``, or tighten an existing one we own.

    A directory owned by root (a Kubernetes ``emptyDir`` mount point is owned by root and
    ``0777``) cannot be changed; it is reported with ``private=False`` and the caller says
    so. The files in it are ``0600`` either way. A symbolic link, or a directory owned by
    another user, is refused with :class:`PermissionError` (see
    :func:`check_directory_owner`).
    """
    path.mkdir(mode=DIRECTORY_MODE, parents=True, exist_ok=True)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode):
        raise PermissionError(
            f"{path} is a symbolic link; the token directory must be a real directory"
        )
    if not stat.S_ISDIR(info.st_mode):
        raise NotADirectoryError(str(path))
    refusal = check_directory_owner(path, info.st_uid, os.geteuid())
    if refusal is not None:
        raise PermissionError(refusal)
    mode = stat.S_IMODE(info.st_mode)
    if mode != DIRECTORY_MODE and info.st_uid == os.geteuid():
        with contextlib.suppress(PermissionError):
            os.chmod(path, DIRECTORY_MODE)
            mode = DIRECTORY_MODE
    return DirectoryState(path, mode, info.st_uid, mode == DIRECTORY_MODE)


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically, mode ``0600``, exactly as given (no newline)."""
    write_atomically(path, [text], mode=FILE_MODE)


def write_token(path: Path, token: str) -> None:
    """Write the bearer ``token`` alone to ``path`` (atomic, ``0600``, no newline).

    A value that is not one bearer token (white space, a newline) is refused with
    :class:`ValueError` and the file is left as it was.
    """
    write_private(path, check_token_text(token))


def remove_file(path: Path) -> bool:
    """Remove ``path`` if it exists; True when something was removed."""
    try:
        path.unlink()
    except FileNotFoundError:
        return False
    return True
