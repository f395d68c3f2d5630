"""Spawn profiles: validate the admin's ``profile_list``, then judge each spawn request.

The profile list is KubeSpawner's (and z2jh's ``singleuser.profileList``) format unchanged,
with six additions:

``allowed_groups`` / ``required_groups``
    On a profile, on a choice of ``profile_options`` and on an ``unlisted_choice``: lists of
    canonical group rules (:func:`~iris_jupyterhub.groups.parse_group_rule`, e.g.
    ``"iris/lsst"`` or ``"vo.iris.ac.uk:role=member"``). The user must match *any* allowed
    rule and *all* required rules; without them, everyone may use it.
``resources``
    On a profile, a choice or an ``unlisted_choice``: the shorthand of
    :mod:`~iris_jupyterhub.spawner.resources`. A choice's keys replace the profile's, so a
    "GPU" choice can say only ``{gpu: 1}``; in an ``unlisted_choice``, string values may use
    ``{value}`` (e.g. ``{cpu: "{value}"}`` lets researchers type a number of cores).
``allowed_image_registries``
    On an ``unlisted_choice``: the typed value must be a well-formed image reference from
    one of these registries or registry paths (``"quay.io/jupyter"``, ``"docker.io"``).
``storage``
    On a profile: ``false`` to start its servers without the Manila home and group shares
    of :class:`~iris_jupyterhub.storage.ManilaStorage` (default ``true``; no effect while
    storage is not enabled).
``rucio``
    On a profile: ``false`` to start its servers without the Rucio token directory and
    environment of :mod:`iris_jupyterhub.rucio` (default ``true``; no effect while no
    Rucio instance is configured).

Requests are what KubeSpawner stores in ``user_options``: ``{"profile": <slug>, <option
key>: <choice slug>, "<option key>--unlisted-choice": <typed value>}``, plus ``"group"``,
the POSIX group to run as. Every request is judged against the *current* list and the
user's *current* groups; :class:`~iris_jupyterhub.spawner.errors.SpawnRequestError` (400
or 403) is the only exception it raises. Overrides only ever come from the admin's list.
"""

from __future__ import annotations

import copy
import difflib
import re
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from slugify import slugify

from ..groups import GroupMembership, GroupRule, HeldGroups, all_rules_match, any_rule_matches
from ..groups import parse_group_rule as _parse_rule
from .overrides import fill_value, image_name, merge_overrides, template_keys
from .resources import (
    GpuScheduling,
    ResourceRequest,
    check_resource_overrides,
    expand_resources,
    parse_resources,
)

__all__ = [
    "UNLISTED_CHOICE",
    "UNLISTED_SUFFIX",
    "Access",
    "Choice",
    "Profile",
    "ProfileOption",
    "UnlistedChoice",
    "validate_profile_list",
]

UNLISTED_SUFFIX = "--unlisted-choice"
"""Suffix of the ``user_options`` key that carries an option's typed value."""
UNLISTED_CHOICE = "unlisted-choice"
"""The value KubeSpawner's form gives the select when "Other..." is picked."""
MAX_VALUE_LENGTH = 256
"""Longest value a researcher may type into an ``unlisted_choice``."""

