"""POSIX names from hostile hints: always valid, at most 32 characters, deterministic."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from iris_jupyterhub.posix.names import (
    DEFAULT_RESERVED_NAMES,
    assign_name,
    candidate_names,
    is_valid_name,
    sanitise_name,
)


@pytest.mark.parametrize(
    ("hint", "prefix", "expected"),
    [
        ("alice", "u", "alice"),
        ("Alice Smith", "u", "alice-smith"),
        ("vo.iris.ac.uk/lsst", "g", "vo-iris-ac-uk-lsst"),
        ("José Müller", "u", "jose-muller"),
        ("../../root", "u", "root"),
        ("42team", "g", "g42team"),
        ("-dash", "u", "dash"),
        ("", "u", "u"),
        (None, "g", "g"),
        ("\x00\x1b[31m", "u", "u31m"),
        ("日本語", "u", "u"),
        ("_svc", "u", "_svc"),
    ],
)
def test_sanitise_examples(hint: str | None, prefix: str, expected: str) -> None:
    assert sanitise_name(hint, prefix) == expected


@given(st.text(max_size=300), st.sampled_from(["u", "g"]))
def test_sanitised_names_are_always_valid(hint: str, prefix: str) -> None:
    name = sanitise_name(hint, prefix)
    assert is_valid_name(name)
    assert len(name) <= 32


def test_five_kilobyte_hint() -> None:
    assert is_valid_name(sanitise_name("x" * 5000))


@given(st.text(max_size=80), st.binary(min_size=1, max_size=16))
def test_candidates_are_valid_and_deterministic(hint: str, material: bytes) -> None:
    base = sanitise_name(hint)
    first = [n for _, n in zip(range(8), candidate_names(base, material), strict=False)]
    again = [n for _, n in zip(range(8), candidate_names(base, material), strict=False)]
    assert first == again
    assert all(is_valid_name(n) for n in first)
    assert len(set(first)) == len(first)


def test_taken_and_reserved_names_get_a_hash_suffix() -> None:
    taken = {"alice"}
    name = assign_name("alice", b"key-1", taken.__contains__)
    assert name.startswith("alice-")
    assert len(name) == len("alice-") + 4
    assert name == assign_name("alice", b"key-1", taken.__contains__)
    assert name != assign_name("alice", b"key-2", taken.__contains__)
    root = assign_name("root", b"key-1", lambda _: False)
    assert root.startswith("root-")
    assert "root" in DEFAULT_RESERVED_NAMES


def test_suffix_keeps_long_names_within_32() -> None:
    base = "a" * 40
    name = assign_name(base, b"k", lambda n: n == "a" * 32)
    assert len(name) <= 32
    assert is_valid_name(name)


def test_many_collisions_still_give_a_free_valid_name() -> None:
    taken: set[str] = set()
    for i in range(300):
        name = assign_name("bob", f"k{i}".encode(), taken.__contains__)
        assert name not in taken
        assert is_valid_name(name)
        taken.add(name)
