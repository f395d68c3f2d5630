"""Parsing CephFS export locations and choosing one (pure functions)."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iris_jupyterhub.storage import CephExport, choose_export, parse_export_location


@pytest.mark.parametrize(
    ("text", "monitors", "path"),
    [
        (
            "10.0.0.1:6789,10.0.0.2:6789:/volumes/_nogroup/u1/u2",
            ("10.0.0.1:6789", "10.0.0.2:6789"),
            "/volumes/_nogroup/u1/u2",
        ),
        ("[fd00::1]:6789,[fd00::2]:3300:/v/p", ("[fd00::1]:6789", "[fd00::2]:3300"), "/v/p"),
        ("[fd00::1]:/v", ("[fd00::1]",), "/v"),
        ("mon-a.example.org:6789:/", ("mon-a.example.org:6789",), "/"),
        ("mon1,mon2:/volumes/x", ("mon1", "mon2"), "/volumes/x"),
    ],
)
def test_parse_examples(text: str, monitors: tuple[str, ...], path: str) -> None:
    export = parse_export_location(text)
    assert export == CephExport(monitors=monitors, path=path)
    assert export.location == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "no-colon-at-all",
        "10.0.0.1:6789:relative/path",
        ":/volumes/x",
        "10.0.0.1:6789,:/volumes/x",
        "[fd00::1:6789:/volumes/x",
        "[not-ipv6]:6789:/volumes/x",
        "[fd00::1]6789:/volumes/x",
        "10.0.0.1:99999:/volumes/x",
        "10.0.0.1:port:/volumes/x",
        "300.1.1.1:6789:/volumes/x",
        "mon one:6789:/volumes/x",
        "10.0.0.1:6789:/volumes/with space",
        "fd00::1:6789:/volumes/x",
    ],
)
def test_parse_rejects_garbage(text: str) -> None:
    with pytest.raises(ValueError, match=r"export location|monitor"):
        parse_export_location(text)


def test_parse_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="must be a string"):
        parse_export_location(None)  # type: ignore[arg-type]


_ports = st.integers(min_value=1, max_value=65535).map(lambda p: f":{p}") | st.just("")
_monitor = st.one_of(
    st.builds(lambda ip, port: f"{ip}{port}", st.ip_addresses(v=4), _ports),
    st.builds(lambda ip, port: f"[{ip}]{port}", st.ip_addresses(v=6), _ports),
)
_segment = st.text(
    alphabet=st.characters(codec="ascii", categories=["L", "N"], include_characters="_-."),
    min_size=1,
    max_size=12,
)


@settings(deadline=None)  # no wall-clock limits in unit tests
@given(
    monitors=st.lists(_monitor, min_size=1, max_size=5),
    segments=st.lists(_segment, min_size=0, max_size=6),
)
def test_round_trip(monitors: list[str], segments: list[str]) -> None:
    path = "/" + "/".join(segments)
    text = ",".join(monitors) + ":" + path
    export = parse_export_location(text)
    assert export.monitors == tuple(monitors)
    assert export.path == path
    assert parse_export_location(export.location) == export


@settings(deadline=None, max_examples=300)
@given(st.text(max_size=60))
def test_arbitrary_text_parses_faithfully_or_raises(text: str) -> None:
    try:
        export = parse_export_location(text)
    except ValueError:
        return
    assert export.location == text
    assert export.path.startswith("/")
    assert ":" not in export.path


GOOD_A = "10.0.0.1:6789:/volumes/a"
GOOD_B = "10.0.0.2:6789:/volumes/b"


def test_choose_prefers_preferred() -> None:
    chosen = choose_export(
        [{"path": GOOD_A, "preferred": False}, {"path": GOOD_B, "preferred": True}]
    )
    assert chosen.location == GOOD_B


def test_choose_skips_admin_only_and_unparsable() -> None:
    chosen = choose_export(
        [
            {"path": GOOD_A, "preferred": True, "is_admin_only": True},
            {"path": "garbage", "preferred": True},
            {"path": GOOD_B, "preferred": False},
        ]
    )
    assert chosen.location == GOOD_B


def test_choose_first_when_none_preferred() -> None:
    assert choose_export([{"path": GOOD_A}, {"path": GOOD_B}]).location == GOOD_A


@pytest.mark.parametrize(
    "locations",
    [[], [{"path": GOOD_A, "is_admin_only": True}], [{"path": "garbage"}, {"path": None}]],
)
def test_choose_nothing_usable(locations: list[dict[str, object]]) -> None:
    with pytest.raises(ValueError, match="no usable CephFS export location"):
        choose_export(locations)
