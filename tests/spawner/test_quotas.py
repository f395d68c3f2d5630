"""Group quotas as plain data."""

from __future__ import annotations

import pytest

from iris_jupyterhub.spawner.errors import SpawnRequestError
from iris_jupyterhub.spawner.quotas import GroupUsage, check_group_quota, validate_group_quotas
from iris_jupyterhub.spawner.resources import ResourceTotals

QUOTAS = validate_group_quotas(
    {"iris/lsst": {"servers": 2, "cpu": 8, "gpu": 1, "memory": "16G"}, "dune": {"gpu": 0}}
)


def test_validation_normalises_numbers() -> None:
    assert QUOTAS["iris/lsst"] == {"servers": 2, "cpu": 8, "gpu": 1, "memory": 16 * 2**30}


@pytest.mark.parametrize(
    ("quotas", "message"),
    [
        ({"iris/": {"cpu": 1}}, "bad group rule"),
        ({"iris:role=member": {"cpu": 1}}, "not roles"),
        ({"iris": {"cores": 1}}, "unknown limit"),
        ({"iris": {"servers": -1}}, "whole number"),
        ({"iris": {"servers": 1.5}}, "whole number"),
        ({"iris": {}}, "non-empty"),
        ({"iris": {"cpu": "lots"}}, "cpu"),
    ],
)
def test_bad_quotas_are_admin_errors(quotas: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        validate_group_quotas(quotas)


def test_within_quota_passes() -> None:
    running = [ResourceTotals(cpu=4, memory=2**30, gpu=0)]
    check_group_quota(QUOTAS, "iris/lsst", running, ResourceTotals(cpu=4, gpu=1))
    check_group_quota(QUOTAS, None, running * 10, ResourceTotals(cpu=100))
    check_group_quota(QUOTAS, "unlimited/group", running * 10, ResourceTotals(cpu=100))


@pytest.mark.parametrize(
    ("running", "request_", "named"),
    [
        ([ResourceTotals(), ResourceTotals()], ResourceTotals(), "2 running servers"),
        ([ResourceTotals(cpu=6)], ResourceTotals(cpu=4), "8 CPUs"),
        ([ResourceTotals(gpu=1)], ResourceTotals(gpu=1), "1 GPUs"),
        ([ResourceTotals(memory=10 * 2**30)], ResourceTotals(memory=8 * 2**30), "16 GiB memory"),
    ],
)
def test_over_quota_is_403_naming_the_limit(
    running: list[ResourceTotals], request_: ResourceTotals, named: str
) -> None:
    with pytest.raises(SpawnRequestError) as info:
        check_group_quota(QUOTAS, "iris/lsst", running, request_)
    assert info.value.status == 403
    assert named in info.value.message
    assert "iris/lsst" in info.value.message


def test_zero_gpu_quota_refuses_any_gpu() -> None:
    with pytest.raises(SpawnRequestError, match="GPUs"):
        check_group_quota(QUOTAS, "dune", [], ResourceTotals(gpu=1))


# --- running totals (GroupUsage) --------------------------------------------------------------

LSST = "iris/lsst"
CHECKED = validate_group_quotas({LSST: {"servers": 3, "cpu": 4, "memory": "8G", "gpu": 1}})


def test_reserve_counts_and_release_uncounts() -> None:
    usage = GroupUsage()
    usage.reserve(1, LSST, ResourceTotals(cpu=1.5, memory=2**30), CHECKED)
    usage.reserve(2, LSST, ResourceTotals(cpu=0.5, gpu=1), CHECKED)
    assert usage.in_use(LSST) == ResourceTotals(cpu=2, memory=2**30, gpu=1, servers=2)
    usage.release(1)
    usage.release(1)  # twice: still counted once
    assert usage.in_use(LSST) == ResourceTotals(cpu=0.5, gpu=1, servers=1)
    usage.release(2)
    assert usage.in_use(LSST) == ResourceTotals(servers=0)
    assert len(usage) == 0


def test_the_limits_are_enforced_and_a_refusal_counts_nothing() -> None:
    usage = GroupUsage()
    usage.reserve(1, LSST, ResourceTotals(gpu=1), CHECKED)
    with pytest.raises(SpawnRequestError, match="limit of 1 GPUs") as info:
        usage.reserve(2, LSST, ResourceTotals(gpu=1), CHECKED)
    assert info.value.status == 403
    with pytest.raises(SpawnRequestError, match="limit of 4 CPUs"):
        usage.reserve(2, LSST, ResourceTotals(cpu=4.5), CHECKED)
    with pytest.raises(SpawnRequestError, match="limit of 8 GiB memory"):
        usage.reserve(2, LSST, ResourceTotals(memory=9 * 2**30), CHECKED)
    usage.reserve(2, LSST, ResourceTotals(), CHECKED)
    usage.reserve(3, LSST, ResourceTotals(), CHECKED)
    with pytest.raises(SpawnRequestError, match="limit of 3 running servers"):
        usage.reserve(4, LSST, ResourceTotals(), CHECKED)
    assert usage.in_use(LSST).servers == 3
    # a server spawning again replaces its own reservation
    usage.reserve(3, LSST, ResourceTotals(cpu=1), CHECKED)
    assert usage.in_use(LSST) == ResourceTotals(cpu=1, gpu=1, servers=3)


def test_totals_stay_exact_over_many_fractional_cpus() -> None:
    usage = GroupUsage()
    for i in range(1000):
        usage.add(i, LSST, ResourceTotals(cpu=0.1))
    for i in range(1000):
        usage.release(i)
    usage.add("x", LSST, ResourceTotals(cpu=0.3))
    assert usage.in_use(LSST).cpu == 0.3
