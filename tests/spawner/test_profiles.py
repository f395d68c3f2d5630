"""Profile lists and spawn requests, as plain data: what admins write, what researchers send."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from iris_jupyterhub.groups import GroupMembership, membership_from_string
from iris_jupyterhub.spawner.errors import SpawnRequestError
from iris_jupyterhub.spawner.profiles import validate_profile_list
from iris_jupyterhub.spawner.resolution import (
    profile_list_for_form,
    resolve_request,
    visible_profiles,
)

# KubeSpawner 7.0's own `profile_list` example, verbatim (spawner.py, `profile_list` help).
KUBESPAWNER_EXAMPLE: list[dict[str, Any]] = [
    {
        "display_name": "Demo - profile_list entry 1",
        "description": "Demo description for profile_list entry 1, and it should look good "
        "even though it is a bit lengthy.",
        "slug": "demo-1",
        "default": True,
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {
                        "display_name": "jupyter/base-notebook:latest",
                        "kubespawner_override": {"image": "jupyter/base-notebook:latest"},
                    },
                    "minimal": {
                        "display_name": "jupyter/minimal-notebook:latest",
                        "default": True,
                        "kubespawner_override": {"image": "jupyter/minimal-notebook:latest"},
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Other image",
                    "display_name_in_choices": "Enter image manually",
                    "validation_regex": "^jupyter/.+:.+$",
                    "validation_message": "Must be an image matching ^jupyter/<name>:<tag>$",
                    "kubespawner_override": {"image": "{value}"},
                },
            },
        },
        "kubespawner_override": {"default_url": "/lab"},
    },
    {
        "display_name": "Demo - profile_list entry 2",
        "slug": "demo-2",
        "kubespawner_override": {"extra_resource_guarantees": {"nvidia.com/gpu": "1"}},
    },
]

# The z2jh 4.4.0 `singleuser.profileList` example (values.schema.yaml), as YAML loads it.
Z2JH_EXAMPLE: list[dict[str, Any]] = [
    {
        "display_name": "Default: Shared, 8 CPU cores",
        "description": "Your code will run on a shared machine with CPU only.",
        "default": True,
    },
    {
        "display_name": "Personal, 4 CPU cores & 26GB RAM, 1 NVIDIA Tesla K80 GPU",
        "description": "Your code will run a personal machine with a GPU.",
        "kubespawner_override": {"extra_resource_limits": {"nvidia.com/gpu": "1"}},
    },
]

IRIS_LIST: list[dict[str, Any]] = [
    {
        "display_name": "LSST default",
        "slug": "lsst-default",
        "default": True,
        "allowed_groups": ["iris/lsst"],
    },
    {
        "display_name": "Standard",
        "slug": "standard",
        "default": True,
        "resources": {"cpu": 2, "memory": "8G"},
        "kubespawner_override": {"default_url": "/lab", "extra_labels": {"tier": "std"}},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "scipy": {
                        "display_name": "SciPy",
                        "kubespawner_override": {"image": "quay.io/jupyter/scipy-notebook"},
                    },
                    "lsst": {
                        "display_name": "LSST stack",
                        "allowed_groups": ["iris/lsst"],
                        "kubespawner_override": {"image": "ghcr.io/lsst/stack:w1"},
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Custom image",
                    "validation_regex": r"[a-z0-9./-]+(:[a-zA-Z0-9._-]+)?",
                    "allowed_image_registries": ["quay.io/jupyter", "ghcr.io/iris-hep"],
                    "kubespawner_override": {"image": "{value}", "extra_labels": {"custom": "1"}},
                },
            },
            "size": {
                "display_name": "CPUs",
                "choices": {"two": {"display_name": "2 CPUs"}},
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Number of CPUs",
                    "resources": {"cpu": "{value}"},
                },
            },
        },
    },
    {
        "display_name": "GPU",
        "slug": "gpu",
        "allowed_groups": ["iris/lsst", "vo.iris.ac.uk:role=member"],
        "required_groups": ["iris"],
        "resources": {"cpu": 4, "memory": "32G", "gpu": 1},
        "kubespawner_override": {"extra_resource_limits": {"example.com/fpga": "1"}},
    },
]

ALICE = [membership_from_string("iris"), membership_from_string("iris/lsst")]
BOB = [membership_from_string("iris"), membership_from_string("vo.iris.ac.uk:role=manager")]
CAROL = [membership_from_string("vo.iris.ac.uk:role=member")]


@pytest.fixture
def profiles() -> list[Any]:
    return validate_profile_list(IRIS_LIST)


def refused(profiles: list[Any], who: list[GroupMembership], options: dict[str, Any]) -> int:
    with pytest.raises(SpawnRequestError) as caught:
        resolve_request(profiles, who, options)
    assert caught.value.message
    return caught.value.status


# --- admin configuration --------------------------------------------------------------------


def test_kubespawner_example_validates_unchanged_and_resolves_like_kubespawner() -> None:
    original = copy.deepcopy(KUBESPAWNER_EXAMPLE)
    profiles = validate_profile_list(KUBESPAWNER_EXAMPLE)
    assert original == KUBESPAWNER_EXAMPLE
    assert [p.slug for p in profiles] == ["demo-1", "demo-2"]
    result = resolve_request(profiles, [], {})
    assert result.overrides == {"default_url": "/lab", "image": "jupyter/minimal-notebook:latest"}
    custom = {"profile": "demo-1", "image--unlisted-choice": "jupyter/datascience-notebook:x"}
    result = resolve_request(profiles, [], custom)
    assert result.overrides["image"] == "jupyter/datascience-notebook:x"
    assert result.user_options == custom


def test_z2jh_example_validates_with_kubespawner_slugs() -> None:
    profiles = validate_profile_list(Z2JH_EXAMPLE)
    # the slugs KubeSpawner 7.0 derives (python-slugify of display_name)
    assert [p.slug for p in profiles] == [
        "default-shared-8-cpu-cores",
        "personal-4-cpu-cores-26gb-ram-1-nvidia-tesla-k80-gpu",
    ]
    gpu = resolve_request(profiles, [], {"profile": profiles[1].slug})
    assert gpu.overrides == {"extra_resource_limits": {"nvidia.com/gpu": "1"}}
    assert gpu.resources.gpu == 1


def broken(change: dict[str, Any], where: int = 1) -> list[dict[str, Any]]:
    config = copy.deepcopy(IRIS_LIST)
    config[where].update(change)  # 0: lsst-default, 1: standard, 2: gpu
    return config


def image_option(**change: Any) -> dict[str, Any]:
    option = copy.deepcopy(IRIS_LIST[1]["profile_options"]["image"])
    option.update(change)
    return {"profile_options": {"image": option}}


@pytest.mark.parametrize(
    ("config", "words"),
    [
        (broken({"slug": "gpu"}, where=1), "'gpu' is used twice"),
        (broken({"resources": {"cpus": 2}}), "'cpus'"),
        (broken({"resources": {"cpu": -1}}), "positive"),
        (broken({"resources": {"memory": "8 gigs"}}), "'8 gigs'"),
        (broken({"alowed_groups": ["iris"]}), "did you mean 'allowed_groups'"),
        (broken({"allowed_groups": ["/iris"]}), "leading '/'"),
        (broken({"allowed_groups": "iris"}), "list of group rules"),
        (broken({"required_groups": []}), "remove it"),
        (broken({"default": True}, where=2), "both default"),
        (broken({"slug": ""}), "slug"),
        (broken({"kubespawner_override": {"cpu_limit": 1}}), "cpu_limit"),
        (broken({"kubespawner_override": {"mem_limit": "-1G"}}), "mem_limit"),
        (
            broken(
                {"kubespawner_override": {"extra_resource_limits": {"nvidia.com/gpu": "2"}}}, 2
            ),
            "extra_resource_limits['nvidia.com/gpu']",
        ),
        (
            broken(image_option(choices={"a": {"default": True}, "b": {"default": True}})),
            "both default",
        ),
        (broken(image_option(choices={}, unlisted_choice={"enabled": False})), "no choices"),
        (
            broken(image_option(unlisted_choice={"enabled": True, "validation_regex": "(["})),
            "not a valid regular expression",
        ),
        (
            broken(
                image_option(unlisted_choice={"enabled": True, "allowed_image_registries": "q"})
            ),
            "allowed_image_registries",
        ),
        (
            broken(
                image_option(unlisted_choice={"enabled": True, "resources": {"gpu": "x{value}"}})
            ),
            "template",
        ),
        ([{"display_name": "A", "profile_options": {"group": {"choices": {"x": {}}}}}], "'group'"),
        ({"display_name": "not a list"}, "must be a list"),
    ],
)
def test_admin_mistakes_are_named(config: object, words: str) -> None:
    with pytest.raises(ValueError, match="profile_list") as caught:
        validate_profile_list(config)
    assert words in str(caught.value)


def test_defaults_restricted_to_different_groups_are_fine() -> None:
    profiles = validate_profile_list(IRIS_LIST)
    # the first default each user may see
    assert resolve_request(profiles, ALICE, {}).profile.slug == "lsst-default"
    assert resolve_request(profiles, [], {}).profile.slug == "standard"


# --- who sees what --------------------------------------------------------------------------


def test_visible_profiles_apply_allowed_any_of_and_required_all_of(profiles: list[Any]) -> None:
    assert [p.slug for p in visible_profiles(profiles, ALICE)] == [
        "lsst-default",
        "standard",
        "gpu",
    ]
    assert [p.slug for p in visible_profiles(profiles, BOB)] == ["standard"]  # wrong role
    assert [p.slug for p in visible_profiles(profiles, CAROL)] == ["standard"]  # not in iris
    assert [p.slug for p in visible_profiles(profiles, [])] == ["standard"]
    alice_images = visible_profiles(profiles, ALICE)[1].options[0].choices
    bob_images = visible_profiles(profiles, BOB)[0].options[0].choices
    assert [c.slug for c in alice_images] == ["scipy", "lsst"]
    assert [c.slug for c in bob_images] == ["scipy"]


def test_profile_whose_option_has_nothing_visible_is_hidden() -> None:
    config = [
        {"display_name": "Open"},
        {
            "display_name": "Closed",
            "profile_options": {"x": {"choices": {"a": {"allowed_groups": ["iris/lsst"]}}}},
        },
    ]
    profiles = validate_profile_list(config)
    assert [p.slug for p in visible_profiles(profiles, BOB)] == ["open"]
    assert refused(profiles, BOB, {"profile": "closed"}) == 403


def test_form_list_shows_only_usable_things_and_no_extensions(profiles: list[Any]) -> None:
    form = profile_list_for_form(visible_profiles(profiles, BOB))
    assert [p["slug"] for p in form] == ["standard"]
    image = form[0]["profile_options"]["image"]
    assert list(image["choices"]) == ["scipy"]
    assert image["choices"]["scipy"]["default"] is True
    assert image["unlisted_choice"]["enabled"] is True
    text = repr(form)
    for hidden in ("allowed_groups", "resources", "kubespawner_override", "registries"):
        assert hidden not in text


# --- resolving requests ---------------------------------------------------------------------


def test_empty_options_give_default_profile_and_choices(profiles: list[Any]) -> None:
    result = resolve_request(profiles, BOB, {})
    assert result.profile.slug == "standard"
    assert result.choices == {"image": "scipy", "size": "two"}
    assert result.overrides == {
        "default_url": "/lab",
        "extra_labels": {"tier": "std"},
        "image": "quay.io/jupyter/scipy-notebook",
        "cpu_limit": 2.0,
        "cpu_guarantee": 2.0,
        "mem_limit": 8 * 1024**3,
        "mem_guarantee": 8 * 1024**3,
    }
    assert result.user_options == {"profile": "standard", "image": "scipy", "size": "two"}
    assert result.notices == ()


def test_gpu_profile_merges_limits_and_schedules_on_gpu_nodes(profiles: list[Any]) -> None:
    result = resolve_request(profiles, ALICE, {"profile": "gpu", "group": "lsst"})
    assert result.overrides["extra_resource_limits"] == {
        "example.com/fpga": "1",
        "nvidia.com/gpu": "1",
    }
    assert result.overrides["node_selector"] == {"nvidia.com/gpu.present": "true"}
    assert result.tolerations == (
        {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"},
    )
    assert (result.resources.cpu, result.resources.gpu, result.group) == (4.0, 1, "lsst")


def test_overrides_are_copies(profiles: list[Any]) -> None:
    first = resolve_request(profiles, BOB, {})
    first.overrides["extra_labels"]["tier"] = "changed"  # type: ignore[index]
    assert resolve_request(profiles, BOB, {}).overrides["extra_labels"] == {"tier": "std"}


def test_custom_image_from_allowed_registry(profiles: list[Any]) -> None:
    image = "quay.io/jupyter/datascience-notebook:2025-01-06"
    result = resolve_request(
        profiles,
        BOB,
        {"profile": "standard", "image": "unlisted-choice", "image--unlisted-choice": image},
    )
    assert result.overrides["image"] == image
    assert result.overrides["extra_labels"] == {"tier": "std", "custom": "1"}
    assert result.user_options["image--unlisted-choice"] == image
    assert "image" not in result.choices


@pytest.mark.parametrize(
    "value",
    [
        "quay.io/jupyter/x;rm",  # prefix matches, full match does not
        "quay.io/jupyter/x\n",  # `$` would let a trailing newline through
        "quay.io/jupyter/x rm",
        "docker.io/jupyter/scipy-notebook",  # not an allowed registry
        "jupyter/scipy-notebook",  # docker.io implied
        "quay.io/jupyterhub/k8s-hub",  # a sibling path, not below quay.io/jupyter
        "ghcr.io/iris-hep/../root",
        "x" * 300,
    ],
)
def test_custom_images_must_fully_match_and_come_from_allowed_registries(
    profiles: list[Any], value: str
) -> None:
    assert refused(profiles, BOB, {"profile": "standard", "image--unlisted-choice": value}) == 400


def test_regex_is_a_full_match_not_a_prefix_match() -> None:
    unlisted = {"enabled": True, "validation_regex": "jupyter/[a-z-]+"}
    unlisted["kubespawner_override"] = {"image": "{value}"}
    option = {"choices": {"a": {}}, "unlisted_choice": unlisted}
    profiles = validate_profile_list([{"display_name": "P", "profile_options": {"image": option}}])
    ok = resolve_request(profiles, [], {"image--unlisted-choice": "jupyter/base-notebook"})
    assert ok.overrides["image"] == "jupyter/base-notebook"
    assert refused(profiles, [], {"image--unlisted-choice": "jupyter/x;rm"}) == 400


@pytest.mark.parametrize(
    ("options", "status"),
    [
        ({"profile": "no-such-profile"}, 400),
        ({"profile": "gpu"}, 403),  # exists, but Bob may not use it
        ({"profile": "lsst-default"}, 403),
        ({"profile": "standard", "image": "no-such-image"}, 400),
        ({"profile": "standard", "image": "lsst"}, 403),
        ({"profile": "standard", "image": "unlisted-choice"}, 400),  # "Other" without a value
        (
            {
                "profile": "standard",
                "image": "scipy",
                "image--unlisted-choice": "quay.io/jupyter/a",
            },
            400,
        ),
        ({"profile": "standard", "kubespawner_override": {"privileged": True}}, 400),
        ({"profile": "standard", "image_spec": "evil/image"}, 400),
        ({"profile": "standard", "uid": 0}, 400),
        ({"profile": 3}, 400),
        ({"profile": "standard", "image": ["scipy"]}, 400),
        ({"profile": "standard", "size--unlisted-choice": "-2"}, 400),
        ({"profile": "standard", "size--unlisted-choice": "1e9"}, 400),
        ({"profile": "standard", "size--unlisted-choice": "100000"}, 400),
        ({"profile": "standard", "group": "../root"}, 400),
        ({"profile": "standard", "group": 0}, 400),
    ],
)
def test_bad_requests_are_refused_with_a_status(
    profiles: list[Any], options: dict[str, Any], status: int
) -> None:
    assert refused(profiles, BOB, options) == status


def test_typed_number_of_cpus_becomes_limits(profiles: list[Any]) -> None:
    result = resolve_request(profiles, BOB, {"size--unlisted-choice": "3"})
    assert (result.overrides["cpu_limit"], result.resources.cpu) == (3.0, 3.0)


def test_unlisted_choice_can_be_restricted_to_groups() -> None:
    unlisted = {"enabled": True, "allowed_groups": ["iris/lsst"]}
    unlisted["kubespawner_override"] = {"image": "{value}"}
    option = {"choices": {"a": {}}, "unlisted_choice": unlisted}
    profiles = validate_profile_list([{"display_name": "P", "profile_options": {"image": option}}])
    assert resolve_request(profiles, ALICE, {"image--unlisted-choice": "x"}).overrides == {
        "image": "x"
    }
    assert refused(profiles, BOB, {"image--unlisted-choice": "x"}) == 403


def test_registry_entries_are_normalised_like_image_names() -> None:
    unlisted = {"enabled": True, "allowed_image_registries": ["jupyter", "index.docker.io/x/"]}
    unlisted["kubespawner_override"] = {"image": "{value}"}
    option = {"choices": {"a": {}}, "unlisted_choice": unlisted}
    profiles = validate_profile_list([{"display_name": "P", "profile_options": {"image": option}}])
    for image in ("jupyter/scipy-notebook:1", "docker.io/jupyter/r", "x/y@sha256:" + "a" * 64):
        assert resolve_request(profiles, [], {"image--unlisted-choice": image}).overrides
    for image in ("quay.io/jupyter/r", "jupyterx/r", "python:3", "x/y@sha256:abc"):
        assert refused(profiles, [], {"image--unlisted-choice": image}) == 400


def test_nobody_without_any_visible_profile_gets_403() -> None:
    profiles = validate_profile_list([{"display_name": "P", "allowed_groups": ["iris/lsst"]}])
    assert refused(profiles, BOB, {}) == 403


# --- stale saved options --------------------------------------------------------------------


def test_stale_profile_falls_back_with_a_notice(profiles: list[Any]) -> None:
    saved = {"profile": "gpu", "image": "lsst", "retired-option": "x"}
    result = resolve_request(profiles, BOB, saved, stale_fallback=True)
    assert result.profile.slug == "standard"
    assert result.choices == {"image": "scipy", "size": "two"}
    assert result.notices == (
        "Your previous choice 'gpu' is no longer available; using 'Standard'.",
    )


@pytest.mark.parametrize(
    "saved",
    [
        {"profile": "standard", "image": "lsst"},  # no longer allowed
        {"profile": "standard", "image": "retired"},  # no longer exists
        {"profile": "standard", "image--unlisted-choice": "docker.io/evil/x"},  # now refused
        {"profile": "standard", "retired-option": "x", "image": "lsst"},
    ],
)
def test_stale_choice_falls_back_to_the_default_choice(
    profiles: list[Any], saved: dict[str, Any]
) -> None:
    result = resolve_request(profiles, BOB, saved, stale_fallback=True)
    assert result.choices["image"] == "scipy"
    assert result.notices
    assert "is no longer available; using 'SciPy'" in result.notices[0]
    assert result.user_options == {"profile": "standard", "image": "scipy", "size": "two"}


def test_stale_fallback_keeps_valid_choices(profiles: list[Any]) -> None:
    saved = {"profile": "standard", "image": "lsst"}
    result = resolve_request(profiles, ALICE, saved, stale_fallback=True)
    assert (result.choices["image"], result.notices) == ("lsst", ())


# --- no input escapes as anything but a 400/403 ---------------------------------------------

_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(),
    st.text(max_size=40),
    st.sampled_from(
        [
            "standard",
            "gpu",
            "scipy",
            "lsst",
            "unlisted-choice",
            "two",
            "3",
            "-1",
            "quay.io/jupyter/x:1",
            "lsst",
            "alice",
            "",
        ]
    ),
    st.lists(st.text(max_size=5), max_size=2),
    st.dictionaries(st.text(max_size=5), st.integers()),
)
_keys = st.one_of(
    st.sampled_from(
        [
            "profile",
            "group",
            "image",
            "image--unlisted-choice",
            "size",
            "size--unlisted-choice",
            "kubespawner_override",
            "cpu_limit",
        ]
    ),
    st.text(max_size=20),
)


@settings(max_examples=400, deadline=None)
@given(
    options=st.dictionaries(_keys, _values, max_size=6),
    who=st.sampled_from([ALICE, BOB, CAROL, []]),
    stale=st.booleans(),
)
def test_arbitrary_user_options_give_a_resolution_or_a_4xx(
    options: dict[str, Any], who: list[GroupMembership], stale: bool
) -> None:
    profiles = validate_profile_list(IRIS_LIST)
    if not stale:
        try:
            result = resolve_request(profiles, who, options)
        except SpawnRequestError as error:
            status = error.status
            assert status in (400, 403)
            return
    else:  # saved options always fall back, they never fail
        result = resolve_request(profiles, who, options, stale_fallback=True)
    assert result.profile.slug in {p.slug for p in visible_profiles(profiles, who)}
    # whatever was sent, only the admin's overrides (and a typed image/cpus) are applied
    assert set(result.overrides) <= {
        "default_url",
        "extra_labels",
        "image",
        "cpu_limit",
        "cpu_guarantee",
        "mem_limit",
        "mem_guarantee",
        "extra_resource_limits",
        "extra_resource_guarantees",
        "node_selector",
    }
    assert resolve_request(profiles, who, result.user_options).overrides == result.overrides


def test_a_malformed_group_name_is_refused_with_a_next_step(profiles: list[Any]) -> None:
    with pytest.raises(SpawnRequestError) as caught:
        resolve_request(profiles, ALICE, {"profile": "standard", "group": "Not A Group!"})
    assert caught.value.status == 400
    assert caught.value.message == (
        "'Not A Group!' is not the name of a group. Choose one of your groups on the "
        "server options page."
    )
