"""Stable numeric ids: hash an identity or group into a range, probe past collisions.

The first candidate for an id is a SHA-256 hash of a canonical, unambiguous encoding of
the key, reduced into the configured range. Two independent registries therefore give the
same id to almost everyone; when the candidate is already taken, the next free id is found
by linear probing (candidate + 1, + 2, ... wrapping to the start of the range), which is
also deterministic given what is taken. Nothing here touches a database: the caller passes
a ``taken`` predicate.

Encodings (each part UTF-8, surrogates passed through, prefixed with its length as 8 bytes
big-endian, the domain tag first)::

    uid             tag b"iris-uid-v1"           + issuer + subject
    personal gid    tag b"iris-personal-gid-v1"  + issuer + subject
    group gid       tag b"iris-gid-v1"           + canonical group name
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator

from .accounts import IdentityKey
from .errors import RangeExhaustedError

__all__ = [
    "GROUP_GID_TAG",
    "KEY_TAG",
    "PERSONAL_GID_TAG",
    "UID_TAG",
    "IdRange",
    "assign_id",
    "encode",
    "first_candidate",
    "group_material",
    "key_digest",
    "key_material",
    "probe_sequence",
    "range_exhausted",
]

IdRange = tuple[int, int]
"""An inclusive ``(first, last)`` range of ids."""

UID_TAG = b"iris-uid-v1"
PERSONAL_GID_TAG = b"iris-personal-gid-v1"
GROUP_GID_TAG = b"iris-gid-v1"
KEY_TAG = b"iris-identity-key-v1"


def encode(tag: bytes, *parts: str) -> bytes:
    """Length-prefixed encoding of a domain tag and text parts: no two inputs collide."""
    chunks = [len(tag).to_bytes(8, "big"), tag]
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        chunks += [len(data).to_bytes(8, "big"), data]
    return b"".join(chunks)


def key_material(tag: bytes, key: IdentityKey) -> bytes:
    """The hash input for an identity under ``tag`` (:data:`UID_TAG`, ...)."""
    return encode(tag, key.issuer, key.subject)


def group_material(canonical: str) -> bytes:
    """The hash input for a canonical group name."""
    return encode(GROUP_GID_TAG, canonical)


def key_digest(key: IdentityKey) -> str:
    """Hex SHA-256 of the identity key: the registry's indexed lookup column."""
    return hashlib.sha256(key_material(KEY_TAG, key)).hexdigest()


def first_candidate(material: bytes, id_range: IdRange) -> int:
    """The hashed id for ``material`` in ``id_range`` (before any probing)."""
    start, end = id_range
    value = int.from_bytes(hashlib.sha256(material).digest(), "big")
    return start + value % (end - start + 1)


def probe_sequence(first: int, id_range: IdRange) -> Iterator[int]:
    """Every id of the range exactly once: ``first``, ``first + 1``, ... wrapping around."""
    start, end = id_range
    yield from range(first, end + 1)
    yield from range(start, first)


def assign_id(
    material: bytes, id_range: IdRange, taken: Callable[[int], bool], *, what: str = "uid"
) -> int:
    """The first id of the probe sequence of ``material`` for which ``taken`` is false.

    Raises:
        RangeExhaustedError: If every id of the range is taken.
    """
    for candidate in probe_sequence(first_candidate(material, id_range), id_range):
        if not taken(candidate):
            return candidate
    raise range_exhausted(what, id_range)


def range_exhausted(what: str, id_range: IdRange) -> RangeExhaustedError:
    """The error for a full range, naming the option an administrator must change."""
    option = "uid_range" if what == "uid" else "gid_range"
    return RangeExhaustedError(
        f"no free {what} left in IdentityRegistry.{option} {id_range[0]}-{id_range[1]}: "
        f"extend IdentityRegistry.{option} so new identities and groups can get ids"
    )
