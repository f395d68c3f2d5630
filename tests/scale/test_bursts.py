"""Bursts against the real hub: many logins through the real OIDC flow at once, many spawns at
once, then the hub's file descriptors and memory back to their baseline.

Sizes from ``IRIS_SCALE`` (smoke: 40 logins, 12 spawns; full: 200 and 50). Figures are printed
(``pytest -s``); they are noisy on a shared machine.
"""

from __future__ import annotations

import gc
import time
from collections.abc import Iterator

import pytest

from .load import (
    Resources,
    ScaleStack,
    check_identities,
    check_sessions,
    describe,
    login_burst,
    pod_creations,
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
WARM = SIZES.logins  # one more user, logged in and spawned before the baseline
#: Pooled connections stay open after a burst, for reuse, and are counted apart: the proxy's
#: keep-alive connections to the hub (node's agent opens one per concurrent request and keeps
#: it; tornado closes idle ones after an hour) and SQLAlchemy's pool to PostgreSQL (5 + 10
#: overflow). Every other descriptor must be back to its baseline, give or take
OTHER_FD_TOLERANCE = 2
DB_POOL_MAX = 15
#: Resident memory may stay above its baseline: CPython's allocator keeps freed arenas, and
#: the hub's ORM keeps a row per user. Bound: 25% of the baseline plus 64 KiB per user.
RSS_FRACTION = 0.25


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ScaleStack]:
    with scale_stack(tmp_path_factory.mktemp("bursts"), SIZES.logins + 1) as running:
        yield running


@pytest.fixture(scope="module")
def baseline(stack: ScaleStack) -> Resources:
    """The hub's resources after one login, spawn and stop (lazy imports, pools, caches)."""
    warm = login_burst(stack.hub.url, [WARM])
    assert warm[0].ok, warm[0].text
    assert spawn_burst(stack, [username_of(WARM)])[0].ok
    stack.stop_all([username_of(WARM)])
    time.sleep(2)
    gc.collect()
    measured = stack.hub_resources()
    report(f"hub baseline: {measured}")
    return measured


def test_login_burst(stack: ScaleStack, baseline: Resources) -> None:
    indices = list(range(SIZES.logins))
    outcomes = login_burst(stack.hub.url, indices)
    errors = [o for o in outcomes if not o.ok]
    report(describe("login burst", [o.seconds for o in outcomes if o.ok], len(errors)))
    report(f"hub after login burst: {stack.hub_resources()}")
    assert errors == [], [(o.who, o.status, o.text[:300]) for o in errors[:5]]
    ids = check_identities(stack, [username_of(i) for i in [*indices, WARM]])
    assert len(ids) == SIZES.logins + 1


def test_spawn_burst(stack: ScaleStack, baseline: Resources) -> None:
    users = [username_of(i) for i in range(SIZES.spawns)]
    outcomes = spawn_burst(stack, users)
    errors = [o for o in outcomes if not o.ok]
    report(describe("spawn burst", [o.seconds for o in outcomes if o.ok], len(errors)))
    report(f"hub after spawn burst: {stack.hub_resources()}")
    report(f"  pods created: {pod_creations(stack, users)} for {len(users)} spawns")
    assert errors == [], [(o.who, o.status, o.text[:300]) for o in errors[:5]]

    ids = check_identities(stack, users)
    pods = {
        p["metadata"]["annotations"]["hub.jupyter.org/username"]: p
        for p in stack.kube.list_pods("jhub")
    }
    assert sorted(pods) == sorted(users)
    for user in users:
        security = pods[user]["spec"]["securityContext"]
        assert (security["runAsUser"], security["runAsGroup"]) == ids[user]
    sessions = settled(lambda: check_sessions(stack, users))
    assert all(len(sessions[u]) == 1 and sessions[u][0].end is None for u in users)
    assert {(r.uid, r.gid) for u in users for r in sessions[u]} == set(ids.values())

    stack.stop_all(users)
    closed = wait_until(
        lambda: (
            (s := check_sessions(stack, users))
            and all(r.end is not None for rs in s.values() for r in rs)
            and s
        ),
        "every record closed",
    )
    assert all(len(closed[u]) == 1 for u in users)
    assert stack.kube.list_pods("jhub") == []


def test_resources_back_to_baseline(stack: ScaleStack, baseline: Resources) -> None:
    """After the bursts (servers stopped), the hub's descriptors and memory settle back."""
    time.sleep(5)  # the servers' routes and connections are gone
    after = stack.hub_resources()
    report(f"hub after bursts (settled): {after}; baseline {baseline}")
    assert after.other_fds <= baseline.other_fds + OTHER_FD_TOLERANCE, (after, baseline)
    assert after.proxy_keepalive <= SIZES.logins + 1, after
    assert after.db_pool <= DB_POOL_MAX, after
    rss_bound = baseline.rss_kib * (1 + RSS_FRACTION) + 64 * SIZES.logins
    assert after.rss_kib <= rss_bound, (after, baseline, rss_bound)
    # a second burst of the same size reuses the pooled connections and the memory
    again = login_burst(stack.hub.url, list(range(SIZES.logins)))
    assert [o for o in again if not o.ok] == []
    time.sleep(5)
    second = stack.hub_resources()
    report(f"hub after a second login burst (settled): {second}")
    assert second.other_fds <= baseline.other_fds + OTHER_FD_TOLERANCE, (second, baseline)
    assert second.fds <= after.fds + OTHER_FD_TOLERANCE, (second, after)
    assert second.rss_kib <= max(after.rss_kib, rss_bound) * 1.05, (second, after)
