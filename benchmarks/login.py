"""Login benchmarks against the real stack: loopback IdP (node), JupyterHub and proxy.

1. Round trip: ``iris-iam`` against oauthenticator's plain ``GenericOAuthenticator``, two hubs
   side by side against ONE IdP process, logins interleaved in the same run.
2. Concurrency: 200 logins at once (50 threads) against the ``iris-iam`` hub.

``--smoke`` (:data:`SMOKE`) runs both with a handful of logins.

Everything is printed; nothing is asserted.
"""

from __future__ import annotations

import collections
import concurrent.futures
import contextlib
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from benchmarks.results import record
from devstack.configs import IAM_HUB_CONFIG
from devstack.hub import REPO_ROOT, HubProcess
from devstack.idp import IdPProcess, default_clients, free_port, make_rsa_jwk
from devstack.login import hub_login

PROVIDER = "iam"
TARGET_RATIO = 1.10
HUB_SIDE_ENDPOINTS = ("discovery", "jwks", "token", "userinfo")

GENERIC_HUB_CONFIG = """
c.JupyterHub.authenticator_class = "generic-oauth"
c.GenericOAuthenticator.authorize_url = "{authorize_url}"
c.GenericOAuthenticator.token_url = "{token_url}"
c.GenericOAuthenticator.userdata_url = "{userdata_url}"
c.GenericOAuthenticator.client_id = "hub"
c.GenericOAuthenticator.client_secret = "s3cret"
c.GenericOAuthenticator.username_claim = "preferred_username"
c.GenericOAuthenticator.scope = ["openid", "profile", "email", "offline_access", "wlcg.groups"]
c.GenericOAuthenticator.enable_auth_state = True
c.GenericOAuthenticator.allow_all = True
c.GenericOAuthenticator.manage_groups = True
c.GenericOAuthenticator.auth_state_groups_key = "oauth_user.groups"
# The IdP's "hub" client is registered for client_secret_post (default_clients) and the IdP
# enforces the registered method; oauthenticator's default (basic_auth=True) would get a 401.
c.GenericOAuthenticator.basic_auth = False
"""

Out = Callable[[str], None]


@dataclass(frozen=True)
class Sizes:
    """How many logins each benchmark makes."""

    warmup: int = 5
    rounds: int = 80
    concurrent_logins: int = 200
    concurrent_workers: int = 50


FULL = Sizes()
SMOKE = Sizes(warmup=1, rounds=4, concurrent_logins=12, concurrent_workers=4)


@dataclass
class Stack:
    workdir: Path
    idp: IdPProcess
    hubs: dict[str, HubProcess] = field(default_factory=dict)

    def stop(self) -> None:
        for hub in self.hubs.values():
            with contextlib.suppress(Exception):
                hub.stop()
        with contextlib.suppress(Exception):
            self.idp.close()

    def log_tails(self) -> str:
        parts = [f"--- idp.log ---\n{self.idp.log_tail(20)}"]
        parts += [f"--- hub {name} ---\n{hub.log_tail(20)}" for name, hub in self.hubs.items()]
        return "\n".join(parts)


def start_hubs(
    workdir: Path, names: list[str], configs: Callable[[IdPProcess], dict[str, str]]
) -> Stack:
    """One IdP with every hub's callback registered, then the hubs ``configs(idp)`` names."""
    ports = {name: free_port() for name in names}
    callbacks = [f"http://127.0.0.1:{p}/hub/oauth_callback" for p in ports.values()]
    idp = IdPProcess(
        REPO_ROOT,
        workdir / "idp",
        clients=default_clients(callbacks),
        provider_jwks={PROVIDER: {"keys": [make_rsa_jwk("iam-key-1")]}},
    )
    stack = Stack(workdir=workdir, idp=idp)
    try:
        idp.start()
        hub_configs = configs(idp)
        for name, port in ports.items():
            folder = workdir / f"hub-{name.lower().replace(' ', '-')}"
            stack.hubs[name] = HubProcess(folder, port, hub_configs[name])
        with concurrent.futures.ThreadPoolExecutor(max_workers=len(ports)) as pool:
            for future in [pool.submit(hub.start) for hub in stack.hubs.values()]:
                future.result()
    except BaseException:
        stack.stop()
        raise
    return stack


