"""Group rules of a hub: who may log in, who must be in which groups, who is admin."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..groups import GroupMembership, GroupRule, any_rule_matches

__all__ = ["GroupPolicy"]


@dataclass(frozen=True)
class GroupPolicy:
    """``allowed_groups`` (any of), ``required_groups`` (all of) and ``admin_groups``."""

    allowed: frozenset[GroupRule] = field(default_factory=frozenset)
    required: frozenset[GroupRule] = field(default_factory=frozenset)
    admin: frozenset[GroupRule] = field(default_factory=frozenset)

    def is_allowed(self, memberships: list[GroupMembership]) -> bool:
        """True if some membership matches some ``allowed_groups`` rule."""
        return any_rule_matches(self.allowed, memberships)

    def is_admin(self, memberships: list[GroupMembership]) -> bool:
        return any_rule_matches(self.admin, memberships)

    def missing_required(self, memberships: list[GroupMembership]) -> list[str]:
        """The ``required_groups`` rules no membership matches, as sorted strings."""
        return sorted(str(r) for r in self.required if not any_rule_matches([r], memberships))

    def admitted_by(self, memberships: list[GroupMembership]) -> list[str]:
        """The ``required_groups``, then ``allowed_groups``, rules ``memberships`` match.

        Stored at login and refresh as ``auth_state["admitted_by"]``: the groups that
        admitted the user to the hub, which the spawner charges usage to when neither the
        group run as nor the profile names one.
        """
        return [
            str(rule)
            for rules in (self.required, self.allowed)
            for rule in sorted(rules, key=str)
            if any_rule_matches([rule], memberships)
        ]

    def describe_required(self) -> str:
        """The ``required_groups`` as one readable, sorted list."""
        return ", ".join(sorted(str(r) for r in self.required))
