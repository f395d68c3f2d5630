"""The canonical group model: memberships, rules, and matching them.

Every identity-provider claim format is parsed into this one model (by
:mod:`iris_jupyterhub.auth.claims`), and its string syntax is the only group syntax hub
administrators write: in the authenticators' allowed, admin and required groups, in
profiles, quotas, storage rules and the spawner's charging preference. The authenticators,
the spawner, storage and accounting all import it from here.

Canonical form
--------------
A group is a VO followed by zero or more sub-groups, separated by ``/``, with no leading or
trailing slash. A membership may carry a role, written after a colon::

    iris
    iris/lsst
    vo.iris.ac.uk/lsst/desc:role=manager

Each VO or sub-group name is 1-128 characters from ``A-Z a-z 0-9 . _ + @ -`` and does not
start with ``.``, ``+``, ``@`` or ``-``; a whole group is at most 255 characters. A role is
1-64 characters from ``A-Z a-z 0-9 . _ -`` and does not start with ``.`` or ``-``. Names
are case-sensitive and matched exactly: being in ``iris/lsst`` does not imply being in
``iris`` (identity providers list parent groups explicitly when they apply).

A group rule (:func:`parse_group_rule`) has the same form. A rule without a role matches any
role in that group: ``vo.iris.ac.uk`` matches ``vo.iris.ac.uk:role=member``, while
``vo.iris.ac.uk:role=manager`` matches only that role.

Memberships are stored in ``auth_state["groups"]`` as canonical strings
(:func:`memberships_from_auth_state` reads them back).
"""

from __future__ import annotations

import functools
import re
import reprlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import total_ordering
from typing import Any

__all__ = [
    "MAX_COMPONENT_LENGTH",
    "MAX_GROUP_LENGTH",
    "MAX_ROLE_LENGTH",
    "ROLE_PREFIX",
    "GroupMembership",
    "GroupRule",
    "HeldGroups",
    "all_rules_match",
    "any_rule_matches",
    "group_name_error",
    "group_names",
    "group_syntax_error",
    "membership_from_string",
    "memberships_from_auth_state",
    "parse_group_rule",
    "parse_group_rules",
    "safe_repr",
]

MAX_COMPONENT_LENGTH = 128
MAX_GROUP_LENGTH = 255
MAX_ROLE_LENGTH = 64

ROLE_PREFIX = "role="
"""What introduces the role after the colon: ``vo/sub:role=<role>``."""

_COMPONENT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+@-]*")
_ROLE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_SYNTAX = (
    "the form is 'vo[/sub-group...]' or 'vo[/sub-group...]:role=<role>', "
    "for example 'iris', 'iris/lsst' or 'vo.iris.ac.uk/lsst:role=manager'"
)

_REPR = reprlib.Repr()
_REPR.maxstring = 76
_REPR.maxother = 76
_REPR.maxlevel = 2


