"""Hub usernames from claims: made safe, never copied raw.

A claim such as IAM's ``preferred_username`` becomes a hub username only through
:func:`safe_username`: values with path separators, control characters or bidirectional
overrides are refused; the rest is normalised to lower-case ASCII ``a-z 0-9 . _ -``.
"""

from __future__ import annotations

import re
import unicodedata

__all__ = ["safe_username"]


# Letters that Unicode does not decompose into a base letter plus accents.
_LETTER_FOLDS = str.maketrans(
    dict(zip("øđðłħ\u0131", "oddlhi", strict=True)) | {"æ": "ae", "œ": "oe", "þ": "th"}
)
_REFUSED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})
_DISALLOWED_RUN = re.compile(r"[^a-z0-9._-]+")
_DOT_RUN = re.compile(r"\.{2,}")


def _refused(text: str) -> bool:
    return any(c in "/\\" or unicodedata.category(c) in _REFUSED_CATEGORIES for c in text)


def safe_username(raw: object, max_length: int = 64) -> str | None:
    """Turn a claim such as IAM ``preferred_username`` into a safe hub username.

    The rule has two halves:

    * **Refuse** (return ``None``) values that are not strings, and strings containing a
      path separator (``/`` or ``\\``), a control character (including NUL, tab and
      newline), an invisible format character (including bidi overrides such as U+202E
      and zero-width characters) or a line/paragraph separator, before or after Unicode
      normalisation. Such values are attacks or mistakes; cleaning them would hide that.
    * **Clean** the rest: NFKC-normalise, case-fold, strip accents (``ü`` → ``u``; ``ø``,
      ``æ``, ``ł`` and similar are transliterated), replace ``@`` and every run of other
      characters outside ``a-z 0-9 . _ -`` with one ``-``, collapse ``..`` to ``.`` and
      strip ``-``, ``.`` and ``_`` from both ends.

    The result is refused if it is empty or longer than ``max_length``: it is never
    truncated, because truncation would silently map two people onto one name. The output
    always matches ``^[a-z0-9][a-z0-9._-]*$``, never contains ``..``, and cleaning it again
    returns it unchanged. Reserved names (``root``, ...) are the POSIX layer's business.

    Example:
        >>> [safe_username(u) for u in ("ALICE", "ünïcødé", "a b", "-rf", "../../root")]
        ['alice', 'unicode', 'a-b', 'rf', None]
    """
    if max_length < 1:
        raise ValueError("max_length must be at least 1")
    if not isinstance(raw, str) or _refused(raw):
        return None
    text = unicodedata.normalize("NFKC", raw).casefold().translate(_LETTER_FOLDS)
    text = "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))
    if _refused(text):
        return None
    text = _DOT_RUN.sub(".", _DISALLOWED_RUN.sub("-", text)).strip("-._")
    if not text or len(text) > max_length:
        return None
    return text
