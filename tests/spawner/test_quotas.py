"""Group quotas as plain data."""

from __future__ import annotations

import pytest

from iris_jupyterhub.spawner.errors import SpawnRequestError
from iris_jupyterhub.spawner.quotas import check_group_quota, validate_group_quotas
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
