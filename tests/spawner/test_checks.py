"""IRISSpawner's options checked at hub start-up from the configuration alone."""

from __future__ import annotations

from typing import Any

import pytest
from traitlets.config import Config

from iris_jupyterhub.spawner import IRISSpawner
from iris_jupyterhub.spawner.checks import check_spawner_config, validate_gpu_option
from iris_jupyterhub.startup import check_config, spawner_sections

GOOD_PROFILES = [{"display_name": "GPU", "allowed_groups": ["iris"], "resources": {"gpu": 1}}]


class SiteSpawner(IRISSpawner):
    """A site's own subclass: its section is the most specific."""


def config(**sections: dict[str, Any]) -> Config:
    return Config({name: Config(values) for name, values in sections.items()})


@pytest.mark.parametrize(
    ("spawner_class", "expected"),
    [
        ("iris", ["IRISSpawner", "KubeSpawner", "Spawner"]),
        ("iris_jupyterhub.spawner.IRISSpawner", ["IRISSpawner", "KubeSpawner", "Spawner"]),
        (IRISSpawner, ["IRISSpawner", "KubeSpawner", "Spawner"]),
        (SiteSpawner, ["SiteSpawner", "IRISSpawner", "KubeSpawner", "Spawner"]),
    ],
)
def test_the_iris_spawner_is_recognised(spawner_class: Any, expected: list[str]) -> None:
    sections = spawner_sections(config(JupyterHub={"spawner_class": spawner_class}))
    assert sections is not None
    assert [s for s in sections if s in expected] == expected


@pytest.mark.parametrize("spawner_class", ["simple", "kubespawner", "no.such.Spawner", 42])
def test_other_spawners_are_not_checked(spawner_class: Any) -> None:
    hub = config(
        JupyterHub={"spawner_class": spawner_class},
        KubeSpawner={"profile_list": [{"display_name": "A", "allowed_groups": []}]},
    )
    assert spawner_sections(hub) is None
    check_config(hub)  # a plain KubeSpawner's profile list is not ours to judge


def test_an_iris_spawner_section_is_checked_whatever_the_class() -> None:
    hub = config(IRISSpawner={"group_quotas": {"iris": {"servers": "many"}}})
    with pytest.raises(ValueError, match=r"IRISSpawner\.group_quotas"):
        check_config(hub)


@pytest.mark.parametrize(
    ("sections", "named"),
    [
        (
            {"IRISSpawner": {"profile_list": [{"display_name": "A", "resources": {"gpus": 1}}]}},
            "profile_list",
        ),
        ({"KubeSpawner": {"profile_list": "standard"}}, "profile_list"),
        ({"IRISSpawner": {"group_quotas": {"iris": {"servers": -1}}}}, "group_quotas"),
        ({"IRISSpawner": {"group_quotas": ["iris"]}}, "group_quotas"),
        ({"IRISSpawner": {"gpu_resource": "gpu"}}, "gpu_resource"),
        ({"IRISSpawner": {"gpu_node_selector": {"gpu": True}}}, "gpu_node_selector"),
        ({"IRISSpawner": {"gpu_toleration": {"key": "gpu", "effect": "Never"}}}, "gpu_toleration"),
    ],
)
def test_bad_options_are_named(sections: dict[str, dict[str, Any]], named: str) -> None:
    with pytest.raises(ValueError, match=rf"IRISSpawner\.{named}: "):
        check_spawner_config(config(**sections))


def test_the_most_specific_section_wins() -> None:
    bad = [{"display_name": "A", "allowed_groups": []}]
    check_spawner_config(
        config(KubeSpawner={"profile_list": bad}, IRISSpawner={"profile_list": GOOD_PROFILES})
    )
    with pytest.raises(ValueError, match=r"IRISSpawner\.profile_list"):
        check_spawner_config(
            config(KubeSpawner={"profile_list": GOOD_PROFILES}, SiteSpawner={"profile_list": bad}),
            ["SiteSpawner", "IRISSpawner", "KubeSpawner", "Spawner"],
        )


def test_profiles_are_checked_with_the_configured_gpu_settings() -> None:
    profiles = [{"display_name": "GPU", "kubespawner_override": {"tolerations": []}}]
    good = config(IRISSpawner={"profile_list": profiles, "gpu_toleration": {}})
    check_spawner_config(good)


def test_appended_and_callable_profile_lists() -> None:
    hub = Config()
    hub.KubeSpawner.profile_list = list(GOOD_PROFILES)
    hub.IRISSpawner.profile_list.append({"display_name": "GPU"})  # the same slug again
    with pytest.raises(ValueError, match=r"IRISSpawner\.profile_list.*twice"):
        check_spawner_config(hub)
    check_spawner_config(config(IRISSpawner={"profile_list": lambda spawner: "checked later"}))


def test_good_options_pass_and_defaults_need_nothing() -> None:
    check_spawner_config(Config())
    check_spawner_config(
        config(
            IRISSpawner={
                "profile_list": GOOD_PROFILES,
                "group_quotas": {"iris/lsst": {"servers": 2, "gpu": 4, "memory": "64G"}},
                "gpu_resource": "amd.com/gpu",
                "gpu_node_selector": {"amd.com/gpu.present": "true"},
                "gpu_toleration": {"key": "amd.com/gpu", "operator": "Exists"},
            }
        )
    )


def test_validate_gpu_option() -> None:
    assert validate_gpu_option("gpu_toleration", {}) == {}
    assert validate_gpu_option("gpu_resource", "nvidia.com/gpu") == "nvidia.com/gpu"
    with pytest.raises(ValueError, match=r"IRISSpawner\.gpu_toleration: unknown key"):
        validate_gpu_option("gpu_toleration", {"keys": "gpu"})


@pytest.mark.parametrize("preference", [["iris/lsst", "not a group"], "iris/lsst", [3]])
def test_a_bad_charge_group_preference_stops_the_hub(preference: Any) -> None:
    hub = config(
        JupyterHub={"spawner_class": "iris"},
        IRISSpawner={"charge_group_preference": preference},
    )
    with pytest.raises(ValueError, match=r"^IRISSpawner\.charge_group_preference: "):
        check_config(hub)


def test_a_good_charge_group_preference_passes() -> None:
    check_config(
        config(
            JupyterHub={"spawner_class": "iris"},
            IRISSpawner={"charge_group_preference": ["iris/lsst", "iris:role=pi"]},
        )
    )
