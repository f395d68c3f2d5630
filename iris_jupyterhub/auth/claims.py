"""Parse identity-provider group claims into one canonical group model.

IRIS IAM and EGI Check-in describe the same thing, "this person is in that group, maybe
with that role", in three different claim formats. This module turns all of them into one
canonical form, and that canonical form is the only group syntax hub administrators write:
in allowed, admin and required groups, profiles, quotas and storage rules.

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

Each source format, with a claim value and the canonical membership it gives:

``iam`` (IAM profile ``groups`` claim)
    ``"dune/production"`` gives ``dune/production``. A leading ``/`` is an error here.

``wlcg`` (``wlcg.groups`` claim, IAM WLCG profile)
    ``"/dune/production"`` gives ``dune/production``; a VOMS-style last component
    ``"/dune/Role=production"`` gives ``dune:role=production``. The leading ``/`` is required.

``entitlement`` (``eduperson_entitlement`` or ``entitlements``, AARC profile)
    ``"urn:mace:egi.eu:group:vo.iris.ac.uk:role=member#aai.egi.eu"`` gives
    ``vo.iris.ac.uk:role=member``;
    ``"urn:mace:egi.eu:group:vo.iris.ac.uk:lsst:desc:role=manager#aai.egi.eu"`` gives
    ``vo.iris.ac.uk/lsst/desc:role=manager``; IAM's AARC profile
    ``"urn:geant:iris-iam.stfc.ac.uk:group:iris:lsst"`` gives ``iris/lsst``.

Entitlements are read only in the namespaces you configure (``urn:mace:egi.eu`` by default;
add for instance ``urn:geant:eduteams.org:service:eduteams`` or
``urn:geant:iris-iam.stfc.ac.uk``). The ``#authority`` suffix is checked but ignored, parts
may be percent-encoded, and entitlements that are not groups (capabilities such as
``urn:mace:egi.eu:res:rcauth:cap:issue``) or come from other namespaces are skipped quietly.

A group rule (:func:`parse_group_rule`) has the same form. A rule without a role matches any
role in that group: ``vo.iris.ac.uk`` matches ``vo.iris.ac.uk:role=member``, while
``vo.iris.ac.uk:role=manager`` matches only that role.

Malformed values are never "cleaned" into something else: each one is left out and returned
as a :class:`ClaimProblem`, and parsing carries on with the rest of the claim. Nothing here
logs or raises on claim content; callers decide what to show.
"""

from __future__ import annotations

import re
import reprlib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import total_ordering
from urllib.parse import unquote

GROUP_FORMATS = ("iam", "wlcg", "entitlement")
"""Names of the claim formats that :func:`canonical_groups` understands."""

DEFAULT_ENTITLEMENT_NAMESPACES = ("urn:mace:egi.eu",)
"""Entitlement namespaces read when none are configured (EGI Check-in)."""

MAX_COMPONENT_LENGTH = 128
MAX_GROUP_LENGTH = 255
MAX_ROLE_LENGTH = 64

_COMPONENT_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._+@-]*")
_ROLE_RE = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._-]*")
_AUTHORITY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~%:@+/=-]{0,254}")
_ROLE_PREFIX = "role="
_SYNTAX = (
    "the form is 'vo[/sub-group...]' or 'vo[/sub-group...]:role=<role>', "
    "for example 'iris', 'iris/lsst' or 'vo.iris.ac.uk/lsst:role=manager'"
)

_REPR = reprlib.Repr()
_REPR.maxstring = 76
_REPR.maxother = 76
_REPR.maxlevel = 2


def _show(value: object, limit: int = 80) -> str:
    """Return a log-safe ``repr`` of ``value``, at most ``limit`` characters long."""
    try:
        text = _REPR.repr(value)
    except Exception:  # a repr must never break parsing
        text = f"<{type(value).__name__}>"
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _syntax_error(vo: str, path: tuple[str, ...], role: str | None) -> str | None:
    """Say what is wrong with a group and role, or return ``None`` if they are well formed."""
    for component in (vo, *path):
        if not component:
            return "empty group name component (check for '//', a trailing '/' or ':')"
        if len(component) > MAX_COMPONENT_LENGTH or _COMPONENT_RE.fullmatch(component) is None:
            return (
                f"group name component {_show(component, 40)} must be 1-{MAX_COMPONENT_LENGTH} "
                "characters of A-Z a-z 0-9 . _ + @ - and not start with . + @ -"
            )
    if sum(map(len, path)) + len(path) + len(vo) > MAX_GROUP_LENGTH:
        return f"group longer than {MAX_GROUP_LENGTH} characters"
    if role is not None and (len(role) > MAX_ROLE_LENGTH or _ROLE_RE.fullmatch(role) is None):
        return (
            f"role {_show(role, 40)} must be 1-{MAX_ROLE_LENGTH} characters of "
            "A-Z a-z 0-9 . _ - and not start with . -"
        )
    return None


