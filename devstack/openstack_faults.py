"""Fault injection and request recording for the fake OpenStack server
(:mod:`devstack.openstack`): ``server.faults`` is a :class:`Faults`, every request a
:class:`RecordedRequest` in ``server.requests``."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devstack.openstack import OpenStackServer

__all__ = ["Faults", "RecordedRequest"]


@dataclass
class RecordedRequest:
    method: str
    path: str
    query: dict[str, str]
    microversion: str | None
    body: Any
    status: int = 0


@dataclass
class _Fault:
    pattern: re.Pattern[str]
    method: str | None
    count: int | None  # None: until cleared
    status: int | None = None
    delay: float = 0.0
    after: bool = False  # act after the request was processed (lost response)
    headers: dict[str, str] = field(default_factory=dict)


class Faults:
    """Thread-safe fault injection; each rule matches ``method`` and a path regex (search)."""

    def __init__(self, server: OpenStackServer) -> None:
        self._server = server
        self._rules: list[_Fault] = []

    def _add(self, rule: _Fault) -> None:
        with self._server.lock:
            self._rules.append(rule)

    def fail_next(
        self,
        path_regex: str,
        status: int = 500,
        count: int = 1,
        *,
        method: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        """Answer the next ``count`` matching requests with ``status`` without processing them."""
        headers = {"Retry-After": f"{retry_after:g}"} if retry_after is not None else {}
        self._add(_Fault(re.compile(path_regex), method, count, status, headers=headers))

    def lose_response(
        self, path_regex: str, count: int = 1, *, method: str | None = "POST", status: int = 500
    ) -> None:
        """Process the next ``count`` matching requests, then answer ``status`` instead."""
        self._add(_Fault(re.compile(path_regex), method, count, status, after=True))

    def delay(
        self,
        path_regex: str,
        seconds: float,
        count: int | None = None,
        *,
        method: str | None = None,
        after: bool = False,
    ) -> None:
        """Stall matching requests (before, or with ``after`` once processed: a slow reply)."""
        self._add(_Fault(re.compile(path_regex), method, count, delay=seconds, after=after))

    def share_goes_to_error(self, count: int = 1) -> None:
        """The next ``count`` created shares end in status ``error``."""
        with self._server.lock:
            self._server.manila.settings.share_errors += count

    def rule_goes_to_error(self, count: int = 1) -> None:
        """The next ``count`` added access rules end in state ``error``."""
        with self._server.lock:
            self._server.manila.settings.rule_errors += count

    def revoke_tokens(self) -> None:
        """Invalidate every issued token (clients get 401 and must authenticate again)."""
        self._server.revoke_tokens()

    def unreachable(self) -> None:
        """Stop listening and drop open connections (clients see connection errors)."""
        self._server.unreachable()

    def reachable(self) -> None:
        """Listen again on the same port."""
        self._server.reachable()

    @property
    def max_microversion(self) -> str:
        return self._server.manila.settings.max_microversion

    @max_microversion.setter
    def max_microversion(self, value: str) -> None:
        with self._server.lock:
            self._server.manila.settings.max_microversion = value

    def clear(self) -> None:
        """Remove all request faults (not share/rule error counters)."""
        with self._server.lock:
            self._rules.clear()

    def take(self, method: str, path: str) -> list[_Fault]:
        """Consume and return the faults matching one request (server side)."""
        taken = []
        with self._server.lock:
            for rule in list(self._rules):
                if rule.method not in (None, method) or not rule.pattern.search(path):
                    continue
                taken.append(replace(rule))
                if rule.count is not None:
                    rule.count -= 1
                    if rule.count <= 0:
                        self._rules.remove(rule)
        return taken