_GROUP_KEYS = ("allowed_groups", "required_groups")
_PROFILE_KEYS = (
    "display_name",
    "slug",
    "description",
    "default",
    "kubespawner_override",
    "profile_options",
    "resources",
    "storage",
    "rucio",
    *_GROUP_KEYS,
)
_OPTION_KEYS = ("display_name", "choices", "unlisted_choice")
_CHOICE_KEYS = ("display_name", "default", "kubespawner_override", "resources", *_GROUP_KEYS)
_UNLISTED_KEYS = (
    "enabled",
    "display_name",
    "display_name_in_choices",
    "validation_regex",
    "validation_message",
    "kubespawner_override",
    "resources",
    "allowed_image_registries",
    *_GROUP_KEYS,
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")


@dataclass(frozen=True)
class Access:
    """Who may use a profile or choice: any of ``allowed`` (if any), and all of ``required``."""

    allowed: tuple[GroupRule, ...] = ()
    required: tuple[GroupRule, ...] = ()

    def permits(self, memberships: Collection[GroupMembership] | HeldGroups) -> bool:
        """Whether a user with ``memberships`` may use the thing this guards."""
        return (
            not self.allowed or any_rule_matches(self.allowed, memberships)
        ) and all_rules_match(self.required, memberships)


@dataclass(frozen=True)
class Choice:
    """One entry of an option's ``choices``; ``config`` is the admin's mapping as written."""

    slug: str
    display_name: str
    default: bool
    overrides: Mapping[str, Any]
    resources: ResourceRequest
    access: Access
    config: Mapping[str, Any]


@dataclass(frozen=True)
class UnlistedChoice:
    """An enabled ``unlisted_choice``: a value researchers type, checked by full match."""

    display_name: str
    pattern: re.Pattern[str] | None
    validation_message: str
    overrides: Mapping[str, Any]
    resources: Mapping[str, Any]
    registries: tuple[str, ...]
    access: Access
    config: Mapping[str, Any]


@dataclass(frozen=True)
class ProfileOption:
    """One of a profile's ``profile_options``, keyed by ``key``."""

    key: str
    display_name: str
    choices: tuple[Choice, ...]
    unlisted: UnlistedChoice | None
    config: Mapping[str, Any]

    @property
    def default_choice(self) -> Choice | None:
        """The first choice marked ``default``, else the first; ``None`` if there are none."""
        return next(
            (c for c in self.choices if c.default), self.choices[0] if self.choices else None
        )


@dataclass(frozen=True)
class Profile:
    """One validated profile of the list (or, from :func:`visible_profiles`, a user's view)."""

    slug: str
    display_name: str
    description: str
    default: bool
    overrides: Mapping[str, Any]
    resources: ResourceRequest
    access: Access
    options: tuple[ProfileOption, ...]
    config: Mapping[str, Any]
    storage: bool = True
    """Whether servers of this profile get the Manila storage (the ``storage`` key)."""
    rucio: bool = True
    """Whether servers of this profile get Rucio tokens (the ``rucio`` key)."""
    settled: dict[Any, Any] = field(default_factory=dict, compare=False, repr=False)
    """Memo of :func:`~iris_jupyterhub.spawner.resolution.resolve_request`: the expanded
    settings of this profile with a given set of listed choices (a pure result of frozen
    data; shared with the user views :func:`visible_profiles` makes of it)."""


# --- validation of the admin's list ----------------------------------------------------------


def _mapping(value: object, what: str, known: tuple[str, ...] = ()) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(k, str) for k in value):
        raise ValueError(f"{what} must be a mapping with string keys")
    for key in value:
        close = difflib.get_close_matches(key, known, n=1, cutoff=0.8) if key not in known else []
        if close:
            raise ValueError(f"unknown key {key!r} (did you mean {close[0]!r}?)")
    return value


def _text(spec: Mapping[str, Any], key: str, default: str | None = None) -> str:
    value = spec.get(key, default)
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string")
    return value


def _flag(spec: Mapping[str, Any], key: str) -> bool:
    value = spec.get(key, False)
    if not isinstance(value, bool):
        raise ValueError(f"{key} must be true or false, not {value!r}")
    return value


def _access(spec: Mapping[str, Any]) -> Access:
    rules: dict[str, tuple[GroupRule, ...]] = {}
    for key in _GROUP_KEYS:
        value = spec.get(key)
        if value is not None and (isinstance(value, str) or not isinstance(value, (list, tuple))):
            raise ValueError(f"{key} must be a list of group rules")
        if value is not None and not value:
            raise ValueError(f"{key} is empty: remove it to allow everyone")
        rules[key] = tuple(
            _parse_rule(r) if isinstance(r, str) else _parse_rule(str(r)) for r in value or ()
        )
    return Access(rules["allowed_groups"], rules["required_groups"])


