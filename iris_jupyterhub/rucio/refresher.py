"""Keeping one Rucio instance's token file fresh: the schedule as pure functions, and the loop.

:func:`step` decides, from what the last call to the hub came to (an
:class:`~iris_jupyterhub.rucio.hubapi.Outcome`) and the current time, what to do with the
token file and when to ask again. It is a pure function of plain data, with the clock
passed in, so every schedule is tested without waiting:

- **renew before expiry**: the next call comes after :attr:`Policy.renew_fraction` of the
  token's remaining lifetime (a 20 s token is renewed with 5 s to spare, an hour-long one
  with 15 minutes), never sooner than :attr:`Policy.min_delay`;
- **hub unreachable or busy** (no answer, ``idp_unavailable``, another 5xx, or a 401/403
  without a reason, which JupyterHub gives when it cannot authenticate the request just
  now): retry with exponential backoff and jitter (honouring ``Retry-After``), keep the
  current token until it expires, then remove it;
- **refused** (``login_required``, ``not_in_group``, ``unknown_instance``, or any other
  reason the hub gives with a 401/403): remove the token at once, say why once, and ask
  again only every :attr:`Policy.recheck_interval` so that logging out and in again (or
  joining the group) brings the token back without restarting the server.

:class:`TokenRefresher` runs that schedule against the hub and the files, with an
injectable clock.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .hubapi import Outcome, TokenAnswer

__all__ = [
    "ADVICE",
    "OTHER_ADVICE",
    "Clock",
    "Policy",
    "State",
    "Step",
    "SystemClock",
    "advice_for",
    "backoff_delay",
    "renew_delay",
    "status_record",
    "step",
]

# What a researcher does about each refusal (the hub's own message says what happened).
ADVICE = {
    "login_required": "Log out of the hub (File > Log Out) and log in again; the token comes "
    "back by itself within a few minutes, without restarting your server.",
    "not_in_group": "Ask your VO manager to add you to a group that may use this Rucio "
    "instance; once you are in it, log out and in again.",
    "unknown_instance": "Tell the hub administrators: this server was started for a Rucio "
    "instance the hub does not (or no longer) offer; restarting your server may help.",
}
# For a refusal whose reason this server does not know (a newer hub's).
OTHER_ADVICE = (
    "Tell the hub administrators if you should have this Rucio instance; restarting your "
    "server may help."
)


def advice_for(reason: str) -> str:
    """What a researcher does about the refusal ``reason``."""
    return ADVICE.get(reason, OTHER_ADVICE)


@dataclass(frozen=True)
class Policy:
    """The timing of renewals, retries and re-checks (seconds)."""

    renew_fraction: float = 0.75
    min_delay: float = 1.0
    backoff_base: float = 2.0
    backoff_cap: float = 60.0
    recheck_interval: float = 300.0


@dataclass(frozen=True)
class State:
    """What the refresher knows between two calls."""

    expires_at: float | None = None
    """When the token on disk expires; None when there is no token file."""
    failures: int = 0
    """Calls in a row the hub could not answer."""
    refused: str = ""
    """The reason of the refusal in force ('' when none): it has been logged."""
    fetched: bool = False
    """Whether a token was ever written (the first one is announced differently)."""


@dataclass(frozen=True)
class Step:
    """What to do after one call: the new state, file actions, one event to log, the wait."""

    state: State
    delay: float
    write: TokenAnswer | None = field(default=None, repr=False)
    remove: bool = False
    event: str = ""
    """``obtained``, ``renewed``, ``restored``, ``unreachable``, ``expired``, ``refused``
    or '' (nothing worth a log line)."""


def renew_delay(now: float, expires_at: float, policy: Policy) -> float:
    """Seconds until a token valid until ``expires_at`` is renewed."""
    return max(policy.min_delay, (expires_at - now) * policy.renew_fraction)


def backoff_delay(
    failures: int, jitter: float, policy: Policy, retry_after: float | None = None
) -> float:
    """Seconds to wait after ``failures`` (>= 1) failed calls in a row.

    Exponential from :attr:`Policy.backoff_base`, at most :attr:`Policy.backoff_cap`;
    ``jitter`` (0..1, random in production) spreads it over the upper half so that the
    servers of a hub that comes back do not all call at once. A ``Retry-After`` from the
    hub is honoured up to :attr:`Policy.recheck_interval`.
    """
    ceiling = min(policy.backoff_cap, policy.backoff_base * 2 ** max(0, failures - 1))
    delay = ceiling * (0.5 + 0.5 * min(1.0, max(0.0, jitter)))
    if retry_after is not None:
        delay = max(delay, min(retry_after, policy.recheck_interval))
    return float(max(policy.min_delay, delay))


def _token_step(state: State, token: TokenAnswer, now: float, policy: Policy) -> Step:
    if state.failures or state.refused:
        event = "restored"
    elif state.expires_at is None:
        event = "obtained"
    else:
        event = "renewed"
    new = State(expires_at=token.expires_at, fetched=True)
    return Step(new, renew_delay(now, token.expires_at, policy), write=token, event=event)


def _retry_step(state: State, outcome: Outcome, now: float, jitter: float, policy: Policy) -> Step:
    failures = state.failures + 1
    delay = backoff_delay(failures, jitter, policy, outcome.retry_after)
    event = "unreachable" if state.failures == 0 else ""
    new = replace(state, failures=failures)
    if state.expires_at is not None:
        if state.expires_at <= now:
            return Step(replace(new, expires_at=None), delay, remove=True, event="expired")
        delay = min(delay, max(policy.min_delay, state.expires_at - now))
    return Step(new, delay, event=event)


def step(state: State, outcome: Outcome, now: float, jitter: float, policy: Policy) -> Step:
    """What to do after a call to the hub came to ``outcome`` at ``now`` (pure)."""
    if outcome.kind == "token" and outcome.token is not None:
        if outcome.token.expires_at > now:
            return _token_step(state, outcome.token, now, policy)
        outcome = replace(outcome, kind="retry", reason="expired_answer", token=None)
    if outcome.kind == "refused":
        event = "" if state.refused == outcome.reason else "refused"
        new = State(refused=outcome.reason, fetched=state.fetched)
        return Step(new, policy.recheck_interval, remove=True, event=event)
    return _retry_step(state, outcome, now, jitter, policy)


def status_record(instance: str, state: State, outcome: Outcome) -> dict[str, Any]:
    """The content of ``<name>.status.json``: why there is (or is not) a token; no secret."""
    if state.expires_at is not None:
        condition = "valid"
    elif state.refused:
        condition = "refused"
    else:
        condition = "unavailable"
    record: dict[str, Any] = {
        "instance": instance,
        "state": condition,
        "expires_at": state.expires_at,
        "reason": outcome.reason if outcome.kind != "token" else "",
        "message": outcome.message if outcome.kind != "token" else "",
    }
    if state.refused:
        record["advice"] = advice_for(state.refused)
    return record


class Clock(Protocol):
    """Wall-clock time (epoch seconds, like ``expires_at``) and waiting."""

    def time(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def time(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


@dataclass
class TokenRefresher:
    """Runs :func:`step` for one instance: ask, act on the files, log, wait, repeat.

    ``fetch(now)`` asks the hub (see :func:`~iris_jupyterhub.rucio.hubapi.fetch_token`);
    ``apply(step, outcome)`` writes or removes the files and logs the step's event (see
    :class:`~iris_jupyterhub.rucio.extension.TokenFiles`).
    """

    name: str
    fetch: Callable[[float], Awaitable[Outcome]]
    apply: Callable[[Step, Outcome], None]
    policy: Policy = field(default_factory=Policy)
    clock: Clock = field(default_factory=SystemClock)
    jitter: Callable[[], float] = random.random
    log: logging.Logger | logging.LoggerAdapter[Any] = field(
        default_factory=lambda: logging.getLogger(__name__)
    )
    state: State = field(default_factory=State)
    apply_failures: int = 0
    """Calls in a row after which ``apply`` raised."""

    async def run_once(self) -> Step:
        """One call to the hub and what follows from it; returns the step taken."""
        try:
            outcome = await self.fetch(self.clock.time())
        except Exception as error:  # a bug must not end the renewals
            self.log.exception("Rucio: asking the hub for the %s token failed", self.name)
            outcome = Outcome("retry", reason="error", message=repr(error))
        taken = step(self.state, outcome, self.clock.time(), self.jitter(), self.policy)
        self.state = taken.state
        try:
            self.apply(taken, outcome)
        except Exception:  # nor may a file that cannot be removed, or a bug, end them
            return self._apply_failed(taken)
        self.apply_failures = 0
        return taken

    def _apply_failed(self, taken: Step) -> Step:
        """Log the first failure of a run of them (with its traceback); try again soon."""
        self.apply_failures += 1
        if self.apply_failures == 1:
            self.log.exception("Rucio: acting on the %s token files failed", self.name)
        else:
            self.log.debug("Rucio: acting on the %s token files failed again", self.name)
        retry = backoff_delay(self.apply_failures, self.jitter(), self.policy)
        return replace(taken, delay=min(taken.delay, retry))

    async def run(self) -> None:
        """Keep the token fresh until cancelled."""
        while True:
            taken = await self.run_once()
            await self.clock.sleep(taken.delay)
