"""Parse identity-provider group claims into the canonical group model.

IRIS IAM and EGI Check-in describe the same thing, "this person is in that group, maybe
with that role", in three different claim formats. This module turns all of them into one
canonical form (:class:`~iris_jupyterhub.groups.GroupMembership`), the only group syntax
hub administrators write: in allowed, admin and required groups, profiles, quotas and
storage rules.

The canonical form, the group rules and their matching are
:mod:`iris_jupyterhub.groups`; this module only reads the claims.

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

Malformed values are never "cleaned" into something else: each one is left out and returned
as a :class:`ClaimProblem`, and parsing carries on with the rest of the claim. Nothing here
logs or raises on claim content; callers decide what to show.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from urllib.parse import unquote

from ..groups import (
    ROLE_PREFIX,
    GroupMembership,
    group_syntax_error,
    safe_repr,
)

GROUP_FORMATS = ("iam", "wlcg", "entitlement")
"""Names of the claim formats that :func:`canonical_groups` understands."""

DEFAULT_ENTITLEMENT_NAMESPACES = ("urn:mace:egi.eu",)
"""Entitlement namespaces read when none are configured (EGI Check-in)."""

_AUTHORITY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._~%:@+/=-]{0,254}")


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
            problems.append(ClaimProblem(claim, safe_repr(value), "expected a list of strings"))
            continue
        for entry in [value] if isinstance(value, str) else value:
            outcome = parse_entry(entry) if isinstance(entry, str) else "entry is not a string"
            if isinstance(outcome, GroupMembership):
                found.add(outcome)
            elif outcome is not None:
                problems.append(ClaimProblem(claim, safe_repr(entry), outcome))
    return GroupParseResult(tuple(sorted(found)), tuple(dict.fromkeys(problems)))


def _iam_entry(entry: str) -> GroupMembership | str:
    if entry.startswith("/"):
        return "IAM group names have no leading '/' (is this a wlcg.groups claim?)"
    vo, *path = entry.split("/")
    return group_syntax_error(vo, tuple(path), None) or GroupMembership(vo, tuple(path))


def _wlcg_entry(entry: str) -> GroupMembership | str:
    if not entry.startswith("/"):
        return "WLCG group paths start with '/'"
    vo, *path = entry[1:].split("/")
    role = None
    if path and path[-1][: len(ROLE_PREFIX)].lower() == ROLE_PREFIX:
        role = path.pop()[len(ROLE_PREFIX) :]
    return group_syntax_error(vo, tuple(path), role) or GroupMembership(vo, tuple(path), role)


def _entitlement_entry(entry: str, prefixes: Sequence[str]) -> GroupMembership | str | None:
    prefix = max((p for p in prefixes if entry.startswith(p)), key=len, default=None)
    if prefix is None:
        return None  # not a group, or another community's namespace
    body, hash_sign, authority = entry[len(prefix) :].partition("#")
    if hash_sign and _AUTHORITY_RE.fullmatch(authority) is None:
        return "the '#authority' suffix is empty or malformed"
    parts = body.split(":")
    role_at = [i for i, p in enumerate(parts) if p[: len(ROLE_PREFIX)].lower() == ROLE_PREFIX]
    role = None
    if len(role_at) > 1:
        return "more than one 'role=' part"
    if role_at:
        if role_at[0] != len(parts) - 1:
            return "the 'role=' part must come last"
        role = unquote(parts.pop()[len(ROLE_PREFIX) :])
    vo, *path = (unquote(p) for p in parts) if parts else ("",)
    return group_syntax_error(vo, tuple(path), role) or GroupMembership(vo, tuple(path), role)


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
