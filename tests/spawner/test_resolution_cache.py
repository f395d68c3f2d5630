"""What the spawn path keeps between spawns is keyed on everything it depends on.

Resolutions are kept per profile and listed choices (and GPU settings), visible profiles
per groups and profile list, validated lists per content (types included): each test
changes one input and checks the answer changes with it, and that what is handed out is
a copy nobody can corrupt the kept result through.
"""

from __future__ import annotations

from typing import Any

import pytest

from iris_jupyterhub.groups import membership_from_string
from iris_jupyterhub.spawner.profiles import validate_profile_list
from iris_jupyterhub.spawner.resolution import resolve_request, visible_profiles
from iris_jupyterhub.spawner.resources import GpuScheduling
from iris_jupyterhub.spawner.spawner import _validated_profiles

PROFILES: list[dict[str, Any]] = [
    {
        "display_name": "GPU",
        "slug": "gpu",
        "resources": {"cpu": 2, "memory": "4G", "gpu": 1},
        "kubespawner_override": {"environment": {"A": "1"}},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {"display_name": "Base", "kubespawner_override": {"image": "b"}},
                    "lsst": {
                        "display_name": "LSST",
                        "allowed_groups": ["iris/lsst"],
                        "kubespawner_override": {"image": "l"},
                    },
                },
            }
        },
    }
]
LSST = [membership_from_string("iris/lsst")]
NOBODY = [membership_from_string("iris")]


def test_handed_out_overrides_are_copies_of_what_is_kept() -> None:
    profiles = validate_profile_list(PROFILES)
    first = resolve_request(profiles, LSST, {"profile": "gpu", "image": "lsst"})
    first.overrides["environment"]["A"] = "changed"  # type: ignore[index]
    first.overrides["node_selector"].clear()  # type: ignore[union-attr]
    again = resolve_request(profiles, LSST, {"profile": "gpu", "image": "lsst"})
    assert again.overrides["environment"] == {"A": "1"}
    assert again.overrides["node_selector"]
    assert again.overrides["image"] == "l"
    assert again.resources == first.resources


def test_other_choices_and_gpu_settings_are_not_served_a_kept_result() -> None:
    profiles = validate_profile_list(PROFILES)
    base = resolve_request(profiles, LSST, {"profile": "gpu", "image": "base"})
    lsst = resolve_request(profiles, LSST, {"profile": "gpu", "image": "lsst"})
    assert (base.overrides["image"], lsst.overrides["image"]) == ("b", "l")
    amd = GpuScheduling(resource="amd.com/gpu", node_selector={"gpu": "amd"}, toleration=None)
    other = resolve_request(profiles, LSST, {"profile": "gpu", "image": "lsst"}, gpu=amd)
    assert other.overrides["extra_resource_limits"] == {"amd.com/gpu": "1"}
    assert other.overrides["node_selector"] == {"gpu": "amd"}
    assert other.tolerations == ()
    assert lsst.overrides["extra_resource_limits"] == {"nvidia.com/gpu": "1"}


def test_visible_profiles_follow_the_groups_and_the_list() -> None:
    profiles = validate_profile_list(PROFILES)
    mine = visible_profiles(profiles, LSST)
    theirs = visible_profiles(profiles, NOBODY)
    assert [c.slug for c in mine[0].options[0].choices] == ["base", "lsst"]
    assert [c.slug for c in theirs[0].options[0].choices] == ["base"]
    changed = [{**PROFILES[0], "allowed_groups": ["iris/dune"]}]
    assert visible_profiles(validate_profile_list(changed), LSST) == []
    assert visible_profiles(profiles, LSST) == mine  # the kept answer is still right


def test_validated_lists_are_kept_per_content_with_types() -> None:
    gpu = GpuScheduling()
    listed = [{"display_name": "A", "slug": "a", "default": True}]
    assert _validated_profiles(listed, gpu)[0].default is True
    with pytest.raises(ValueError, match="default must be true or false"):
        _validated_profiles([{"display_name": "A", "slug": "a", "default": 1}], gpu)
    renamed = _validated_profiles([{"display_name": "B", "slug": "a", "default": True}], gpu)
    assert renamed[0].display_name == "B"