def _canonical(group: str, role: str | None) -> str:
    return group if role is None else f"{group}:{_ROLE_PREFIX}{role}"


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
        error = _syntax_error(self.vo, self.path, self.role)
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
        error = _syntax_error(vo, tuple(path), self.role)
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
    role = role_part[len(_ROLE_PREFIX) :] if colon else None
    if colon and not role_part.startswith(_ROLE_PREFIX):
        error: str | None = "only ':role=<role>' may follow the group"
    elif group.startswith("/"):
        error = "drop the leading '/' (this is not a WLCG path)"
    else:
        error = _syntax_error(vo, tuple(path), role)
    if error:
        raise ValueError(f"bad {what} {_show(text)}: {error}; {_SYNTAX}")
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


def membership_from_string(text: str) -> GroupMembership:
    """Parse the canonical form back into a membership: the inverse of ``str(membership)``.

    Used to read memberships stored as strings (for instance in ``auth_state``).

    Raises:
        ValueError: If ``text`` is not in the canonical form.
    """
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


@dataclass(frozen=True)
class ClaimProblem:
    """A claim value that was left out, with the reason, for logs and admin pages.

    Attributes:
        claim: The claim name, e.g. ``"eduperson_entitlement"``.
        value: ``repr`` of the offending value, at most 80 characters, safe to log.
        reason: What is wrong with it, as a sentence fragment.
    """

    claim: str
    value: str
    reason: str

    def __str__(self) -> str:
        return f"{self.claim}: {self.reason}: {self.value}"


@dataclass(frozen=True)
class GroupParseResult:
    """What a claim yielded: sorted unique memberships, and the values left out.

    Attributes:
        memberships: Valid memberships, sorted and de-duplicated.
        problems: One entry per distinct rejected value, in claim order.
    """

    memberships: tuple[GroupMembership, ...] = ()
    problems: tuple[ClaimProblem, ...] = ()


# An entry parser returns a membership, a reason string (a problem), or None (skip quietly).
_EntryParser = Callable[[str], GroupMembership | str | None]


def _collect(sources: Iterable[tuple[str, object, _EntryParser]]) -> GroupParseResult:
    """Parse each ``(claim, value, entry parser)`` and merge the outcomes."""
    problems: list[ClaimProblem] = []
    found: set[GroupMembership] = set()
    for claim, value, parse_entry in sources:
        if not isinstance(value, (str, list, tuple)):
            problems.append(ClaimProblem(claim, _show(value), "expected a list of strings"))
            continue
        for entry in [value] if isinstance(value, str) else value:
            outcome = parse_entry(entry) if isinstance(entry, str) else "entry is not a string"
            if isinstance(outcome, GroupMembership):
                found.add(outcome)
            elif outcome is not None:
                problems.append(ClaimProblem(claim, _show(entry), outcome))
    return GroupParseResult(tuple(sorted(found)), tuple(dict.fromkeys(problems)))


def _iam_entry(entry: str) -> GroupMembership | str:
    if entry.startswith("/"):
        return "IAM group names have no leading '/' (is this a wlcg.groups claim?)"
    vo, *path = entry.split("/")
    return _syntax_error(vo, tuple(path), None) or GroupMembership(vo, tuple(path))


def _wlcg_entry(entry: str) -> GroupMembership | str:
    if not entry.startswith("/"):
        return "WLCG group paths start with '/'"
    vo, *path = entry[1:].split("/")
    role = None
    if path and path[-1][: len(_ROLE_PREFIX)].lower() == _ROLE_PREFIX:
        role = path.pop()[len(_ROLE_PREFIX) :]
    return _syntax_error(vo, tuple(path), role) or GroupMembership(vo, tuple(path), role)


def _entitlement_entry(entry: str, prefixes: Sequence[str]) -> GroupMembership | str | None:
    prefix = max((p for p in prefixes if entry.startswith(p)), key=len, default=None)
    if prefix is None:
        return None  # not a group, or another community's namespace
    body, hash_sign, authority = entry[len(prefix) :].partition("#")
    if hash_sign and _AUTHORITY_RE.fullmatch(authority) is None:
        return "the '#authority' suffix is empty or malformed"
    parts = body.split(":")
    role_at = [i for i, p in enumerate(parts) if p[: len(_ROLE_PREFIX)].lower() == _ROLE_PREFIX]
    role = None
    if len(role_at) > 1:
        return "more than one 'role=' part"
    if role_at:
        if role_at[0] != len(parts) - 1:
            return "the 'role=' part must come last"
        role = unquote(parts.pop()[len(_ROLE_PREFIX) :])
    vo, *path = (unquote(p) for p in parts) if parts else ("",)
    return _syntax_error(vo, tuple(path), role) or GroupMembership(vo, tuple(path), role)


