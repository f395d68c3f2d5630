"""Faults under load: a service the hub needs fails in the middle of a burst.

One stack for the module (real IdP, hub and proxy, Kubernetes stand-in keeping its objects
across a restart, PostgreSQL for the registry and accounting, OpenStack with Manila storage).
Each test: the hub keeps answering other requests during the fault, the affected users get
the library's plain-language messages, everything works again without restarting the hub, and
nothing is lost or doubled (accounting records, shares, POSIX ids).
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from devstack.login import LoginAttempt, hub_login

from .load import (
    Outcome,
    ScaleStack,
    check_identities,
    check_sessions,
    describe,
    login_burst,
    login_of,
    plain_error,
    report,
    scale_stack,
    settled,
    sizes,
    spawn_burst,
    username_of,
    wait_until,
)

pytestmark = pytest.mark.scale

SIZES = sizes()
FL, FS = SIZES.fault_logins, SIZES.fault_spawns
# user indices of each test (disjoint)
IDP_USERS = list(range(0, FL))
KUBE_USERS = list(range(FL, FL + FS))
PG_USERS = list(range(FL + FS, FL + 3 * FS))  # half running before, half new
STORAGE_USERS = list(range(FL + 3 * FS, FL + 4 * FS))
PROBE = FL + 4 * FS  # the user whose login is held across the IdP outage
PG_PROBE = PROBE + 1  # ... across the PostgreSQL outage
TOTAL = PG_PROBE + 1


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleStack]:
    with scale_stack(tmp_path_factory.mktemp("faults"), TOTAL, storage=True) as running:
        yield running


def names(indices: list[int]) -> list[str]:
    return [username_of(i) for i in indices]


def in_background(fn: Callable[[], Any]) -> Future[Any]:
    pool = ThreadPoolExecutor(1)
    future = pool.submit(fn)
    pool.shutdown(wait=False)
    return future


def held_login(stack: ScaleStack, index: int) -> tuple[threading.Event, Future[LoginAttempt]]:
    """A login that has been to the IdP and waits, holding its code, until the event is set;
    then the hub handles its callback. Returns (the event, the attempt's future)."""
    held, go = threading.Event(), threading.Event()

    def hold(attempt: LoginAttempt) -> None:
        held.set()
        go.wait(300)

    login = login_of(index)
    future = in_background(
        lambda: hub_login(stack.hub.url, login, f"{login}-pass", before_callback=hold)
    )
    assert held.wait(120), "the held login did not reach the IdP's redirect"
    return go, future


def watch_hub(stack: ScaleStack, stop: threading.Event) -> Future[list[bool]]:
    """Ask the hub for an ordinary page every half second until ``stop``; the answers."""

    def run() -> list[bool]:
        seen = []
        while not stop.is_set():
            seen.append(stack.hub_answers())
            time.sleep(0.5)
        return seen

    return in_background(run)


def assert_served(answers: list[bool]) -> None:
    """The hub answered every ordinary request made while the fault lasted."""
    assert answers, "no request was made during the fault"
    assert all(answers), answers


def failures(outcomes: list[Outcome]) -> list[Outcome]:
    return [o for o in outcomes if not o.ok]


def assert_plain(failed: list[Outcome], allow_client_side: bool = False) -> None:
    """Every failure the hub answered carries one of the library's plain sentences."""
    for o in failed:
        if allow_client_side and o.status == 0:
            continue  # the browser itself could not reach the IdP: not the hub's answer
        assert plain_error(o.text), f"{o.who}: HTTP {o.status}: {o.text[-1500:]}"


def login_all(stack: ScaleStack, indices: list[int]) -> None:
    outcomes = login_burst(stack.hub.url, indices, concurrency=16)
    assert failures(outcomes) == [], [(o.who, o.status, o.text[:200]) for o in outcomes]


# --------------------------------------------------------------------------------------


def test_idp_killed_and_restarted_during_a_login_burst(stack: ScaleStack) -> None:
    # a login that has been to the IdP and holds its code across the outage
    go, probe = held_login(stack, PROBE)
    done: list[Outcome] = []
    burst = in_background(
        lambda: login_burst(stack.hub.url, IDP_USERS, concurrency=max(4, FL // 4), done=done)
    )
    wait_until(lambda: len(done) >= FL // 4, "a quarter of the logins done", timeout=300)
    stop = threading.Event()
    watcher = watch_hub(stack, stop)
    assert stack.idp.pid is not None
    os.kill(stack.idp.pid, signal.SIGKILL)
    stack.idp.stop()
    go.set()  # the held login reaches the hub's callback while the IdP is down
    held_attempt: LoginAttempt = probe.result(120)
    time.sleep(5)
    stack.idp.start()
    outcomes: list[Outcome] = burst.result(300)
    stop.set()
    answers = watcher.result(60)

    failed = failures(outcomes)
    report(describe("login burst, IdP killed", [o.seconds for o in outcomes if o.ok], len(failed)))
    at_hub = [o for o in failed if o.status]
    report(
        f"  failed at the hub with its message: {len(at_hub)}, in the browser at the "
        f"IdP: {len(failed) - len(at_hub)}; HTTP {sorted({o.status for o in at_hub})}"
    )
    report(f"  hub answered {sum(answers)}/{len(answers)} ordinary requests during the outage")
    assert_served(answers)
    assert held_attempt.status == 503, held_attempt.text[:500]
    assert "is not responding at the moment" in held_attempt.text
    assert_plain(failed, allow_client_side=True)

    # recovered without a hub restart: everyone logs in; ids of those in before are kept
    before = {o.who: stack.posix(o.who)["uid"] for o in outcomes if o.ok}
    login_all(stack, [*IDP_USERS, PROBE])
    ids = check_identities(stack, names([*IDP_USERS, PROBE]))
    assert {u: ids[u][0] for u in before} == before


def test_kubernetes_restarted_during_spawns(stack: ScaleStack) -> None:
    users = names(KUBE_USERS)
    login_all(stack, KUBE_USERS)
    running = users[:2]  # servers that run across the restart
    assert all(o.ok for o in spawn_burst(stack, running))
    pods_before = {p["metadata"]["name"] for p in stack.kube.list_pods("jhub")}
    records_before = {r.record_id for r in stack.sessions() if r.hub_user in running}

    burst = in_background(lambda: spawn_burst(stack, users[2:]))
    time.sleep(1.0)
    stop = threading.Event()
    watcher = watch_hub(stack, stop)
    stack.kube.stop()
    time.sleep(2)
    stack.kube.start()
    outcomes: list[Outcome] = burst.result(400)
    stop.set()
    answers = watcher.result(60)

    failed = failures(outcomes)
    report(
        describe(
            "spawn burst, Kubernetes restarted", [o.seconds for o in outcomes if o.ok], len(failed)
        )
    )
    report(f"  failed: {[(o.who, o.text[:200]) for o in failed]}")
    assert_served(answers)
    retried = spawn_burst(stack, [o.who for o in failed])
    assert failures(retried) == [], [(o.who, o.text[:300]) for o in retried]

    # the servers that ran across the restart still run, on the same pods and records
    def consistent() -> dict[str, dict[str, Any]]:
        pods = {
            p["metadata"]["annotations"]["hub.jupyter.org/username"]: p
            for p in stack.kube.list_pods("jhub")
        }
        assert sorted(pods) == sorted(users)
        assert pods_before <= {p["metadata"]["name"] for p in pods.values()}
        open_records = {r.hub_user: r for r in stack.sessions() if r.end is None}
        assert {open_records[u].record_id for u in running} == records_before
        assert sorted(u for u in open_records if u in users) == sorted(users)
        check_sessions(stack, users)
        return pods

    pods = settled(consistent)
    ids = check_identities(stack, users)
    for user in users:
        security = pods[user]["spec"]["securityContext"]
        assert (security["runAsUser"], security["runAsGroup"]) == ids[user]
    stack.stop_all(users)


def test_postgres_restarted_under_the_registry_and_accounting(stack: ScaleStack) -> None:
    old, new = names(PG_USERS[:FS]), PG_USERS[FS:]
    login_all(stack, PG_USERS[:FS])
    to_stop, to_start = old[: FS // 2], old[FS // 2 :]
    assert all(o.ok for o in spawn_burst(stack, to_stop))
    registry = stack.registry()
    accounts_before = {a.username: (a.uid, a.gid) for a in registry.iter_accounts()}
    registry.close()

    go, probe = held_login(stack, PG_PROBE)
    done: list[Outcome] = []
    logins = in_background(
        lambda: login_burst(stack.hub.url, new, concurrency=max(2, FS // 4), done=done)
    )
    spawns = in_background(lambda: spawn_burst(stack, to_start))
    wait_until(lambda: len(done) >= len(new) // 4, "a quarter of the logins done", timeout=300)
    stop = threading.Event()
    watcher = watch_hub(stack, stop)
    stack.pg.stop()
    go.set()  # the held login reaches the hub's callback while the database is down
    held_attempt: LoginAttempt = probe.result(120)
    stops = in_background(lambda: stack.stop_all(to_stop))
    time.sleep(5)
    stack.pg.start()
    stack.pg.wait_ready()
    login_outcomes: list[Outcome] = logins.result(300)
    spawn_outcomes: list[Outcome] = spawns.result(300)
    stops.result(300)
    stop.set()
    answers = watcher.result(60)

    failed_logins, failed_spawns = failures(login_outcomes), failures(spawn_outcomes)
    report(
        describe(
            "login burst, PostgreSQL restarted",
            [o.seconds for o in login_outcomes if o.ok],
            len(failed_logins),
        )
    )
    report(
        describe(
            "spawn burst, PostgreSQL restarted",
            [o.seconds for o in spawn_outcomes if o.ok],
            len(failed_spawns),
        )
    )
    assert_served(answers)
    assert held_attempt.status == 503, held_attempt.text[:500]
    assert "The account database is not responding" in held_attempt.text
    assert_plain(failed_logins)
    assert_plain(failed_spawns)

    # recovered: the rest log in and start; nothing lost, nothing changed
    login_all(stack, [*new, PG_PROBE])
    assert failures(spawn_burst(stack, [o.who for o in failed_spawns])) == []
    registry = stack.registry()
    after = {a.username: (a.uid, a.gid) for a in registry.iter_accounts()}
    registry.close()
    assert {u: after[u] for u in accounts_before} == accounts_before
    check_identities(stack, [*old, *names([*new, PG_PROBE])])
    # queued accounting writes are replayed with the next writes: every pod has its record,
    # the stopped ones closed
    wait_until(
        lambda: all(
            r.end is not None
            for u, rs in check_sessions(stack, old).items()
            if u in to_stop
            for r in rs
        ),
        "the stopped servers' records closed",
        timeout=120,
    )
    stack.stop_all(to_start)


def test_openstack_answering_500s_and_timing_out(stack: ScaleStack) -> None:
    assert stack.openstack is not None
    openstack = stack.openstack
    users = names(STORAGE_USERS)
    login_all(stack, STORAGE_USERS)
    shares_before = len(openstack.shares())
    # the first creations fail, some are processed but answered 500 or too late
    openstack.faults.fail_next(r"/shares/?$", 500, count=FS // 2, method="POST")
    openstack.faults.lose_response(r"/shares/?$", count=2, method="POST")
    openstack.faults.delay(r"/shares/?$", 16.0, count=2, method="POST", after=True)
    openstack.faults.fail_next(r"/shares/detail", 503, count=FS // 2)
    stop = threading.Event()
    watcher = watch_hub(stack, stop)
    outcomes = spawn_burst(stack, users)
    stop.set()
    answers = watcher.result(60)
    openstack.faults.clear()

    failed = failures(outcomes)
    report(
        describe(
            "spawn burst, OpenStack 500s and timeouts",
            [o.seconds for o in outcomes if o.ok],
            len(failed),
        )
    )
    assert_served(answers)
    assert_plain(failed)
    retried = spawn_burst(stack, [o.who for o in failed])
    assert failures(retried) == [], [(o.who, o.text[:300]) for o in retried]

    shares = openstack.shares()
    keys = [s["metadata"].get("iris_jupyterhub_key") for s in shares[shares_before:]]
    assert len(keys) == len(users), keys  # one share per new user
    assert len(set(keys)) == len(keys), "a share was created twice"
    settled(lambda: check_sessions(stack, users))
    check_identities(stack, users)
    stack.stop_all(users)
