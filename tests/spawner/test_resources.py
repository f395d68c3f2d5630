"""The ``resources`` shorthand and the totals quotas count, as plain data."""

from __future__ import annotations

from typing import Any

import pytest

from iris_jupyterhub.spawner.resources import (
    GpuScheduling,
    ResourceRequest,
    ResourceTotals,
    check_resource_overrides,
    expand_resources,
    parse_cpu,
    parse_memory,
    parse_resources,
    summarise_resources,
)

GIB = 1024**3


@pytest.mark.parametrize(
    ("text", "size"),
    [
        ("8G", 8 * GIB),
        ("8Gi", 8 * GIB),
        ("512M", 512 * 1024**2),
        ("512Mi", 512 * 1024**2),
        ("1.5G", 3 * GIB // 2),
        ("2T", 2 * 1024**4),
        (4096, 4096),
        ("100", 100),
        ("64K", 65536),
    ],
)
def test_memory_sizes(text: object, size: int) -> None:
    assert parse_memory(text) == size


@pytest.mark.parametrize(
    "text", ["-1G", "8 gigs", "8g", "8GB", "8i", "", "1e3G", "65T", True, None, -5, float("nan")]
)
def test_bad_memory_sizes(text: object) -> None:
    with pytest.raises(ValueError, match="memory"):
        parse_memory(text)


@pytest.mark.parametrize(("text", "cores"), [(2, 2.0), (0.5, 0.5), ("500m", 0.5), ("4", 4.0)])
def test_cpu(text: object, cores: float) -> None:
    assert parse_cpu(text) == cores


@pytest.mark.parametrize("text", [-1, "-1", "1e9", 5000, "two", True, float("inf")])
def test_bad_cpu(text: object) -> None:
    with pytest.raises(ValueError, match="cpu"):
        parse_cpu(text)


@pytest.mark.parametrize(
    ("spec", "words"),
    [
        ({"cpus": 2}, "unknown resources key"),
        ({"gpu": -1}, "whole number"),
        ({"gpu": 1.5}, "whole number"),
        ({"gpu": 1000}, "more than"),
        ({"gpu_resource": "gpu"}, "extended resource"),
        ({"cpu": 2, "cpu_guarantee": 4}, "above"),
        ({"memory": "1G", "memory_guarantee": "2G"}, "above"),
        ([("cpu", 2)], "mapping"),
    ],
)
def test_bad_shorthand(spec: object, words: str) -> None:
    with pytest.raises(ValueError, match=words):
        parse_resources(spec)


def test_expansion_sets_limits_and_guarantees() -> None:
    request = parse_resources({"cpu": 2, "memory": "8G", "cpu_guarantee": "500m"})
    settings = expand_resources(request, {"image": "x"})
    assert settings.overrides == {
        "image": "x",
        "cpu_limit": 2.0,
        "cpu_guarantee": 0.5,
        "mem_limit": 8 * GIB,
        "mem_guarantee": 8 * GIB,
    }
    assert settings.tolerations == ()


def test_gpus_merge_with_other_extended_resources_and_never_replace_them() -> None:
    overrides: dict[str, Any] = {
        "extra_resource_limits": {"example.com/fpga": "1"},
        "extra_resource_guarantees": {"example.com/fpga": "1"},
        "node_selector": {"pool": "gpu-a100"},
    }
    settings = expand_resources(parse_resources({"gpu": 2}), overrides)
    assert settings.overrides["extra_resource_limits"] == {
        "example.com/fpga": "1",
        "nvidia.com/gpu": "2",
    }
    assert settings.overrides["extra_resource_guarantees"]["nvidia.com/gpu"] == "2"
    assert settings.overrides["node_selector"] == {
        "nvidia.com/gpu.present": "true",
        "pool": "gpu-a100",
    }
    assert settings.tolerations == (
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    )
    assert overrides["extra_resource_limits"] == {"example.com/fpga": "1"}  # not modified


def test_profiles_own_gpu_scheduling_wins() -> None:
    own = {
        "node_selector": {"nvidia.com/gpu.present": "false-but-admin-knows"},
        "tolerations": [{"key": "nvidia.com/gpu", "operator": "Equal", "value": "a100"}],
    }
    settings = expand_resources(parse_resources({"gpu": 1}), own)
    assert settings.overrides["node_selector"] == own["node_selector"]
    assert settings.tolerations == ()


def test_site_gpu_defaults_are_parameters() -> None:
    site = GpuScheduling(resource="amd.com/gpu", node_selector={"gpu": "amd"}, toleration=None)
    settings = expand_resources(parse_resources({"gpu": 1}), {}, site)
    assert settings.overrides["extra_resource_limits"] == {"amd.com/gpu": "1"}
    assert settings.overrides["node_selector"] == {"gpu": "amd"}
    assert settings.tolerations == ()


@pytest.mark.parametrize(
    ("spec", "overrides"),
    [
        ({"cpu": 1}, {"cpu_limit": 2}),
        ({"memory": "1G"}, {"mem_guarantee": "1G"}),
        ({"gpu": 1}, {"extra_resource_limits": {"nvidia.com/gpu": "1"}}),
    ],
)
def test_same_setting_twice_is_an_admin_error(
    spec: dict[str, Any], overrides: dict[str, Any]
) -> None:
    with pytest.raises(ValueError, match="both by kubespawner_override and by the resources"):
        expand_resources(parse_resources(spec), overrides)


def test_zero_gpus_adds_nothing_and_later_requests_win() -> None:
    merged = parse_resources({"cpu": 2, "gpu": 1}).merged(parse_resources({"gpu": 0}))
    assert merged == ResourceRequest(cpu=2.0, gpu=0)
    assert "extra_resource_limits" not in expand_resources(merged, {}).overrides


def test_overrides_are_normalised_and_checked() -> None:
    checked = check_resource_overrides(
        {"cpu_limit": "2", "mem_limit": "4G", "extra_resource_limits": {"nvidia.com/gpu": 1}}
    )
    assert checked == {
        "cpu_limit": 2.0,
        "mem_limit": 4 * GIB,
        "extra_resource_limits": {"nvidia.com/gpu": "1"},
    }
    with pytest.raises(ValueError, match="cpu_limit"):
        check_resource_overrides({"cpu_limit": -4})
    with pytest.raises(ValueError, match="above"):
        check_resource_overrides({"mem_limit": "1G", "mem_guarantee": "2G"})


def test_totals_for_quotas() -> None:
    one = summarise_resources(
        {"cpu_limit": 4, "mem_limit": "8G", "extra_resource_limits": {"nvidia.com/gpu": "2"}}
    )
    two = summarise_resources({"cpu_guarantee": 0.5, "mem_guarantee": 1024})
    assert one == ResourceTotals(cpu=4.0, memory=8 * GIB, gpu=2)
    assert ResourceTotals.total([one, two]) == ResourceTotals(4.5, 8 * GIB + 1024, 2, 2)
    assert ResourceTotals.total([]) == ResourceTotals(servers=0)
    assert summarise_resources({}) == ResourceTotals()