def parse_iam_groups(value: object, claim: str = "groups") -> GroupParseResult:
    """Parse an IAM-profile ``groups`` claim: ``["iris", "iris/lsst"]`` (no leading ``/``).

    Args:
        value: The claim value as decoded from JSON (a list, or a single string).
        claim: The claim name, used in problem reports.
    """
    return _collect([(claim, value, _iam_entry)])


def parse_wlcg_groups(value: object, claim: str = "wlcg.groups") -> GroupParseResult:
    """Parse a WLCG ``wlcg.groups`` claim: ``["/iris", "/dune/Role=production"]``.

    Paths must start with ``/``. A last component ``Role=<role>`` (any case) is the role
    of the group before it.

    Args:
        value: The claim value as decoded from JSON (a list, or a single string).
        claim: The claim name, used in problem reports.
    """
    return _collect([(claim, value, _wlcg_entry)])


def _entitlement_prefixes(namespaces: Sequence[str]) -> tuple[str, ...]:
    if isinstance(namespaces, str):
        raise TypeError("entitlement namespaces must be a list of strings, not one string")
    for namespace in namespaces:
        if not namespace or namespace.endswith(":"):
            raise ValueError(
                f"bad entitlement namespace {namespace!r}: write e.g. 'urn:mace:egi.eu'"
            )
    return tuple(f"{namespace}:group:" for namespace in namespaces)


def parse_entitlements(
    value: object, namespaces: Sequence[str], claim: str = "eduperson_entitlement"
) -> GroupParseResult:
    """Parse AARC group entitlements such as ``urn:mace:egi.eu:group:vo:sub:role=r#authority``.

    Only URNs starting with ``<namespace>:group:`` for a configured namespace are read
    (case-sensitively); other entitlements are skipped without a problem. Percent-encoded
    parts are decoded before the canonical syntax is applied.

    Args:
        value: The claim value as decoded from JSON (a list, or a single string).
        namespaces: Namespaces to read, e.g. ``["urn:mace:egi.eu"]``.
        claim: The claim name, used in problem reports.

    Raises:
        TypeError: If ``namespaces`` is a single string rather than a list.
        ValueError: If a namespace is empty or ends with ``:``.
    """
    prefixes = _entitlement_prefixes(namespaces)
    return _collect([(claim, value, lambda entry: _entitlement_entry(entry, prefixes))])


def canonical_groups(
    claims: Mapping[str, object],
    sources: Mapping[str, str],
    entitlement_namespaces: Sequence[str],
) -> GroupParseResult:
    """Collect the memberships from every configured group claim of one user.

    Args:
        claims: Decoded ID-token or userinfo claims.
        sources: Claim name to format (one of :data:`GROUP_FORMATS`), e.g.
            ``{"groups": "iam", "wlcg.groups": "wlcg", "eduperson_entitlement":
            "entitlement"}``. Names are looked up literally: ``wlcg.groups`` is one claim,
            not a path. Claims the user's token lacks are skipped.
        entitlement_namespaces: Namespaces read by ``entitlement`` sources.

    Returns:
        All memberships merged, sorted and de-duplicated, with every source's problems.

    Raises:
        ValueError: If a source names an unknown format (a configuration error).
    """
    unknown = sorted(set(sources.values()) - set(GROUP_FORMATS))
    if unknown:
        raise ValueError(
            f"unknown group claim format(s) {', '.join(map(repr, unknown))}; "
            f"use one of {', '.join(GROUP_FORMATS)}"
        )
    prefixes = _entitlement_prefixes(entitlement_namespaces)
    parsers: dict[str, _EntryParser] = {
        "iam": _iam_entry,
        "wlcg": _wlcg_entry,
        "entitlement": lambda entry: _entitlement_entry(entry, prefixes),
    }
    return _collect(
        (claim, claims[claim], parsers[claim_format])
        for claim, claim_format in sources.items()
        if claim in claims
    )


def group_names(memberships: Iterable[GroupMembership]) -> list[str]:
    """Return the sorted unique group names, roles dropped, e.g. for hub group sync."""
    return sorted({membership.group for membership in memberships})