def _overrides(spec: Mapping[str, Any], checked: bool = True) -> dict[str, Any]:
    value = _mapping(spec.get("kubespawner_override", {}), "kubespawner_override")
    return check_resource_overrides(value) if checked else copy.deepcopy(dict(value))


def _unlisted(spec: Mapping[str, Any]) -> UnlistedChoice | None:
    spec = _mapping(spec, "unlisted_choice", _UNLISTED_KEYS)
    if not _flag(spec, "enabled"):
        return None
    regex, registries = spec.get("validation_regex"), spec.get("allowed_image_registries", [])
    try:
        pattern = re.compile(regex) if regex else None
    except (re.error, TypeError) as error:
        raise ValueError(
            f"validation_regex {regex!r} is not a valid regular expression: {error}"
        ) from None
    if isinstance(registries, str) or not isinstance(registries, (list, tuple)):
        raise ValueError("allowed_image_registries must be a list like ['quay.io/jupyter']")
    prefixes = []  # normalised like image names: "jupyter" is "docker.io/jupyter"
    for entry in registries:
        name = image_name(entry.rstrip("/") + "/x") if isinstance(entry, str) else None
        if name is None:
            raise ValueError(f"allowed_image_registries entry {entry!r} is not a registry (path)")
        prefixes.append(name[:-2])
    overrides, resources = _overrides(spec, checked=False), spec.get("resources") or {}
    if any("{value}" in k for k in template_keys(overrides)):
        raise ValueError("'{value}' may only appear in values of kubespawner_override, not keys")
    try:
        fill_value(overrides, "x")
        parse_resources(fill_value(resources, "1"))
    except (ValueError, IndexError, KeyError, AttributeError) as error:
        raise ValueError(f"bad '{{value}}' template: {error}") from None
    return UnlistedChoice(
        _text(spec, "display_name", "Other"),
        pattern,
        _text(spec, "validation_message", ""),
        overrides,
        resources,
        tuple(prefixes),
        _access(spec),
        spec,
    )


def _no_second_default(items: Iterable[tuple[bool, Access, str]], what: str) -> None:
    """Refuse a ``default`` that can never apply because an unrestricted one comes first."""
    first: str | None = None
    for default, access, name in items:
        if default and first is not None:
            raise ValueError(f"{what} {name!r} and {first!r} are both default for everyone")
        if default and access == Access():
            first = name


def _choice(slug: str, spec: object) -> Choice:
    spec = _mapping(spec, "the choice", _CHOICE_KEYS)
    if not slug or slug == UNLISTED_CHOICE:
        raise ValueError("choice keys must be non-empty and not 'unlisted-choice'")
    resources = parse_resources(spec.get("resources") or {})
    name, default = _text(spec, "display_name", slug), _flag(spec, "default")
    return Choice(slug, name, default, _overrides(spec), resources, _access(spec), spec)


def _option(key: str, spec: object) -> ProfileOption:
    if not key or key in ("profile", "group") or key.endswith(UNLISTED_SUFFIX):
        raise ValueError(
            "the key must not be empty, 'profile', 'group' or end in --unlisted-choice"
        )
    spec = _mapping(spec, "the option", _OPTION_KEYS)
    choices = []
    for slug, choice in _mapping(spec.get("choices", {}), "choices").items():
        try:
            choices.append(_choice(slug, choice))
        except ValueError as error:
            raise ValueError(f"choice {slug!r}: {error}") from None
    _no_second_default(((c.default, c.access, c.slug) for c in choices), "choices")
    unlisted = _unlisted(spec.get("unlisted_choice") or {"enabled": False})
    if not choices and unlisted is None:
        raise ValueError("has no choices and no enabled unlisted_choice")
    return ProfileOption(key, _text(spec, "display_name", key), tuple(choices), unlisted, spec)


