"""Hashing into ranges and probing: stable, deterministic, always in range."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iris_jupyterhub.posix import IdentityKey, RangeExhaustedError
from iris_jupyterhub.posix.ids import (
    UID_TAG,
    assign_id,
    encode,
    first_candidate,
    key_digest,
    key_material,
    probe_sequence,
)

keys = st.builds(
    IdentityKey,
    st.text(min_size=1, max_size=60).filter(lambda s: s.rstrip("/")),
    st.text(min_size=1, max_size=200),
)
ranges = st.tuples(st.integers(1, 10**6), st.integers(0, 5000)).map(lambda t: (t[0], t[0] + t[1]))


def test_encoding_is_unambiguous() -> None:
    """Moving characters between issuer and subject changes the hash input."""
    assert encode(UID_TAG, "ab", "c") != encode(UID_TAG, "a", "bc")
    assert encode(UID_TAG, "a") != encode(b"iris-gid-v1", "a")


@given(keys, ranges)
def test_first_candidate_is_in_range_and_stable(
    key: IdentityKey, id_range: tuple[int, int]
) -> None:
    material = key_material(UID_TAG, key)
    value = first_candidate(material, id_range)
    assert id_range[0] <= value <= id_range[1]
    assert value == first_candidate(material, id_range)


@given(st.integers(0, 50), st.integers(1, 60))
def test_probe_sequence_covers_range_once(offset: int, size: int) -> None:
    id_range = (100, 100 + size - 1)
    first = 100 + offset % size
    seen = list(probe_sequence(first, id_range))
    assert seen[0] == first
    assert sorted(seen) == list(range(100, 100 + size))


@given(keys, st.sets(st.integers(10, 20)))
def test_assign_skips_taken_ids(key: IdentityKey, taken: set[int]) -> None:
    material = key_material(UID_TAG, key)
    if len(taken) == 11:
        with pytest.raises(RangeExhaustedError, match=r"IdentityRegistry\.uid_range"):
            assign_id(material, (10, 20), taken.__contains__)
        return
    value = assign_id(material, (10, 20), taken.__contains__)
    assert value not in taken
    assert 10 <= value <= 20
    # linear probing: every id between the first candidate and the result is taken
    order = list(probe_sequence(first_candidate(material, (10, 20)), (10, 20)))
    assert all(v in taken for v in order[: order.index(value)])


def test_ids_are_stable_across_processes() -> None:
    """A fresh interpreter computes the same ids and digests (no per-process salt)."""
    sample = [IdentityKey(f"https://idp{i}.example", f"sub-{i}-ü") for i in range(50)]
    here = [
        [first_candidate(key_material(UID_TAG, k), (2_001_000_000, 2_069_999_999)), key_digest(k)]
        for k in sample
    ]
    code = (
        "import json\n"
        "from iris_jupyterhub.posix import IdentityKey\n"
        "from iris_jupyterhub.posix.ids import UID_TAG, first_candidate, key_digest, "
        "key_material\n"
        "keys = [IdentityKey(f'https://idp{i}.example', f'sub-{i}-ü') for i in range(50)]\n"
        "print(json.dumps([[first_candidate(key_material(UID_TAG, k), "
        "(2_001_000_000, 2_069_999_999)), key_digest(k)] for k in keys]))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True,
        env={"PYTHONHASHSEED": "12345", "PATH": ""},
    )  # fmt: skip
    assert json.loads(out.stdout) == here


@settings(max_examples=50)
@given(st.text(max_size=10))
def test_issuer_trailing_slash_is_ignored(subject_tail: str) -> None:
    a = IdentityKey("https://iam.example/", "s" + subject_tail)
    b = IdentityKey("https://iam.example", "s" + subject_tail)
    assert a == b
    assert key_digest(a) == key_digest(b)
