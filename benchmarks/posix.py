"""Identity-registry benchmarks (issue 4): bulk assignment, lookup latency, login overhead.

1. Assign N distinct identities (default 1,000,000; env ``IRIS_BENCH_IDENTITIES``) into a
   fresh SQLite registry with the default ranges via ``assign_many``: wall time, rate,
   collisions resolved (from the ``BulkReport``) and duplicates counted by SQL afterwards.
2. Latency of an existing identity: ``registry.lookup(key)`` and the ``map_identity`` fast
   path (unchanged identity), on that SQLite database and on a real PostgreSQL server
   started here (populated with ``Sizes.pg_identities`` identities).
3. Login overhead: two ``iris-iam`` hubs against ONE IdP, ``posix_mapping`` on vs off,
   logins interleaved in the same run.

``--smoke`` (:data:`SMOKE`) runs all three on a few thousand identities and a few logins.

Everything is printed; nothing is asserted.
"""

from __future__ import annotations

import gc
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from sqlalchemy import text

from benchmarks.login import PROVIDER, Stack, ms, pct, start_hubs, timed_login
from benchmarks.results import record
from devstack.configs import IAM_HUB_CONFIG
from devstack.idp import IdPProcess
from devstack.postgres import find_pg_bin, postgres_server
from iris_jupyterhub.db import REGISTRY_FILE
from iris_jupyterhub.posix import IdentityKey, IdentityRegistry
from iris_jupyterhub.posix.models import Identity

SEED = 20240604
BULK_TARGET_SECONDS = 150
LATENCY_TARGETS_MS = {"SQLite": 1.0, "PostgreSQL": 5.0}
LOGIN_USERS = [("ada", "ada-pass"), ("bob", "bob-pass")]
GROUPS = ["iris", "iris/lsst"]
ISSUERS = ["https://iris-iam.stfc.ac.uk/", "https://aai.egi.eu/auth/realms/egi"]
GIVEN = ["ada", "alan", "grace", "john", "mary", "li", "wei", "sara", "omar", "anna", "tom"]
FAMILY = ["lovelace", "turing", "hopper", "smith", "jones", "chen", "khan", "garcia", "brown"]

Out = Callable[[str], None]
TABLE = Identity.__tablename__


@dataclass(frozen=True)
class Sizes:
    """Registry sizes, calls and logins of the benchmarks."""

    identities: int = 1_000_000  # SQLite, [1] and [2]; IRIS_BENCH_IDENTITIES overrides
    pg_identities: int = 100_000
    lookup_calls: int = 2_000
    lookup_warmup: int = 200
    map_keys: int = 500
    login_warmup: int = 3
    login_rounds: int = 30


FULL = Sizes()
SMOKE = Sizes(
    identities=10_000,
    pg_identities=2_000,
    lookup_calls=200,
    lookup_warmup=20,
    map_keys=50,
    login_warmup=1,
    login_rounds=4,
)


def identity_count(default: int = FULL.identities) -> int:
    raw = os.environ.get("IRIS_BENCH_IDENTITIES", "")
    return int(raw.replace("_", "")) if raw.strip() else default


def identities(n: int, seed: int = SEED) -> Iterator[tuple[IdentityKey, str]]:
    """``n`` distinct, random-looking but reproducible identities with realistic name hints.

    Subjects are UUIDs from a seeded generator (distinct for all practical purposes; the
    report's ``created`` count shows it); name hints such as ``ada.turing`` repeat a lot,
    so name collisions are exercised on purpose.
    """
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    for _ in range(n):
        issuer = ISSUERS[rng.getrandbits(1)]
        subject = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        hint = f"{rng.choice(GIVEN)}.{rng.choice(FAMILY)}{rng.randrange(100)}"
        yield IdentityKey(issuer, subject), hint