def _profile(spec: object, gpu: GpuScheduling | None) -> Profile:
    spec = _mapping(spec, "a profile", _PROFILE_KEYS)
    name = _text(spec, "display_name")
    slug = spec["slug"] if "slug" in spec else slugify(name)
    if not isinstance(slug, str) or not slug:
        raise ValueError(
            "slug must be a non-empty string (or left out to derive it from display_name)"
        )
    options = []
    for key, option in _mapping(spec.get("profile_options", {}), "profile_options").items():
        try:
            options.append(_option(key, option))
        except ValueError as error:
            raise ValueError(f"option {key!r}: {error}") from None
    profile = Profile(
        slug,
        name,
        _text(spec, "description", ""),
        _flag(spec, "default"),
        _overrides(spec),
        parse_resources(spec.get("resources") or {}),
        _access(spec),
        tuple(options),
        spec,
        _flag(spec, "storage") if "storage" in spec else True,
        _flag(spec, "rucio") if "rucio" in spec else True,
    )
    for option in profile.options:  # every choice must combine with the profile's settings
        for choice in option.choices:
            try:
                _combine(profile, [(choice.overrides, choice.resources)], gpu)
            except ValueError as error:
                raise ValueError(
                    f"option {option.key!r}, choice {choice.slug!r}: {error}"
                ) from None
    _combine(profile, [], gpu)
    return profile


def validate_profile_list(profile_list: object, gpu: GpuScheduling | None = None) -> list[Profile]:
    """Check the admin's ``profile_list`` and return it as :class:`Profile` objects.

    Missing slugs are derived from ``display_name`` with ``slugify`` as KubeSpawner does.
    Unknown keys that look like typos of known ones (``alowed_groups``) are refused; other
    unknown keys are kept in ``config`` for custom form templates.

    Raises:
        ValueError: For an admin mistake, naming the profile and option: duplicate slugs,
            malformed group rules, ``resources`` or regexes, a ``default`` that can never
            apply, a ``resources`` setting that collides with ``kubespawner_override``...
    """
    if isinstance(profile_list, (str, Mapping)) or not isinstance(profile_list, (list, tuple)):
        raise ValueError("profile_list must be a list of profiles")
    profiles: list[Profile] = []
    for index, spec in enumerate(profile_list):
        label = spec.get("slug") or spec.get("display_name") if isinstance(spec, Mapping) else None
        try:
            profile = _profile(spec, gpu)
        except ValueError as error:
            raise ValueError(f"profile_list[{index}] ({label!r}): {error}") from None
        if any(p.slug == profile.slug for p in profiles):
            raise ValueError(f"profile_list[{index}]: slug {profile.slug!r} is used twice")
        profiles.append(profile)
    _no_second_default(((p.default, p.access, p.slug) for p in profiles), "profile_list: profiles")
    return profiles


def _combine(
    profile: Profile,
    layers: Iterable[tuple[Mapping[str, Any], ResourceRequest]],
    gpu: GpuScheduling | None,
) -> tuple[dict[str, Any], tuple[Mapping[str, str], ...]]:
    """The profile's overrides and resources with each layer's on top, expanded."""
    overrides, request = dict(profile.overrides), profile.resources
    for more_overrides, more_resources in layers:
        overrides = merge_overrides(overrides, more_overrides)
        request = request.merged(more_resources)
    settings = expand_resources(request, check_resource_overrides(overrides), gpu)
    return plain_copy(dict(settings.overrides)), settings.tolerations


def plain_copy(value: Any) -> Any:
    """``copy.deepcopy`` for the JSON-like data of overrides, several times faster: dicts
    and lists are copied, strings, numbers, booleans and ``None`` shared (immutable), and
    anything else deep-copied."""
    kind = type(value)
    if kind is dict:
        return {k: plain_copy(v) for k, v in value.items()}
    if kind is list:
        return [plain_copy(v) for v in value]
    if kind in _IMMUTABLE:
        return value
    return copy.deepcopy(value)


_IMMUTABLE = frozenset({str, int, float, bool, type(None)})
