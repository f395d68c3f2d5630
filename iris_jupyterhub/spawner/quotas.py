"""Per-group quotas: concurrent servers, CPUs, memory and GPUs across a group's servers.

``group_quotas`` maps a canonical group (the group a server runs as, e.g. ``iris/lsst``)
to limits, e.g. ``{"iris/lsst": {"servers": 20, "cpu": 64, "gpu": 4, "memory": "256G"}}``.
A spawn that would take the group over any limit is refused with a message that names the
limit, what is in use and what was asked for.

:class:`GroupUsage` keeps what each group's servers use as running totals, so a spawn is
checked in O(1) whatever the number of running servers: a server is counted from the moment
its spawn passes the check (:meth:`GroupUsage.reserve`, which checks and counts in one step,
so two spawns racing for a group's last slot cannot both pass) until it stops or fails to
start (:meth:`GroupUsage.release`).
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from typing import Any

from ..groups import parse_group_rule
from .errors import SpawnRequestError
from .resources import ResourceTotals, parse_cpu, parse_memory

__all__ = [
    "QUOTA_KEYS",
    "GroupUsage",
    "check_group_quota",
    "check_in_use",
    "validate_group_quotas",
]

#: The limits a quota may set.
QUOTA_KEYS = ("servers", "cpu", "memory", "gpu")


def validate_group_quotas(quotas: Mapping[str, Any]) -> dict[str, dict[str, float]]:
    """Check an admin's ``group_quotas``; return it with every limit as a number.

    Raises:
        ValueError: naming the group and key for unknown keys or bad numbers.
    """
    result: dict[str, dict[str, float]] = {}
    for group, limits in quotas.items():
        rule = parse_group_rule(group)
        if rule.role is not None:
            raise ValueError(f"group_quotas[{group!r}]: quotas apply to groups, not roles")
        if not isinstance(limits, Mapping) or not limits:
            raise ValueError(f"group_quotas[{group!r}] must be a non-empty mapping of limits")
        checked: dict[str, float] = {}
        for key, value in limits.items():
            if key not in QUOTA_KEYS:
                raise ValueError(
                    f"group_quotas[{group!r}]: unknown limit {key!r} (use {', '.join(QUOTA_KEYS)})"
                )
            if key == "memory":
                checked[key] = float(parse_memory(value, f"group_quotas[{group!r}].memory"))
            elif key == "cpu":
                checked[key] = parse_cpu(value, f"group_quotas[{group!r}].cpu")
            elif isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(f"group_quotas[{group!r}].{key} must be a whole number >= 0")
            else:
                checked[key] = float(value)
        result[rule.group] = checked
    return result


def _used(totals: ResourceTotals, key: str) -> float:
    return float({"servers": totals.servers, "cpu": totals.cpu, "memory": totals.memory,
                  "gpu": totals.gpu}[key])  # fmt: skip


def _show(key: str, value: float) -> str:
    if key == "memory":
        return f"{value / 2**30:g} GiB"
    return f"{value:g}"


def check_group_quota(
    quotas: Mapping[str, Mapping[str, float]],
    group: str | None,
    running: Iterable[ResourceTotals],
    request: ResourceTotals,
) -> None:
    """Refuse ``request`` if it would take ``group`` over one of its limits.

    Args:
        quotas: validated ``group_quotas``.
        group: canonical group the new server runs as (``None``: a personal group, no quota).
        running: totals of the servers already running as ``group``.
        request: totals of the new server.

    Raises:
        SpawnRequestError: 403 naming the limit that would be exceeded.
    """
    check_in_use(quotas, group, ResourceTotals.total(running), request)


def check_in_use(
    quotas: Mapping[str, Mapping[str, float]],
    group: str | None,
    in_use: ResourceTotals,
    request: ResourceTotals,
) -> None:
    """Like :func:`check_group_quota`, with the group's totals already summed (``in_use``).

    Raises:
        SpawnRequestError: 403 naming the limit that would be exceeded.
    """
    limits = quotas.get(group) if group else None
    if not limits:
        return
    for key, limit in limits.items():
        used, asked = _used(in_use, key), _used(request, key)
        if used + asked > limit:
            what = {"servers": "running servers", "cpu": "CPUs", "memory": "memory",
                    "gpu": "GPUs"}[key]  # fmt: skip
            raise SpawnRequestError(
                403,
                f"The group {group} has reached its limit of {_show(key, limit)} {what} "
                f"({_show(key, used)} in use by its running servers, this server asks for "
                f"{_show(key, asked)}). Stop a server of the group, choose a smaller "
                "profile or run as another group.",
            )


class GroupUsage:
    """What the running servers of each group use, as running totals (one per hub).

    Servers are identified by a ``key`` (the hub's spawner id). CPUs are summed in
    thousandths of a core, so totals stay exact however often servers start and stop.
    """

    def __init__(self) -> None:
        self._servers: dict[Hashable, tuple[str, ResourceTotals]] = {}
        self._sums: dict[str, tuple[int, int, int, int]] = {}

    def __len__(self) -> int:
        return len(self._servers)

    def in_use(self, group: str) -> ResourceTotals:
        """The totals of ``group``'s counted servers."""
        servers, millicpu, memory, gpu = self._sums.get(group, (0, 0, 0, 0))
        return ResourceTotals(cpu=millicpu / 1000, memory=memory, gpu=gpu, servers=servers)

    def reserve(
        self,
        key: Hashable,
        group: str,
        request: ResourceTotals,
        quotas: Mapping[str, Mapping[str, float]],
    ) -> None:
        """Check ``request`` against ``group``'s limits and, if it fits, count it as ``key``.

        Synchronous (no ``await`` between the check and the count), so on the hub's event
        loop two spawns for the last slot cannot both pass. An earlier reservation of the
        same ``key`` is replaced, never counted twice.

        Raises:
            SpawnRequestError: 403 naming the limit (nothing is counted then).
        """
        self.release(key)
        check_in_use(quotas, group, self.in_use(group), request)
        self.add(key, group, request)

    def add(self, key: Hashable, group: str, totals: ResourceTotals) -> None:
        """Count a server without checking limits (rebuilding after a hub restart)."""
        self.release(key)
        self._servers[key] = (group, totals)
        self._change(group, totals, 1)

    def release(self, key: Hashable) -> None:
        """Stop counting ``key`` (a no-op if it is not counted)."""
        found = self._servers.pop(key, None)
        if found is not None:
            self._change(found[0], found[1], -1)

    def _change(self, group: str, totals: ResourceTotals, sign: int) -> None:
        servers, millicpu, memory, gpu = self._sums.get(group, (0, 0, 0, 0))
        summed = (
            servers + sign * totals.servers,
            millicpu + sign * round(totals.cpu * 1000),
            memory + sign * totals.memory,
            gpu + sign * totals.gpu,
        )
        if summed[0] <= 0:
            self._sums.pop(group, None)
        else:
            self._sums[group] = summed