def sample_keys(n: int, count: int, seed: int = SEED) -> list[IdentityKey]:
    """``count`` keys spread over the ``n`` identities of :func:`identities` (re-generated)."""
    picker = random.Random(seed + 1)  # noqa: S311 - reproducible sample, not secrets
    wanted = set(picker.sample(range(n), min(count, n)))
    keys = [key for i, (key, _) in enumerate(identities(n, seed)) if i in wanted]
    picker.shuffle(keys)
    return keys


def duplicates(registry: IdentityRegistry) -> dict[str, int]:
    """Rows sharing a uid, a personal gid or a name, counted by SQL."""
    with registry.engine.connect() as connection:
        return {
            column: int(
                connection.execute(
                    text(f"SELECT count(*) - count(DISTINCT {column}) FROM {TABLE}")  # noqa: S608
                ).scalar_one()
            )
            for column in ("uid", "personal_gid", "username")
        }


def bench_bulk(registry: IdentityRegistry, n: int, out: Out) -> None:
    start = time.perf_counter()
    report = registry.assign_many(identities(n))
    wall = time.perf_counter() - start
    dups = duplicates(registry)
    out(
        f"[1] Bulk assignment: N={n:,} distinct identities (2 issuers, UUID subjects, seed "
        f"{SEED}) into a fresh SQLite registry, default ranges, assign_many"
    )
    out(
        f"    {'created':>10}{'existing':>9}{'wall s':>8}{'ids/s':>9}{'uid coll':>10}"
        f"{'gid coll':>10}{'name coll':>11}"
    )
    out(
        f"    {report.created:>10,}{report.existing:>9,}{wall:>8.1f}{n / wall:>9,.0f}"
        f"{report.uid_collisions:>10,}{report.gid_collisions:>10,}{report.name_collisions:>11,}"
    )
    verdict = "within" if wall <= BULK_TARGET_SECONDS else "OVER"
    record(
        "registry",
        f"bulk assign_many of {n:,} identities (SQLite)",
        wall,
        "s",
        target=f"~{BULK_TARGET_SECONDS} s",
        met=wall <= BULK_TARGET_SECONDS,
    )
    out(
        f"    duplicates by SQL (target 0): uid {dups['uid']}, personal_gid "
        f"{dups['personal_gid']}, username {dups['username']} | wall {verdict} "
        f"~{BULK_TARGET_SECONDS}s budget"
    )


def latencies(call: Callable[[IdentityKey], object], keys: list[IdentityKey]) -> list[float]:
    result = []
    for key in keys:
        start = time.perf_counter()
        call(key)
        result.append(time.perf_counter() - start)
    return result


