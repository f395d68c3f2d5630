"""Which VO group a session is charged to: the decision as a table of plain data."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest

from iris_jupyterhub.groups import membership_from_string, parse_group_rule
from iris_jupyterhub.spawner.charging import (
    admitted_rules,
    charge_group,
    granting_rules,
    preference_rank,
)
from iris_jupyterhub.spawner.profiles import validate_profile_list


def rules(*texts: str) -> list[Any]:
    return [parse_group_rule(t) for t in texts]


MEMBER = "vo.iris.ac.uk:role=member"
ADA = ("iris", "iris/lsst", "dune/production", MEMBER)


@dataclass(frozen=True)
class Case:
    """One row: the inputs of :func:`charge_group` as strings, and the charge expected."""

    name: str
    expected: str | None
    chosen: str | None = None
    granted: tuple[str, ...] = ()
    admitted: tuple[str, ...] = ()
    held: tuple[str, ...] = ADA
    preference: tuple[str, ...] = ()


CASES = [
    Case("chosen VO group wins", "dune/production", "dune/production", ("iris/lsst",), ("iris",)),
    Case("chosen wins over the preference", "iris", "iris", preference=("iris/lsst",)),
    Case("personal group: the profile's group", "iris/lsst", None, ("iris/lsst",), ("iris",)),
    Case("personal group, open profile: the admitting group", "iris", admitted=("iris",)),
    Case("unmatched profile rules are skipped", "iris/lsst", granted=("cms", "iris/lsst")),
    Case("first matching profile rule", "iris", granted=("iris", "iris/lsst")),
    Case(
        "preference breaks the tie",
        "iris/lsst",
        granted=("iris", "iris/lsst"),
        preference=("iris/lsst", "iris"),
    ),
    Case("preference stays in its step", "iris", granted=("iris",), preference=("iris/lsst",)),
    Case(
        "preference among admitting groups",
        "dune/production",
        admitted=("iris", "dune/production"),
        preference=("dune/production",),
    ),
    Case("a rule's role is charged", "vo.iris.ac.uk:role=member", granted=(MEMBER,)),
    Case(
        "an entry without a role covers a rule with one",
        MEMBER,
        granted=("iris", MEMBER),
        preference=("vo.iris.ac.uk",),
    ),
    Case(
        "an entry with another role does not cover",
        "iris",
        granted=("iris", MEMBER),
        preference=("vo.iris.ac.uk:role=manager",),
    ),
    Case(
        "admitted by name: the first preferred group held",
        "iris/lsst",
        preference=("cms", "iris/lsst", "iris"),
    ),
    Case("no VO group at all", None, held=(), preference=("iris",)),
    Case("nothing matches, no preference", None, granted=("cms",), admitted=("cms",)),
    Case("an admitting group the user left is skipped", "iris", admitted=("cms", "iris")),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_charge_group(case: Case) -> None:
    result = charge_group(
        chosen=case.chosen,
        granted=rules(*case.granted),
        admitted=rules(*case.admitted),
        memberships=[membership_from_string(m) for m in case.held],
        preference=rules(*case.preference),
    )
    assert result == case.expected


def test_preference_rank() -> None:
    preference = rules("iris/lsst", "vo.iris.ac.uk:role=manager", "vo.iris.ac.uk")
    assert preference_rank(parse_group_rule("iris/lsst"), preference) == 0
    assert preference_rank(parse_group_rule("vo.iris.ac.uk:role=manager"), preference) == 1
    assert preference_rank(parse_group_rule("vo.iris.ac.uk:role=member"), preference) == 2
    assert preference_rank(parse_group_rule("iris"), preference) == 3


PROFILES = validate_profile_list(
    [
        {
            "display_name": "GPU",
            "slug": "gpu",
            "allowed_groups": ["iris", "dune"],
            "required_groups": ["iris/gpu"],
            "profile_options": {
                "size": {
                    "display_name": "Size",
                    "choices": {
                        "small": {"display_name": "Small"},
                        "big": {"display_name": "Big", "allowed_groups": ["iris/big"]},
                    },
                    "unlisted_choice": {
                        "enabled": True,
                        "required_groups": ["iris/custom"],
                        "kubespawner_override": {"image": "{value}"},
                    },
                }
            },
        }
    ]
)


@pytest.mark.parametrize(
    ("choices", "expected"),
    [
        ({"size": "small"}, ["iris/gpu", "iris", "dune"]),
        ({"size": "big"}, ["iris/big", "iris/gpu", "iris", "dune"]),
        ({}, ["iris/custom", "iris/gpu", "iris", "dune"]),  # the value typed
    ],
)
def test_granting_rules_choices_first_required_before_allowed(
    choices: dict[str, str], expected: list[str]
) -> None:
    assert [str(r) for r in granting_rules(PROFILES[0], choices)] == expected


def test_admitted_rules_skip_what_is_not_a_rule() -> None:
    state = {"admitted_by": ["iris", "/bad", 42, "vo.iris.ac.uk:role=member"]}
    assert [str(r) for r in admitted_rules(state)] == ["iris", "vo.iris.ac.uk:role=member"]
    assert admitted_rules({}) == ()
