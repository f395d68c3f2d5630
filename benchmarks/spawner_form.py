"""Spawner benchmark [2]: the form for a user with 200 groups and a list of 50 profiles,
``IRISSpawner._render_iris_form`` against KubeSpawner's ``_render_options_form`` on the
plain list."""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from typing import Any

from benchmarks.login import pct
from benchmarks.results import record
from benchmarks.spawner_manifest import BenchUser, Out, _common_config, _image

FORM_GROUPS = 200
FORM_PROFILES = 50
FORM_TARGET_MS = 10.0


def form_profiles() -> list[dict[str, Any]]:
    """50 profiles; every 5th only for a group nobody has; two options with group rules."""
    profiles = []
    for i in range(FORM_PROFILES):
        hidden = i % 5 == 4
        profiles.append(
            {
                "display_name": f"Profile {i:02d}",
                "slug": f"p{i:02d}",
                "description": f"{i + 1} cores for group vo{i * 4}",
                "default": i == 0,
                "allowed_groups": [f"iris/none{i}"] if hidden else [f"iris/vo{i * 4}", "iris"],
                "required_groups": [f"iris/vo{i * 4}"] if i % 2 else ["iris"],
                "resources": {"cpu": 1 + i % 8, "memory": f"{2 + i % 8}G"},
                "profile_options": {
                    "image": {
                        "display_name": "Image",
                        "choices": {
                            "base": {
                                "display_name": "Base",
                                "kubespawner_override": _image("base"),
                            },
                            "scipy": {
                                "display_name": "SciPy",
                                "allowed_groups": [f"iris/vo{(i * 4 + 1) % 199}"],
                                "kubespawner_override": _image("scipy"),
                            },
                            "torch": {
                                "display_name": "PyTorch",
                                "allowed_groups": [f"iris/none{i}"],
                                "kubespawner_override": _image("pytorch"),
                            },
                        },
                    },
                    "size": {
                        "display_name": "Size",
                        "choices": {
                            "small": {"display_name": "Small", "resources": {"cpu": 1}},
                            "large": {
                                "display_name": "Large",
                                "allowed_groups": [f"iris/vo{i}"],
                                "resources": {"cpu": 8, "memory": "32G"},
                            },
                        },
                    },
                },
            }
        )
    return profiles