def _iam_and_generic(idp: IdPProcess) -> dict[str, str]:
    discovery = httpx.get(idp.discovery_url(PROVIDER), timeout=10).raise_for_status().json()
    return {
        # the authenticator alone; the registry's cost is measured in benchmarks/posix.py
        "IAM": IAM_HUB_CONFIG.replace("{issuer}", idp.issuer(PROVIDER))
        + "\nc.IAMAuthenticator.posix_mapping = False\n",
        "Generic": GENERIC_HUB_CONFIG.format(
            authorize_url=discovery["authorization_endpoint"],
            token_url=discovery["token_endpoint"],
            userdata_url=discovery["userinfo_endpoint"],
        ),
    }


def start_stack(workdir: Path) -> Stack:
    """One IdP, the IAM hub and the generic hub."""
    return start_hubs(workdir, ["IAM", "Generic"], _iam_and_generic)


@dataclass
class Timing:
    status: int | None  # the callback's HTTP status; None if the login broke before it
    seconds: float  # GET /hub/oauth_login .. callback response
    callback_seconds: float  # the callback request alone (code exchange, userinfo, hub login)
    error: str = ""


def timed_login(hub_url: str, login: str, password: str) -> Timing:
    """One full login with a fresh client (no IdP session, no hub cookie)."""
    marks: list[float] = []
    with httpx.Client(timeout=30) as client:
        start = time.perf_counter()
        try:
            attempt = hub_login(
                hub_url,
                login,
                password,
                client=client,
                before_callback=lambda _: marks.append(time.perf_counter()),
            )
        except Exception as e:  # a failed login is a measurement, not a crash
            first_line = (str(e).strip().splitlines() or [""])[0][:90]
            return Timing(
                None, time.perf_counter() - start, 0.0, f"{type(e).__name__}: {first_line}"
            )
        end = time.perf_counter()
    error = "" if attempt.status == 302 else f"callback HTTP {attempt.status}"
    return Timing(attempt.status, end - start, end - marks[0], error)


