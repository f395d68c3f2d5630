"""Files written whole or not at all, for exports other systems read while we write.

Readers (sssd, Slurm, ``xdmod-shredder``) see either the old or the new file, never half
of one: the text goes to a hidden temporary file in the same directory, is flushed to
disk, and replaces the target with one ``rename``.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable
from pathlib import Path

__all__ = ["write_atomically"]


def write_atomically(path: Path, chunks: Iterable[str], mode: int = 0o644) -> int:
    """Stream ``chunks`` into ``path`` atomically; return how many chunks were written.

    A failure (including one raised by ``chunks`` itself) leaves ``path`` as it was and
    removes the temporary file.
    """
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    count = 0
    try:
        with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as out:
            for chunk in chunks:
                out.write(chunk)
                count += 1
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, mode)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count
