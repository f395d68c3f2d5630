"""Which VO group a session is charged to: a pure decision over groups and rules.

Every session is charged to a VO group (a canonical group, :mod:`iris_jupyterhub.groups`),
found in this order:

1. **The group chosen** to run as, when it is a VO group (not the personal group).
2. **The group that gave the user the profile**: the ``required_groups`` and
   ``allowed_groups`` rules of the chosen choices (option by option), then of the profile,
   that the user matches.
3. **The group that admitted the user to the hub**: the authenticator's
   ``required_groups`` and ``allowed_groups`` rules the user matched at login or at the
   last refresh (stored in ``auth_state["admitted_by"]``).
4. **The first entry of the preference** (``IRISSpawner.charge_group_preference``) that
   matches one of the user's memberships (users admitted by name or ``allow_all``).

When a step finds several rules, the preference breaks the tie: the rule covered by the
earliest preference entry wins (an entry covers a rule of the same group, and of the same
role if the entry names one), and among equals the first in the order above. The charge is
the winning rule as written, e.g. ``iris/lsst`` or ``vo.iris.ac.uk:role=member``. Nothing
found (no VO group at all) gives ``None``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..groups import GroupMembership, GroupRule, HeldGroups, any_rule_matches, parse_group_rule
from .profiles import UNLISTED_CHOICE, Access, Profile

__all__ = [
    "access_rules",
    "admitted_rules",
    "charge_group",
    "granting_rules",
    "preference_rank",
    "rank_candidates",
]


def preference_rank(rule: GroupRule, preference: Sequence[GroupRule]) -> int:
    """Index of the first preference entry covering ``rule``; ``len(preference)`` if none."""
    for index, entry in enumerate(preference):
        if entry.group == rule.group and (entry.role is None or entry.role == rule.role):
            return index
    return len(preference)


def access_rules(access: Access) -> tuple[GroupRule, ...]:
    """An :class:`~iris_jupyterhub.spawner.profiles.Access`'s rules: required, then allowed."""
    return (*access.required, *access.allowed)


def granting_rules(profile: Profile, choices: Mapping[str, str]) -> tuple[GroupRule, ...]:
    """The rules that gate what was chosen: each option's chosen choice, then the profile.

    Args:
        profile: The chosen profile (validated, or the user's view of it).
        choices: Option key to the chosen choice's slug; ``"unlisted-choice"`` (or an
            option left out) for a value typed into the option's ``unlisted_choice``.
    """
    rules: list[GroupRule] = []
    for option in profile.options:
        slug = choices.get(option.key, UNLISTED_CHOICE)
        choice = next((c for c in option.choices if c.slug == slug), None)
        if choice is not None:
            rules += access_rules(choice.access)
        elif option.unlisted is not None:
            rules += access_rules(option.unlisted.access)
    return (*rules, *access_rules(profile.access))


def admitted_rules(auth_state: Mapping[str, Any]) -> tuple[GroupRule, ...]:
    """The authenticator's rules that admitted the user (``auth_state["admitted_by"]``)."""
    rules = []
    for text in auth_state.get("admitted_by") or ():
        if isinstance(text, str):
            try:
                rules.append(parse_group_rule(text))
            except ValueError:
                continue
    return tuple(rules)


def rank_candidates(
    rules: Iterable[GroupRule], held: HeldGroups, preference: Sequence[GroupRule]
) -> list[tuple[str, int]]:
    """The rules the user matches, de-duplicated in order, each with its preference rank.

    This is what the spawn form sends to the browser: the charge of a selection is the
    candidate with the lowest rank, the first among equals.
    """
    found = dict.fromkeys(r for r in rules if any_rule_matches([r], held))
    return [(str(rule), preference_rank(rule, preference)) for rule in found]


def _best(candidates: Sequence[tuple[str, int]]) -> str | None:
    return min(candidates, key=lambda c: c[1])[0] if candidates else None


def charge_group(
    *,
    chosen: str | None,
    granted: Iterable[GroupRule],
    admitted: Iterable[GroupRule],
    memberships: Iterable[GroupMembership],
    preference: Sequence[GroupRule],
) -> str | None:
    """The VO group a session is charged to (see the module documentation).

    Args:
        chosen: The canonical group of the POSIX group chosen to run as; ``None`` for the
            personal group.
        granted: From :func:`granting_rules` (empty without a profile list).
        admitted: From :func:`admitted_rules`.
        memberships: The user's current canonical memberships.
        preference: ``IRISSpawner.charge_group_preference``, parsed.
    """
    if chosen:
        return chosen
    held = HeldGroups.of(memberships)
    for rules in (granted, admitted):
        best = _best(rank_candidates(rules, held, preference))
        if best is not None:
            return best
    return next((str(entry) for entry in preference if any_rule_matches([entry], held)), None)