def bench_latency(
    registry: IdentityRegistry, backend: str, population: int, sizes: Sizes
) -> tuple[str, ...]:
    """Rows for the latency table: lookup and map_identity fast path, p50/p99."""
    keys = sample_keys(population, sizes.lookup_calls)
    # map_identity's first call per key is a write (last_seen_at, memberships); after it
    # the unchanged identity takes the read-only fast path. Writes cost an fsync each, so
    # the fast path cycles over map_keys distinct keys (lookup_calls calls in all).
    mapped = keys[: sizes.map_keys] * (sizes.lookup_calls // sizes.map_keys)
    for key in keys[: sizes.map_keys]:
        registry.map_identity(key, None, GROUPS)
    for key in keys[: sizes.lookup_warmup]:
        registry.lookup(key)
    missing = sum(registry.lookup(key) is None for key in keys)
    gc.collect()  # the bulk run's garbage must not land in the timed calls
    rows = []
    target = LATENCY_TARGETS_MS[backend]

    def fast_path(key: IdentityKey) -> object:
        return registry.map_identity(key, None, GROUPS)

    calls: list[tuple[str, Callable[[IdentityKey], object], list[IdentityKey]]] = [
        ("lookup(key)", registry.lookup, keys),
        ("map_identity fast", fast_path, mapped),
    ]
    for what, call, sample in calls:
        t = latencies(call, sample)
        p99 = pct(t, 99) * 1000
        verdict = "within" if p99 < target else "OVER"
        record(
            "registry",
            f"{backend} {what} ({population:,} rows), p99",
            p99,
            "ms",
            target=f"< {target:g} ms",
            met=p99 < target,
        )
        record("registry", f"{backend} {what}, p50", statistics.median(t) * 1000, "ms")
        rows.append(
            f"    {backend:<11}{population:>10,} {what:<18}{len(t):>6}{ms(statistics.median(t))}"
            f"{ms(pct(t, 99))}{ms(max(t))}   p99 {verdict} target < {target:g} ms"
        )
    if missing:
        rows.append(f"    ! {backend}: {missing} of {len(keys)} sampled keys not found")
    return tuple(rows)


def latency_header(sizes: Sizes, out: Out) -> None:
    calls, keys = sizes.lookup_calls, sizes.map_keys
    out(
        f"[2] Latency of an existing identity: {calls} sequential calls each, random "
        f"keys (lookup: {calls} keys; map_identity: {keys} keys x "
        f"{calls // keys}, groups unchanged), after warm-up"
    )
    out(
        f"    {'backend':<11}{'rows':>10} {'call':<18}{'calls':>6}{'p50 ms':>8}"
        f"{'p99 ms':>8}{'max ms':>8}"
    )


def bench_postgres(sizes: Sizes) -> list[str]:
    if find_pg_bin() is None:
        return ["    PostgreSQL: not installed (apt-get install postgresql), skipped"]
    t0 = time.perf_counter()
    with postgres_server("registry") as server:
        registry = IdentityRegistry(db_url=server.url)
        try:
            report = registry.assign_many(identities(sizes.pg_identities))
            fill = time.perf_counter() - t0
            rows = list(bench_latency(registry, "PostgreSQL", sizes.pg_identities, sizes))
            dups = duplicates(registry)
        finally:
            registry.close()
    rows.append(
        f"    PostgreSQL: server start + {report.created:,} assign_many {fill:.1f}s; "
        f"duplicates uid/gid/name {dups['uid']}/{dups['personal_gid']}/{dups['username']}"
    )
    return rows


NO_POSIX = "c.IAMAuthenticator.posix_mapping = False\n"


def _posix_on_and_off(idp: IdPProcess) -> dict[str, str]:
    base = IAM_HUB_CONFIG.replace("{issuer}", idp.issuer(PROVIDER))
    return {
        "posix on": base + "c.IAMAuthenticator.posix_mapping = True\n",
        "posix off": base + NO_POSIX,
    }


def start_login_stack(workdir: Path) -> Stack:
    """One IdP, two ``iris-iam`` hubs: registry on (default) and registry off."""
    return start_hubs(workdir, ["posix on", "posix off"], _posix_on_and_off)


@dataclass
class LoginTimes:
    """Successful login times (whole login and callback alone) and failures per hub."""

    total: dict[str, list[float]] = field(default_factory=dict)
    callback: dict[str, list[float]] = field(default_factory=dict)
    failures: dict[str, list[str]] = field(default_factory=dict)


def warm_up(stack: Stack, sizes: Sizes) -> None:
    for name, hub in stack.hubs.items():
        for i in range(sizes.login_warmup):
            warm = timed_login(hub.url, *LOGIN_USERS[i % 2])
            if warm.status != 302:
                raise RuntimeError(f"warm-up login at hub {name} failed: {warm.error}")


def interleaved_logins(stack: Stack, sizes: Sizes) -> LoginTimes:
    names = list(stack.hubs)
    result = LoginTimes({n: [] for n in names}, {n: [] for n in names}, {n: [] for n in names})
    for i in range(sizes.login_rounds):
        for name in names if i % 2 == 0 else names[::-1]:  # no hub always goes first
            timing = timed_login(stack.hubs[name].url, *LOGIN_USERS[i % 2])
            if timing.status == 302:
                result.total[name].append(timing.seconds)
                result.callback[name].append(timing.callback_seconds)
            else:
                result.failures[name].append(timing.error)
    return result


def bench_login(workdir: Path, sizes: Sizes, out: Out) -> None:
    t0 = time.perf_counter()
    stack = start_login_stack(workdir)
    up = time.perf_counter() - t0
    try:
        warm_up(stack, sizes)
        times = interleaved_logins(stack, sizes)
        registry_seen = (stack.hubs["posix on"].workdir / REGISTRY_FILE).exists()
        registry_off = (stack.hubs["posix off"].workdir / REGISTRY_FILE).exists()
    except BaseException:
        out(stack.log_tails())
        raise
    finally:
        stack.stop()

    out(
        f"[3] Login overhead of the registry: 2 iris-iam hubs, one IdP (up in {up:.1f}s); "
        f"{sizes.login_warmup} warm-up + {sizes.login_rounds} interleaved logins each (ada/bob)"
    )
    out(
        f"    {'hub':<11}{'ok':>4}{'fail':>5}{'median ms':>11}{'p90 ms':>9}{'min ms':>9}"
        f"{'callback median ms':>20}"
    )
    for name, t in times.total.items():
        fails = times.failures[name]
        if not t:
            out(f"    {name:<11}{0:>4}{len(fails):>5}   (no successful login)")
            continue
        out(
            f"    {name:<11}{len(t):>4}{len(fails):>5}{ms(statistics.median(t)):>11}"
            f"{ms(pct(t, 90)):>9}{ms(min(t)):>9}{ms(statistics.median(times.callback[name])):>20}"
        )
        for error in sorted(set(fails)):
            out(f"    ! {name}: {fails.count(error)}x {error}")
    on, off = times.total["posix on"], times.total["posix off"]
    if on and off:
        cb_on = statistics.median(times.callback["posix on"])
        cb_off = statistics.median(times.callback["posix off"])
        record(
            "registry",
            "login with the registry (posix_mapping on), median",
            statistics.median(on) * 1000,
            "ms",
            baseline=statistics.median(off) * 1000,
            baseline_name="posix_mapping off",
        )
        out(
            f"    ratio on/off: median {statistics.median(on) / statistics.median(off):.2f}x, "
            f"p90 {pct(on, 90) / pct(off, 90):.2f}x, callback median {cb_on / cb_off:.2f}x "
            f"({(cb_on - cb_off) * 1000:+.1f} ms)"
        )
    out(
        f"    {REGISTRY_FILE} beside hub DB: posix on {'yes' if registry_seen else 'NO'}, "
        f"posix off {'yes (unexpected)' if registry_off else 'no'}"
    )


def run(out: Out = print, smoke: bool = False) -> None:
    """Run the three registry benchmarks and print the report; raise if one cannot run.

    ``smoke``: the :data:`SMOKE` sizes (every path, figures not meaningful)."""
    sizes = SMOKE if smoke else FULL
    n = identity_count(sizes.identities)
    out(f"iris-jupyterhub identity-registry benchmarks | N={n:,} (IRIS_BENCH_IDENTITIES)")
    with tempfile.TemporaryDirectory(prefix="iris-bench-posix-") as tmp:
        t0 = time.perf_counter()
        registry = IdentityRegistry(db_url=f"sqlite:///{Path(tmp) / 'registry.sqlite'}")
        try:
            bench_bulk(registry, n, out)
            out(f"    section time {time.perf_counter() - t0:.1f}s")
            t1 = time.perf_counter()
            rows = bench_latency(registry, "SQLite", n, sizes)
        finally:
            registry.close()
        (Path(tmp) / "registry.sqlite").unlink(missing_ok=True)
        latency_header(sizes, out)
        for row in rows:
            out(row)
        for row in bench_postgres(sizes):
            out(row)
        out(f"    section time {time.perf_counter() - t1:.1f}s")
        t2 = time.perf_counter()
        bench_login(Path(tmp) / "login", sizes, out)
        out(f"    section time {time.perf_counter() - t2:.1f}s")
