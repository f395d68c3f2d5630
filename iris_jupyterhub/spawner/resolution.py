"""Judging a spawn request: what a user may see and what their submission resolves to.

Pure functions over the validated profiles of :mod:`~iris_jupyterhub.spawner.profiles`
and the user's canonical group memberships. Every problem with user input is a
:class:`~iris_jupyterhub.spawner.errors.SpawnRequestError` carrying a 400 or 403 and a
message a researcher understands; nothing the user sends can add spawner overrides.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from ..groups import GroupMembership, HeldGroups
from ..posix.names import is_valid_name
from .errors import SpawnRequestError, bad_request, forbidden
from .overrides import fill_value, image_name
from .profiles import (
    _CONTROL_RE,
    _GROUP_KEYS,
    MAX_VALUE_LENGTH,
    UNLISTED_CHOICE,
    UNLISTED_SUFFIX,
    Choice,
    Profile,
    ProfileOption,
    UnlistedChoice,
    _combine,
    plain_copy,
)
from .resources import (
    GpuScheduling,
    ResourceTotals,
    parse_resources,
    summarise_resources,
)

__all__ = [
    "Resolution",
    "default_profile",
    "profile_list_for_form",
    "resolve_request",
    "visible_profiles",
]


@dataclass(frozen=True)
class Resolution:
    """What a spawn request resolved to.

    Attributes:
        profile: The profile, as the user sees it.
        choices: Option key to the chosen choice's slug (options answered by a typed value
            are not in it).
        unlisted: Option key to the value typed, for the options answered that way.
        overrides: Everything to apply with KubeSpawner's ``_apply_overrides``: the
            profile's ``kubespawner_override``, then each chosen option's (``{value}``
            filled in), then the expanded ``resources``. A deep copy, safe to mutate.
        tolerations: To append to the spawner's tolerations (GPU), not to replace them.
        resources: The totals of :attr:`overrides` (zero where the spawner's own setting
            applies); see :func:`~iris_jupyterhub.spawner.resources.summarise_resources`.
        group: The POSIX group name requested, or ``None`` for the personal group.
        notices: Sentences for the researcher about saved choices that were replaced.
    """

    profile: Profile
    choices: Mapping[str, str]
    unlisted: Mapping[str, str]
    overrides: Mapping[str, Any]
    tolerations: tuple[Mapping[str, str], ...]
    resources: ResourceTotals
    group: str | None = None
    notices: tuple[str, ...] = ()

    @property
    def user_options(self) -> dict[str, str]:
        """The request in canonical ``user_options`` form, to save for the next spawn."""
        options = {"profile": self.profile.slug, **self.choices}
        options.update({f"{k}{UNLISTED_SUFFIX}": v for k, v in self.unlisted.items()})
        return options | ({"group": self.group} if self.group else {})


# --- judging a request ----------------------------------------------------------------------


def _visible(profile: Profile, held: HeldGroups) -> Profile | None:
    if not profile.access.permits(held):
        return None
    options = []
    for option in profile.options:
        choices = tuple(c for c in option.choices if c.access.permits(held))
        unlisted = (
            option.unlisted if option.unlisted and option.unlisted.access.permits(held) else None
        )
        if not choices and unlisted is None:
            return None  # an option the user cannot answer makes the profile unusable
        if len(choices) == len(option.choices) and unlisted is option.unlisted:
            options.append(option)  # all of it visible: the (frozen) option itself
        else:
            options.append(replace(option, choices=choices, unlisted=unlisted))
    if all(o is p for o, p in zip(options, profile.options, strict=True)):
        return profile
    return replace(profile, options=tuple(options))


def visible_profiles(
    profiles: Iterable[Profile], memberships: Iterable[GroupMembership]
) -> list[Profile]:
    """The profiles, choices and unlisted choices a user with ``memberships`` may use.

    Kept for the same (frozen) profiles and groups: the form and each spawn of a user,
    and users with the same groups, get the kept result (a new list of it)."""
    held = HeldGroups.of(memberships)
    listed = tuple(profiles)
    key = (held, tuple(map(id, listed)))
    kept = _VISIBLE.get(key)
    if kept is not None and all(a is b for a, b in zip(kept[0], listed, strict=True)):
        return list(kept[1])
    visible = [p for p in (_visible(p, held) for p in listed) if p is not None]
    if len(_VISIBLE) >= _VISIBLE_LIMIT:
        _VISIBLE.clear()
    _VISIBLE[key] = (listed, tuple(visible))  # holds the profiles: their ids stay theirs
    return visible


_VISIBLE: dict[tuple[HeldGroups, tuple[int, ...]], tuple[tuple[Profile, ...], tuple[Profile, ...]]]
_VISIBLE = {}
_VISIBLE_LIMIT = 512


def default_profile(visible: Iterable[Profile]) -> Profile | None:
    """The first ``default`` profile of ``visible``, else the first; ``None`` if empty."""
    profiles = list(visible)
    return next((p for p in profiles if p.default), profiles[0] if profiles else None)


_EXTENSION_KEYS = frozenset(
    {*_GROUP_KEYS, "resources", "allowed_image_registries", "kubespawner_override"}
)


def _plain(config: Mapping[str, Any], **values: Any) -> dict[str, Any]:
    return {k: v for k, v in config.items() if k not in _EXTENSION_KEYS} | values


def _option_for_form(option: ProfileOption) -> dict[str, Any]:
    default = option.default_choice
    choices = {
        c.slug: _plain(c.config, display_name=c.display_name, default=c is default)
        for c in option.choices
    }
    unlisted = _plain(option.unlisted.config, enabled=True) if option.unlisted else {}
    return _plain(
        option.config,
        display_name=option.display_name,
        choices=choices,
        unlisted_choice=unlisted or {"enabled": False},
    )


def profile_list_for_form(visible: Iterable[Profile]) -> list[dict[str, Any]]:
    """A user's profiles in KubeSpawner's ``profile_list`` format, for its form template.

    Only what the user may use is listed, defaults are marked as they apply to this user,
    and the extension keys and overrides are left out (they are not the user's business).
    """
    profiles = list(visible)
    chosen = default_profile(profiles)
    return [
        _plain(
            p.config,
            slug=p.slug,
            default=p is chosen,
            profile_options={o.key: _option_for_form(o) for o in p.options},
        )
        for p in profiles
    ]


def _check_value(option: ProfileOption, unlisted: UnlistedChoice, value: str) -> None:
    shown = value[:64] + ("..." if len(value) > 64 else "")
    if len(value) > MAX_VALUE_LENGTH or _CONTROL_RE.search(value):
        raise bad_request(
            f"The value for {option.display_name} is too long or has control characters."
        )
    if unlisted.pattern and not unlisted.pattern.fullmatch(value):
        rule = unlisted.validation_message or f"it must match {unlisted.pattern.pattern}"
        raise bad_request(f"{shown!r} is not accepted for {option.display_name}: {rule}.")
    if unlisted.registries:
        name = image_name(value)
        if name is None:
            raise bad_request(
                f"{shown!r} is not an image reference like 'quay.io/jupyter/base-notebook:latest'."
            )
        if not any(name == r or name.startswith(r + "/") for r in unlisted.registries):
            raise bad_request(
                f"Images must come from {', '.join(unlisted.registries)}; {shown!r} does not."
            )
    try:
        parse_resources(fill_value(unlisted.resources, value))
    except ValueError as error:
        raise bad_request(
            f"{shown!r} is not accepted for {option.display_name}: {error}."
        ) from None


def _pick(
    option: ProfileOption,
    known: ProfileOption,
    options: Mapping[str, object],
    notices: list[str] | None,
) -> tuple[Choice | None, str | None]:
    """The choice or typed value for one option; with ``notices``, stale ones fall back."""
    default = option.default_choice
    choice, value = (
        options.get(option.key) or None,
        options.get(option.key + UNLISTED_SUFFIX) or None,
    )
    try:
        if not isinstance(choice, (str, type(None))) or not isinstance(value, (str, type(None))):
            raise bad_request(f"The choice for {option.display_name} must be text.")
        if choice == UNLISTED_CHOICE and value is None:
            raise bad_request(f"Enter a value for {option.display_name}.")
        if value is not None and choice not in (None, UNLISTED_CHOICE):
            raise bad_request(
                f"Give either a choice or your own value for {option.display_name}, not both."
            )
        if value is not None:
            if option.unlisted is None:
                raise (forbidden if known.unlisted else bad_request)(
                    f"{option.display_name} does not accept a value of your own."
                )
            _check_value(option, option.unlisted, value)
            return None, value
        if choice is not None:
            found = next((c for c in option.choices if c.slug == choice), None)
            if found is None:
                exists = any(c.slug == choice for c in known.choices)
                listed = ", ".join(c.slug for c in option.choices)
                raise (forbidden if exists else bad_request)(
                    f"{choice[:64]!r} is not {'available to you' if exists else 'a choice'} for "
                    f"{option.display_name}; choose one of: {listed}."
                )
            return found, None
    except SpawnRequestError:
        if notices is None or default is None:
            raise
        notices.append(
            f"Your previous choice {str(value or choice)[:64]!r} for {option.display_name} is no "
            f"longer available; using {default.display_name!r}."
        )
    if default is None:
        raise bad_request(f"Enter a value for {option.display_name}.")
    return default, None


def _requested_profile(
    profiles: list[Profile], visible: list[Profile], slug: object, notices: list[str] | None
) -> Profile | None:
    """The visible profile named ``slug``; ``None`` for a stale one when ``notices`` is given."""
    found = next((p for p in visible if p.slug == slug), None) if isinstance(slug, str) else None
    if found is None and notices is None:
        exists = any(p.slug == slug for p in profiles)
        raise (forbidden if exists else bad_request)(
            f"{str(slug)[:64]!r} is not {'available to you' if exists else 'a server profile'}; "
            f"choose one of: {', '.join(p.slug for p in visible)}."
        )
    return found


def _requested_group(group: object, stale_fallback: bool) -> str | None:
    if group is None or group == "":
        return None
    if isinstance(group, str) and is_valid_name(group):
        return group
    if stale_fallback:
        return None
    raise bad_request(
        f"{str(group)[:64]!r} is not the name of a group. "
        "Choose one of your groups on the server options page."
    )


_SETTLED_LIMIT = 256


def _settings(
    profile: Profile, picks: list[tuple[Choice | None, str | None]], gpu: GpuScheduling | None
) -> tuple[dict[str, Any], tuple[Mapping[str, str], ...], ResourceTotals]:
    """The overrides (a copy, safe to mutate), tolerations and resource totals of
    ``profile`` with the picked choices and values.

    With listed choices only, the result depends on frozen data alone, so it is kept on
    the profile (:attr:`Profile.settled`) and later spawns get a copy of it."""
    if all(value is None for _, value in picks):
        key = tuple(choice.slug if choice else None for choice, _ in picks)
        kept = profile.settled.get(key)
        if kept is not None and kept[0] == gpu:
            return plain_copy(kept[1]), kept[2], kept[3]
        overrides, tolerations = _combined(profile, picks, gpu)
        totals = summarise_resources(overrides)
        if len(profile.settled) >= _SETTLED_LIMIT:
            profile.settled.clear()
        profile.settled[key] = (gpu, plain_copy(overrides), tolerations, totals)
        return overrides, tolerations, totals
    overrides, tolerations = _combined(profile, picks, gpu)
    return overrides, tolerations, summarise_resources(overrides)


def _combined(
    profile: Profile, picks: list[tuple[Choice | None, str | None]], gpu: GpuScheduling | None
) -> tuple[dict[str, Any], tuple[Mapping[str, str], ...]]:
    layers = []
    try:
        for option, (choice, value) in zip(profile.options, picks, strict=True):
            if choice is not None:
                layers.append((choice.overrides, choice.resources))
            elif option.unlisted is not None and value is not None:
                request = parse_resources(fill_value(option.unlisted.resources, value))
                layers.append((fill_value(option.unlisted.overrides, value), request))
        return _combine(profile, layers, gpu)
    except ValueError as error:
        if any(value for _, value in picks):
            raise bad_request(f"The value you entered cannot be used: {error}.") from None
        message = "This server profile is misconfigured; please tell the hub administrators."
        raise SpawnRequestError(500, message, str(error)) from None


def _chosen_profile(
    profiles: list[Profile],
    visible: list[Profile],
    default: Profile,
    slug: object,
    notices: list[str] | None,
) -> Profile:
    """The profile asked for (``default`` when none is named, or a stale one, noted)."""
    if slug in (None, ""):
        return default
    chosen = _requested_profile(profiles, visible, slug, notices) or default
    if chosen is default and slug != default.slug and notices is not None:
        notices.append(
            f"Your previous choice {str(slug)[:64]!r} is no longer available; "
            f"using {default.display_name!r}."
        )
    return chosen


def resolve_request(
    profiles: Iterable[Profile],
    memberships: Iterable[GroupMembership],
    user_options: Mapping[str, object],
    *,
    stale_fallback: bool = False,
    gpu: GpuScheduling | None = None,
) -> Resolution:
    """Judge a spawn request against the profile list and the user's current groups.

    Args:
        profiles: From :func:`validate_profile_list`.
        memberships: The user's canonical groups now (after the pre-spawn refresh).
        user_options: As stored by KubeSpawner (see the module docs); empty for defaults.
        stale_fallback: The options were saved in an earlier session: a profile, choice or
            value that no longer exists or is no longer allowed falls back to the default
            with a notice instead of an error; keys of removed options are dropped.
        gpu: The site's GPU scheduling defaults.

    Raises:
        SpawnRequestError: 400 for unknown profiles, choices or keys, malformed values
            (failing ``validation_regex`` by full match, or ``allowed_image_registries``);
            403 for profiles or choices the user may not use, or when none is visible.
    """
    if not isinstance(user_options, Mapping) or not all(isinstance(k, str) for k in user_options):
        raise bad_request("The server options must be a mapping with text keys.")
    profile_list = list(profiles)
    visible = visible_profiles(profile_list, memberships)
    default = default_profile(visible)
    if default is None:
        raise forbidden(
            "No server profile is available to your groups; ask the hub administrators."
        )
    notices: list[str] = []
    stale, options = notices if stale_fallback else None, dict(user_options)
    slug, group = options.pop("profile", None), options.pop("group", None)
    chosen = _chosen_profile(profile_list, visible, default, slug, stale)
    if chosen is default and slug not in (None, "", default.slug):
        options = {}  # a stale profile: they were answers to its options
    allowed = {k for o in chosen.options for k in (o.key, o.key + UNLISTED_SUFFIX)}
    unknown = sorted(set(options) - allowed)
    if unknown and not stale_fallback:
        shown = ", ".join(repr(k[:40]) for k in unknown[:5])
        raise bad_request(f"Unknown server option(s) {shown} for profile {chosen.display_name!r}.")
    full = next(p for p in profile_list if p.slug == chosen.slug)
    picks = [
        _pick(o, k, options, stale) for o, k in zip(chosen.options, full.options, strict=True)
    ]
    overrides, tolerations, totals = _settings(chosen, picks, gpu)
    return Resolution(
        profile=chosen,
        choices={o.key: c.slug for o, (c, _) in zip(chosen.options, picks, strict=True) if c},
        unlisted={o.key: v for o, (_, v) in zip(chosen.options, picks, strict=True) if v},
        overrides=overrides,
        tolerations=tolerations,
        resources=totals,
        group=_requested_group(group, stale_fallback),
        notices=tuple(notices),
    )