def safe_repr(value: object, limit: int = 80) -> str:
    """Return a log-safe ``repr`` of ``value``, at most ``limit`` characters long."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a repr must never break parsing
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def group_syntax_error(vo: str, path: tuple[str, ...], role: str | None) -> str | None:
    """Say what is wrong with a group and role, or return ``None`` if they are well formed."""
    for component in (vo, *path):
        if not component:
            return "empty group name component (check for '//', a trailing '/' or ':')"
        if len(component) > MAX_COMPONENT_LENGTH or _COMPONENT_RE.fullmatch(component) is None:
            return (
                f"group name component {safe_repr(component, 40)} must be "
                f"1-{MAX_COMPONENT_LENGTH} characters of A-Z a-z 0-9 . _ + @ - "
                "and not start with . + @ -"
            )
    if sum(map(len, path)) + len(path) + len(vo) > MAX_GROUP_LENGTH:
        return f"group longer than {MAX_GROUP_LENGTH} characters"
    if role is not None and (len(role) > MAX_ROLE_LENGTH or _ROLE_RE.fullmatch(role) is None):
        return (
            f"role {safe_repr(role, 40)} must be 1-{MAX_ROLE_LENGTH} characters of "
            "A-Z a-z 0-9 . _ - and not start with . -"
        )
    return None


def group_name_error(group: str) -> str | None:
    """Say what is wrong with a group name without a role (``vo[/sub...]``), or ``None``.

    The same rules as :func:`group_syntax_error`, for text that names a group only (the
    identity registry's groups and ``group_aliases``): a ``:role=`` suffix is an error.
    """
    vo, *path = group.split("/")
    return group_syntax_error(vo, tuple(path), None)


def _canonical(group: str, role: str | None) -> str:
    return group if role is None else f"{group}:{ROLE_PREFIX}{role}"


@total_ordering
@dataclass(frozen=True)
class GroupMembership:
    """One group membership in canonical form, optionally with a role.

    Instances are validated on construction (a :class:`ValueError` says what is wrong), so
    a membership always satisfies the canonical syntax. They sort by VO, then sub-group
    path, then role (a membership without a role sorts first).

    Attributes:
        vo: The top-level group, e.g. ``"vo.iris.ac.uk"`` or ``"dune"``.
        path: Sub-groups below the VO, outermost first, e.g. ``("lsst", "desc")``.
        role: The role within the group, or ``None`` for plain membership.
    """

    vo: str
    path: tuple[str, ...] = ()
    role: str | None = None

    def __post_init__(self) -> None:
        error = group_syntax_error(self.vo, self.path, self.role)
        if error:
            raise ValueError(f"invalid group membership: {error}")

    @property
    def group(self) -> str:
        """The group without the role, e.g. ``"vo.iris.ac.uk/lsst"``."""
        return "/".join((self.vo, *self.path))

    def __str__(self) -> str:
        """The canonical form, e.g. ``"vo.iris.ac.uk/lsst:role=member"``."""
        return _canonical(self.group, self.role)

    def _sort_key(self) -> tuple[str, tuple[str, ...], bool, str]:
        return (self.vo, self.path, self.role is not None, self.role or "")

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, GroupMembership):
            return NotImplemented
        return self._sort_key() < other._sort_key()


@dataclass(frozen=True)
class GroupRule:
    """A rule an administrator writes to select group members, e.g. ``"iris/lsst"``.

    Attributes:
        group: The exact group to match, in canonical form (``"vo/sub/sub"``).
        role: The role a membership must carry, or ``None`` to accept any role.
    """

    group: str
    role: str | None = None

    def __post_init__(self) -> None:
        vo, *path = self.group.split("/")
        error = group_syntax_error(vo, tuple(path), self.role)
        if error:
            raise ValueError(error)

    def matches(self, membership: GroupMembership) -> bool:
        """Return whether ``membership`` is in this rule's group (with its role, if named)."""
        return membership.group == self.group and (
            self.role is None or membership.role == self.role
        )

    def __str__(self) -> str:
        return _canonical(self.group, self.role)


def _parse_canonical(text: str, what: str) -> tuple[str, tuple[str, ...], str | None]:
    """Split and check a canonical ``vo/sub:role=r`` string; ``ValueError`` explains."""
    group, colon, role_part = text.partition(":")
    vo, *path = group.split("/")
    role = role_part[len(ROLE_PREFIX) :] if colon else None
    if colon and not role_part.startswith(ROLE_PREFIX):
        error: str | None = "only ':role=<role>' may follow the group"
    elif group.startswith("/"):
        error = "drop the leading '/' (this is not a WLCG path)"
    else:
        error = group_syntax_error(vo, tuple(path), role)
    if error:
        raise ValueError(f"bad {what} {safe_repr(text)}: {error}; {_SYNTAX}")
    return vo, tuple(path), role


def parse_group_rule(text: str) -> GroupRule:
    """Parse a group rule written in the canonical form.

    Args:
        text: ``"vo[/sub...]"`` or ``"vo[/sub...]:role=<role>"``, exactly as it appears in
            configuration (surrounding whitespace is an error, not trimmed).

    Raises:
        ValueError: If ``text`` is not a valid rule; the message explains the syntax.

    Example:
        >>> parse_group_rule("vo.iris.ac.uk/lsst:role=manager")
        GroupRule(group='vo.iris.ac.uk/lsst', role='manager')
    """
    vo, path, role = _parse_canonical(text, "group rule")
    return GroupRule("/".join((vo, *path)), role)


def parse_group_rules(texts: Iterable[object], option: str) -> tuple[GroupRule, ...]:
    """Parse every rule of a configuration option (``Class.trait``), in order.

    Raises:
        ValueError: Naming ``option`` and the first rule that is not valid.
    """
    rules = []
    for text in texts:
        if not isinstance(text, str):
            raise ValueError(f"{option}: a group rule must be a string, not {safe_repr(text)}")
        try:
            rules.append(parse_group_rule(text))
        except ValueError as e:
            raise ValueError(f"{option}: {e}") from e
    return tuple(rules)


def membership_from_string(text: str) -> GroupMembership:
    """Parse the canonical form back into a membership: the inverse of ``str(membership)``.

    Used to read memberships stored as strings (for instance in ``auth_state``).

    Raises:
        ValueError: If ``text`` is not in the canonical form.
    """
    return _membership(text)


@functools.lru_cache(maxsize=4096)
def _membership(text: str) -> GroupMembership:
    # memberships are frozen, so one parse serves every caller: auth_state is read (and
    # each of a user's groups parsed again) on every spawn form and spawn
    return GroupMembership(*_parse_canonical(text, "group membership"))


@dataclass(frozen=True)
class HeldGroups:
    """An index of memberships for matching many rules: group names and (group, role) pairs.

    Build it once with :meth:`of` where one user's memberships are matched against many
    rules (a long profile list); :func:`any_rule_matches` and :func:`all_rules_match`
    accept it in place of the memberships.
    """

    groups: frozenset[str]
    pairs: frozenset[tuple[str, str]]

    @classmethod
    def of(cls, memberships: Iterable[GroupMembership]) -> HeldGroups:
        held = tuple(memberships)
        return cls(
            frozenset(m.group for m in held),
            frozenset((m.group, m.role) for m in held if m.role is not None),
        )


Held = Iterable[GroupMembership] | HeldGroups


def _index(memberships: Held) -> HeldGroups:
    return memberships if isinstance(memberships, HeldGroups) else HeldGroups.of(memberships)


def _held(rule: GroupRule, held: HeldGroups) -> bool:
    return (
        rule.group in held.groups if rule.role is None else (rule.group, rule.role) in held.pairs
    )


def any_rule_matches(rules: Iterable[GroupRule], memberships: Held) -> bool:
    """Return whether at least one rule matches at least one membership (any-of).

    Linear in rules + memberships (memberships are indexed once), so a user with hundreds
    of groups against a long profile list stays cheap.
    """
    held = _index(memberships)
    return any(_held(rule, held) for rule in rules)


def all_rules_match(rules: Iterable[GroupRule], memberships: Held) -> bool:
    """Return whether every rule matches some membership (all-of); ``True`` for no rules."""
    held = _index(memberships)
    return all(_held(rule, held) for rule in rules)


def group_names(memberships: Iterable[GroupMembership]) -> list[str]:
    """Return the sorted unique group names, roles dropped, e.g. for hub group sync."""
    return sorted({membership.group for membership in memberships})


def memberships_from_auth_state(auth_state: Mapping[str, Any]) -> list[GroupMembership]:
    """The canonical memberships stored in ``auth_state["groups"]``; bad entries skipped."""
    result = []
    for text in auth_state.get("groups") or ():
        if isinstance(text, str):
            try:
                result.append(membership_from_string(text))
            except ValueError:
                continue
    return result