def pct(values: list[float], p: int) -> float:
    """The p-th percentile (inclusive interpolation)."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.1f}"


def bench_round_trip(stack: Stack, sizes: Sizes, out: Out) -> None:
    users = [("ada", "ada-pass"), ("bob", "bob-pass")]
    names = list(stack.hubs)
    for name in names:
        for i in range(sizes.warmup):
            warm = timed_login(stack.hubs[name].url, *users[i % 2])
            if warm.status != 302:
                raise RuntimeError(f"warm-up login at hub {name} failed: {warm.error}")
    times: dict[str, list[float]] = {name: [] for name in names}
    callback: dict[str, list[float]] = {name: [] for name in names}
    failures: dict[str, list[str]] = {name: [] for name in names}
    per_endpoint: dict[str, collections.Counter[str]] = {n: collections.Counter() for n in names}
    paired: list[float] = []  # IAM / Generic of the two logins of one round
    seen = len(stack.idp.requests(PROVIDER))
    for i in range(sizes.rounds):
        order = names if i % 2 == 0 else names[::-1]  # no hub always goes first
        this_round: dict[str, float] = {}
        for name in order:
            timing = timed_login(stack.hubs[name].url, *users[i % 2])
            log = stack.idp.requests(PROVIDER)  # outside the timed part
            per_endpoint[name].update(str(r["endpoint"]) for r in log[seen:])
            seen = len(log)
            if timing.status == 302:
                times[name].append(timing.seconds)
                callback[name].append(timing.callback_seconds)
                this_round[name] = timing.seconds
            else:
                failures[name].append(timing.error)
        if len(this_round) == 2:
            paired.append(this_round["IAM"] / this_round["Generic"])

    out(
        f"[1] Login round trip, same IdP, same run: {sizes.warmup} warm-up + {sizes.rounds} "
        "interleaved"
    )
    out("    sequential logins per hub (ada/bob alternating; GET /hub/oauth_login -> callback)")
    out("    IAM hub with posix_mapping off: the authenticator alone (registry: see [posix])")
    out(
        f"    {'hub':<9}{'ok':>4}{'fail':>5}{'median ms':>11}{'p90 ms':>9}{'min ms':>9}"
        f"{'callback median ms':>20}"
    )
    for name in names:
        t = times[name]
        if not t:
            out(f"    {name:<9}{0:>4}{len(failures[name]):>5}   (no successful login)")
            continue
        out(
            f"    {name:<9}{len(t):>4}{len(failures[name]):>5}"
            f"{ms(statistics.median(t)):>11}{ms(pct(t, 90)):>9}{ms(min(t)):>9}"
            f"{ms(statistics.median(callback[name])):>20}"
        )
    for name in names:
        for error in sorted(set(failures[name])):
            out(f"    ! {name}: {failures[name].count(error)}x {error}")
    report_ratios(times, callback, paired, out)
    print_idp_requests(per_endpoint, sizes.rounds, out)


def report_ratios(
    times: dict[str, list[float]],
    callback: dict[str, list[float]],
    paired: list[float],
    out: Out,
) -> None:
    """IAM against Generic: the ratio of medians and the paired ratios, printed and recorded."""
    if times["IAM"] and times["Generic"]:
        ratio = statistics.median(times["IAM"]) / statistics.median(times["Generic"])
        ratio90 = pct(times["IAM"], 90) / pct(times["Generic"], 90)
        verdict = "within" if ratio <= TARGET_RATIO else "OVER"
        out(
            f"    ratio IAM/Generic: median {ratio:.2f}x"
            f" ({verdict} target <= {TARGET_RATIO:.2f}x), p90 {ratio90:.2f}x"
        )
        record(
            "login",
            "login round trip, median",
            statistics.median(times["IAM"]) * 1e3,
            "ms",
            baseline=statistics.median(times["Generic"]) * 1e3,
            baseline_name="GenericOAuthenticator",
            target=f"<= {TARGET_RATIO:.2f}x",
            met=ratio <= TARGET_RATIO,
        )
        record(
            "login",
            "callback alone, median",
            statistics.median(callback["IAM"]) * 1e3,
            "ms",
            baseline=statistics.median(callback["Generic"]) * 1e3,
            baseline_name="GenericOAuthenticator",
        )
    if paired:
        # each round's two logins ran back to back: their ratio cancels the machine's
        # load at that moment, which the ratio of two medians does not
        median_pair, p90_pair = statistics.median(paired), pct(paired, 90)
        out(
            f"    paired ratio (IAM/Generic of each round, {len(paired)} rounds): median "
            f"{median_pair:.2f}x, p90 {p90_pair:.2f}x"
        )
        record(
            "login",
            "paired ratio IAM/Generic per round, median",
            median_pair,
            "x",
            target=f"<= {TARGET_RATIO:.2f}",
            met=median_pair <= TARGET_RATIO,
        )
        record("login", "paired ratio IAM/Generic per round, p90", p90_pair, "x")


def print_idp_requests(
    per_endpoint: dict[str, collections.Counter[str]], rounds: int, out: Out
) -> None:
    """Average IdP requests per login, by endpoint, for each hub."""
    out("    IdP requests per login (hub-side = discovery/jwks/token/userinfo; rest: browser)")
    names = list(per_endpoint)
    endpoints = sorted({e for c in per_endpoint.values() for e in c})
    out(
        f"    {'hub':<9}"
        + "".join(f"{e:>14}" for e in endpoints)
        + f"{'total':>8}{'hub-side':>10}"
    )
    for name in names:
        counts = per_endpoint[name]
        total = sum(counts.values()) / rounds
        hub_side = sum(counts[e] for e in HUB_SIDE_ENDPOINTS) / rounds
        row = "".join(f"{counts[e] / rounds:>14.2f}" for e in endpoints)
        out(f"    {name:<9}{row}{total:>8.2f}{hub_side:>10.2f}")


def _new_error_lines(path: Path, offset: int) -> list[str]:
    """JupyterHub ``[E ...]`` log lines written after ``offset``, without their timestamps."""
    with path.open("rb") as f:
        f.seek(offset)
        text = f.read().decode(errors="replace")
    return [line.split("]", 1)[-1].strip() for line in text.splitlines() if line.startswith("[E ")]


def bench_concurrent(stack: Stack, sizes: Sizes, out: Out) -> None:
    hub = stack.hubs["IAM"]
    users = [("ada", "ada-pass"), ("bob", "bob-pass"), ("carol", "carol-pass")]
    log_offset = hub.log_path.stat().st_size
    idp_seen = len(stack.idp.requests(PROVIDER))
    start = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(max_workers=sizes.concurrent_workers) as pool:
        futures = [
            pool.submit(timed_login, hub.url, *users[i % len(users)])
            for i in range(sizes.concurrent_logins)
        ]
        results = [f.result() for f in futures]
    wall = time.perf_counter() - start
    ok = [r.seconds for r in results if r.status == 302]
    errors = collections.Counter(r.error for r in results if r.status != 302)
    idp_log = stack.idp.requests(PROVIDER)[idp_seen:]
    idp_errors = collections.Counter(
        f"{r['endpoint']} HTTP {r['status']}" for r in idp_log if (r["status"] or 0) >= 500
    )
    hub_errors = collections.Counter(_new_error_lines(hub.log_path, log_offset))
    all_t = [r.seconds for r in results]

    out(
        f"[2] {sizes.concurrent_logins} concurrent logins, hub IAM "
        f"({sizes.concurrent_workers} threads, one httpx.Client each, ada/bob/carol)"
    )
    out(
        f"    {'ok':>4}{'errors':>8}{'p50 ms':>9}{'p99 ms':>9}{'max ms':>9}"
        f"{'wall s':>8}{'logins/s':>10}"
    )
    p50 = ms(statistics.median(ok)) if ok else "       -"
    p99 = ms(pct(ok, 99)) if ok else "       -"
    out(
        f"    {len(ok):>4}{sum(errors.values()):>8}{p50:>9}{p99:>9}{ms(max(all_t)):>9}"
        f"{wall:>8.2f}{sizes.concurrent_logins / wall:>10.1f}"
    )
    out(f"    errors: {sum(errors.values())} (target 0); IdP requests {len(idp_log)}")
    if ok:
        record(
            "login",
            f"{sizes.concurrent_logins} concurrent logins, p99",
            pct(ok, 99) * 1e3,
            "ms",
        )
    record(
        "login",
        f"{sizes.concurrent_logins} concurrent logins, errors",
        sum(errors.values()),
        "",
        target="0",
        met=not errors,
    )
    for error, count in errors.most_common(5):
        out(f"    ! client: {count}x {error}")
    for error, count in idp_errors.most_common(3):
        out(f"    ! IdP answered {count}x {error}")
    for error, count in hub_errors.most_common(3):
        out(f"    ! hub log: {count}x {error[:110]}")


def header(out: Out) -> None:
    import os
    import platform
    from importlib.metadata import version

    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    out(
        f"iris-jupyterhub login benchmarks | jupyterhub {version('jupyterhub')}"
        f" | oauthenticator {version('oauthenticator')} | Python {platform.python_version()}"
    )
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else "?"
    out(f"CPUs: {os.cpu_count()} (usable {usable}) | open files limit {soft}")


def run(out: Out = print, smoke: bool = False) -> None:
    """Start the stack, run both benchmarks, print the report; raise if they cannot run.

    ``smoke``: the :data:`SMOKE` sizes (every path, figures not meaningful)."""
    sizes = SMOKE if smoke else FULL
    header(out)
    with tempfile.TemporaryDirectory(prefix="iris-bench-") as tmp:
        t0 = time.perf_counter()
        stack = start_stack(Path(tmp))
        out(
            f"stack up in {time.perf_counter() - t0:.1f}s: IdP {stack.idp.base_url}, "
            + ", ".join(f"hub {name} {hub.url}" for name, hub in stack.hubs.items())
        )
        try:
            bench_round_trip(stack, sizes, out)
            bench_concurrent(stack, sizes, out)
        except BaseException:
            out(stack.log_tails())
            raise
        finally:
            stack.stop()
