"""Parse CephFS export locations as Manila reports them.

A CephFS export location is ``<monitor>[,<monitor>...]:<path>``, for example
``10.0.0.1:6789,10.0.0.2:6789:/volumes/_nogroup/<uuid>/<uuid>``. The monitors part
contains colons itself (ports, IPv6 addresses in brackets), so the string is split at
the *last* colon; the path must be absolute and contain no colon.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = ["CephExport", "choose_export", "parse_export_location"]

_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$"
)
_PORT = re.compile(r"^[0-9]{1,5}$")


@dataclass(frozen=True)
class CephExport:
    """Ceph monitors (``host:port`` strings, IPv6 in brackets) and the CephFS path."""

    monitors: tuple[str, ...]
    path: str

    @property
    def location(self) -> str:
        """The export location string, as Manila writes it."""
        return f"{','.join(self.monitors)}:{self.path}"


def _check_port(port: str, monitor: str) -> None:
    if not _PORT.match(port) or not 0 < int(port) < 65536:
        raise ValueError(f"monitor {monitor!r}: port must be a number 1-65535")


def _check_monitor(monitor: str) -> None:
    if monitor.startswith("["):
        end = monitor.find("]")
        if end < 0:
            raise ValueError(f"monitor {monitor!r}: unclosed '[' around an IPv6 address")
        try:
            ipaddress.IPv6Address(monitor[1:end])
        except ValueError:
            raise ValueError(f"monitor {monitor!r}: not an IPv6 address in brackets") from None
        rest = monitor[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"monitor {monitor!r}: expected ':<port>' after ']'")
            _check_port(rest[1:], monitor)
        return
    host, sep, port = monitor.partition(":")
    if sep:
        _check_port(port, monitor)
    if not _HOSTNAME.match(host):
        raise ValueError(f"monitor {monitor!r}: not a host name or IPv4 address")
    if host.replace(".", "").isdigit():
        try:
            ipaddress.IPv4Address(host)
        except ValueError:
            raise ValueError(f"monitor {monitor!r}: not a valid IPv4 address") from None


def parse_export_location(text: str) -> CephExport:
    """Split a CephFS export location at its last ``:`` into monitors and path.

    Raises :class:`ValueError` naming what is wrong for anything that is not
    ``mon[,mon...]:/absolute/path`` with valid ``host[:port]`` / ``[ipv6][:port]`` monitors.
    """
    if not isinstance(text, str):
        raise ValueError(f"export location must be a string, not {type(text).__name__}")
    monitors_part, sep, path = text.rpartition(":")
    if not sep or not monitors_part:
        raise ValueError(f"export location {text!r}: expected '<monitors>:<path>'")
    if not path.startswith("/") or any(c.isspace() for c in path) or "\x00" in path:
        raise ValueError(f"export location {text!r}: path {path!r} is not an absolute path")
    monitors = tuple(monitors_part.split(","))
    for monitor in monitors:
        if not monitor:
            raise ValueError(f"export location {text!r}: empty monitor address")
        _check_monitor(monitor)
    return CephExport(monitors=monitors, path=path)


def choose_export(locations: Sequence[Mapping[str, Any]]) -> CephExport:
    """Pick the export a user's pod should mount from Manila's ``export_locations`` list.

    Admin-only locations (``is_admin_only: true``) are skipped; among the rest a
    ``preferred: true`` one wins, else the first one that parses. Raises
    :class:`ValueError` if no usable location is left.
    """
    parsed: list[tuple[bool, CephExport]] = []
    problems: list[str] = []
    for location in locations:
        if location.get("is_admin_only") is True:
            continue
        try:
            export = parse_export_location(location.get("path"))  # type: ignore[arg-type]
        except ValueError as exc:
            problems.append(str(exc))
            continue
        parsed.append((location.get("preferred") is True, export))
    if not parsed:
        detail = "; ".join(problems) if problems else "no non-admin export locations"
        raise ValueError(f"no usable CephFS export location ({detail})")
    preferred = [export for is_preferred, export in parsed if is_preferred]
    return preferred[0] if preferred else parsed[0][1]