def plain_form_profiles(profiles: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The same list without the IRIS keys, as vanilla KubeSpawner would get it."""

    def strip(item: dict[str, Any]) -> dict[str, Any]:
        return {
            k: v
            for k, v in item.items()
            if k not in {"allowed_groups", "required_groups", "resources"}
        }

    plain = []
    for profile in profiles:
        entry = strip(profile)
        entry["profile_options"] = {
            key: {
                **option,
                "choices": {slug: strip(c) for slug, c in option["choices"].items()},
            }
            for key, option in profile["profile_options"].items()
        }
        plain.append(entry)
    return plain


def many_groups_auth_state() -> dict[str, Any]:
    """A user with 200 canonical groups and a POSIX entry with 200 groups."""
    vos = [f"iris/vo{k}" for k in range(FORM_GROUPS - 1)]
    groups = [{"name": "ada", "gid": 2000001}]
    groups += [
        {"name": f"iris-vo{k}", "gid": 3000100 + k, "canonical": vo} for k, vo in enumerate(vos)
    ]
    return {
        "groups": ["iris", *vos],
        "posix": {"uid": 2000001, "gid": 2000001, "username": "ada", "groups": groups},
    }


async def _form_bench(warmup: int, runs: int) -> dict[str, Any]:
    from kubespawner import KubeSpawner

    from iris_jupyterhub.spawner import IRISSpawner

    profiles = form_profiles()
    plain = plain_form_profiles(profiles)
    user = BenchUser("ada", many_groups_auth_state())
    iris = IRISSpawner(_mock=True, user=user, **_common_config(), profile_list=profiles)
    vanilla = KubeSpawner(_mock=True, user=user, **_common_config(), profile_list=plain)
    times: dict[str, list[float]] = {"iris": [], "vanilla": []}
    forms: dict[str, str] = {}
    for i in range(warmup + runs):
        start = time.perf_counter()
        forms["iris"] = await iris._render_iris_form(iris)
        middle = time.perf_counter()
        forms["vanilla"] = str(vanilla._render_options_form(plain))
        end = time.perf_counter()
        if i >= warmup:
            times["iris"].append(middle - start)
            times["vanilla"].append(end - middle)
    shown = sum(f'value="p{i:02d}"' in forms["iris"] for i in range(FORM_PROFILES))
    return {
        "times": times,
        "forms": forms,
        "shown": shown,
        "steps": await _form_steps(iris, runs // 2),
    }


async def _form_steps(iris: Any, runs: int) -> dict[str, float]:
    """Median seconds of the steps of ``_render_iris_form``, each timed on its own."""
    from iris_jupyterhub.groups import memberships_from_auth_state
    from iris_jupyterhub.spawner.charging import admitted_rules
    from iris_jupyterhub.spawner.form import charge_line
    from iris_jupyterhub.spawner.resolution import profile_list_for_form, visible_profiles

    steps: dict[str, list[float]] = {}

    def lap(name: str, start: float) -> float:
        now = time.perf_counter()
        steps.setdefault(name, []).append(now - start)
        return now

    for _ in range(runs):
        t = time.perf_counter()
        auth_state = await iris.user.get_auth_state()
        profiles = await iris._profiles()
        t = lap("profile_list validation", t)
        visible = visible_profiles(profiles, memberships_from_auth_state(auth_state))
        t = lap("group rules (visible_profiles)", t)
        listing = profile_list_for_form(visible)
        t = lap("profile_list_for_form", t)
        iris._render_profile_form(listing)
        t = lap("KubeSpawner's template (compiled once)", t)
        charge_line(
            visible,
            memberships_from_auth_state(auth_state),
            posix=auth_state.get("posix") or {},
            saved=iris.user_options,
            admitted=admitted_rules(auth_state),
            preference=iris._charge_preference(),
        )
        lap("charge line", t)
    return {name: statistics.median(values) for name, values in steps.items()}


def bench_form(warmup: int, runs: int, out: Out) -> None:
    gc.collect()
    result = asyncio.run(_form_bench(warmup, runs))
    times, forms = result["times"], result["forms"]
    out(
        f"[2] Form render: {FORM_PROFILES} profiles (group rules on profiles and choices, "
        f"2 options each), user with {FORM_GROUPS} canonical + {FORM_GROUPS} POSIX groups; "
        f"{warmup} warm-up + {runs} runs"
    )
    out(f"    {'render':<42}{'median ms':>10}{'p99 ms':>8}{'max ms':>8}{'HTML KB':>9}")
    rows = [
        ("iris", f"IRISSpawner._render_iris_form ({result['shown']} shown)"),
        ("vanilla", f"KubeSpawner._render_options_form ({FORM_PROFILES})"),
    ]
    for key, label in rows:
        t = times[key]
        out(
            f"    {label:<42}{statistics.median(t) * 1e3:>10.2f}{pct(t, 99) * 1e3:>8.2f}"
            f"{max(t) * 1e3:>8.2f}{len(forms[key]) / 1024:>9.0f}"
        )
    median = statistics.median(times["iris"]) * 1e3
    verdict = "within" if median < FORM_TARGET_MS else "OVER"
    out(
        f"    IRIS median {verdict} target < {FORM_TARGET_MS:g} ms; IRIS/vanilla median "
        f"{statistics.median(times['iris']) / statistics.median(times['vanilla']):.2f}x"
    )
    vanilla = statistics.median(times["vanilla"]) * 1e3
    record(
        "spawner",
        f"spawn form render ({FORM_GROUPS} groups x {FORM_PROFILES} profiles), median",
        median,
        "ms",
        baseline=vanilla,
        baseline_name="KubeSpawner",
        target=f"< {FORM_TARGET_MS:g} ms and < KubeSpawner",
        met=median < FORM_TARGET_MS and median < vanilla,
    )
    steps = ", ".join(f"{name} {t * 1e3:.1f}" for name, t in result["steps"].items())
    out(f"    IRIS steps, median ms: {steps}")
