"""The spawn form's additions to KubeSpawner's: labels, the group choice, the charged group.

Pure functions returning HTML; :class:`~iris_jupyterhub.spawner.IRISSpawner` appends
them to KubeSpawner's rendered profile list.
"""

from __future__ import annotations

import html
import json
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import jinja2

from ..groups import GroupMembership, GroupRule, HeldGroups
from .charging import access_rules, charge_group, granting_rules, rank_candidates
from .profiles import UNLISTED_CHOICE, Profile
from .resolution import default_profile

__all__ = ["associate_labels", "canonical_of", "charge_line", "form_template", "group_fieldset"]

_OPTION_SELECT_RE = re.compile(r'<select name="(profile-option-[^"]+)"')
_OPTION_INPUT_RE = re.compile(r'<input data-name="(profile-option-[^"]+--unlisted-choice)"')
#: KubeSpawner's rule ``#kubespawner-profiles-list .profile .option {display: flex}``
#: outranks Bootstrap's ``.hidden``, so the "Other" text field always showed (and typing
#: into it did nothing unless "Other..." was chosen).
_FORM_STYLE = "<style>#kubespawner-profiles-list .profile .option.hidden{display:none}</style>"


def associate_labels(form: str) -> str:
    """Fix KubeSpawner's form template: give option selects and "Other" inputs the ids
    their ``<label for=...>`` point at (screen readers and ``get_by_label`` then find
    them), and really hide the "Other" field until "Other..." is chosen."""
    form = _OPTION_SELECT_RE.sub(r'<select id="\1" name="\1"', form)
    form = _OPTION_INPUT_RE.sub(r'<input id="\1" data-name="\1"', form)
    return _FORM_STYLE + form


_ENVIRONMENTS: dict[tuple[tuple[str, ...], tuple[bool, ...]], jinja2.Environment] = {}
_FROM_STRING: dict[tuple[int, str], jinja2.Template] = {}
_CACHE_LIMIT = 16


def _environment(paths: Sequence[str]) -> jinja2.Environment:
    """The Jinja environment KubeSpawner renders its form in, kept while ``paths`` and
    which of them hold a ``form.html`` stay the same (a file added or removed there
    changes which template is used; an edited one is reloaded by Jinja itself)."""
    key = (tuple(paths), tuple(os.path.isfile(os.path.join(p, "form.html")) for p in paths))
    env = _ENVIRONMENTS.get(key)
    if env is None:
        # As KubeSpawner's _render_options_form builds it (tests/spawner/test_form_render.py
        # compares the HTML with KubeSpawner's own): the admin's paths before the bundled
        # templates, and tojson keeping the order of the profile list.
        loader = jinja2.ChoiceLoader(
            [
                jinja2.FileSystemLoader(list(paths)),
                jinja2.PackageLoader("kubespawner", "templates"),
            ]
        )
        # no autoescape, as KubeSpawner: its template escapes what it shows itself, and
        # the form is HTML that JupyterHub renders again
        env = jinja2.Environment(loader=loader)  # noqa: S701
        env.policies["json.dumps_kwargs"] = {"sort_keys": False}
        if len(_ENVIRONMENTS) >= _CACHE_LIMIT:
            _ENVIRONMENTS.clear()
            _FROM_STRING.clear()
        _ENVIRONMENTS[key] = env
    return env


def form_template(profile_form_template: str, paths: Sequence[str]) -> jinja2.Template:
    """KubeSpawner's form template, compiled once and kept between renders.

    Args:
        profile_form_template: ``KubeSpawner.profile_form_template`` (``""``: the
            ``form.html`` found first in ``paths``, else KubeSpawner's own).
        paths: ``KubeSpawner.additional_profile_form_template_paths``.

    KubeSpawner compiles the template on every render (most of the time a form of a long
    profile list takes); the compiled template depends only on these two settings and
    the template files, so it is kept: a changed setting compiles the new template, a
    changed file is reloaded by Jinja (``auto_reload``), and the profile list, rendered
    per user, is never part of what is kept.
    """
    env = _environment(paths)
    if not profile_form_template:
        return env.get_template("form.html")
    key = (id(env), profile_form_template)
    template = _FROM_STRING.get(key)
    if template is None:
        template = _FROM_STRING[key] = env.from_string(profile_form_template)
    return template


def _posix_groups(posix: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    return [g for g in posix.get("groups") or () if isinstance(g, dict) and g.get("name")]


def canonical_of(posix: Mapping[str, Any], group_name: str | None) -> str | None:
    """The canonical group of the POSIX group ``group_name``; ``None`` for a personal one."""
    for group in _posix_groups(posix):
        if group.get("name") == group_name:
            canonical = group.get("canonical")
            return canonical if isinstance(canonical, str) and canonical else None
    return None


def _canonical_groups(posix: Mapping[str, Any]) -> dict[str, str | None]:
    """:func:`canonical_of` every POSIX group of the user, by name, in one pass (the form
    of a user in 200 groups asked for each one in turn, scanning them all each time)."""
    groups = _posix_groups(posix)
    first: dict[str, Mapping[str, Any]] = {}
    for group in groups:
        if isinstance(group["name"], str):
            first.setdefault(group["name"], group)
    result: dict[str, str | None] = {}
    for group in groups:
        found = first.get(str(group["name"]))
        canonical = found.get("canonical") if found is not None else None
        result[str(group["name"])] = (
            canonical if isinstance(canonical, str) and canonical else None
        )
    return result


def _chosen_group(posix: Mapping[str, Any], saved: Mapping[str, Any] | None) -> str | None:
    groups = _posix_groups(posix)
    return (saved or {}).get("group") or (str(groups[0]["name"]) if groups else None)


def group_fieldset(posix: Mapping[str, Any], saved: Mapping[str, Any] | None) -> str:
    """The "run as group" choice: the user's POSIX groups, personal group first."""
    groups = _posix_groups(posix)
    if len(groups) < 2:
        return ""
    chosen = _chosen_group(posix, saved)
    options = "".join(
        '<option value="{v}"{sel}>{label}</option>'.format(
            v=html.escape(str(g["name"])),
            sel=" selected" if g["name"] == chosen else "",
            label=html.escape(
                f"{g['name']} ({g['canonical']})"
                if g.get("canonical")
                else f"{g['name']} (personal)"
            ),
        )
        for g in groups
    )
    return (
        '<fieldset class="form-group iris-group">'
        '<label for="iris-group">Run as group</label>'
        '<select class="form-control" id="iris-group" name="group" '
        'aria-describedby="iris-group-help">'
        f"{options}</select>"
        '<small id="iris-group-help" class="form-text text-muted">'
        "New files are owned by this group, and its shared folders and quotas apply."
        "</small></fieldset>"
    )


def _charge_text(group: str | None) -> str:
    return f"Usage is charged to {group}" if group else "Usage is not charged to any VO group"


#: Recomputes the line in the browser from the server's data: the group run as if it is a
#: VO group, else the best-ranked rule of the chosen choices and profile, else ``otherwise``
#: (see iris_jupyterhub.spawner.charging, which this mirrors).
_CHARGE_SCRIPT = """<script>
(function () {
  var line = document.getElementById("iris-charge");
  var form = line && line.closest("form");
  if (!form) { return; }
  var data = JSON.parse(line.getAttribute("data-charge"));
  function charged() {
    var group = form.querySelector("#iris-group");
    if (group && data.groups[group.value]) { return data.groups[group.value]; }
    var radio = form.querySelector("input[name=profile]:checked");
    var found = null;
    var candidates = [];
    if (radio) {
      radio.closest(".js-profile-label").querySelectorAll("select.js-profile-option-select")
        .forEach(function (s) {
          candidates = candidates.concat((data.choices[s.id] || {})[s.value] || []);
        });
      candidates = candidates.concat(data.profiles[radio.value] || []);
    }
    candidates.forEach(function (c) { if (found === null || c[1] < found[1]) { found = c; } });
    return found === null ? data.otherwise : found[0];
  }
  function update() {
    var group = charged();
    line.textContent = group ? "Usage is charged to " + group
                             : "Usage is not charged to any VO group";
  }
  form.addEventListener("change", update);
  form.addEventListener("click", update);
  update();
})();
</script>"""


def _charge_data(
    visible: Sequence[Profile], held: HeldGroups, preference: Sequence[GroupRule]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Per profile slug and per option select id (and choice), the ranked candidates."""
    profiles, choices = {}, {}
    for profile in visible:
        profiles[profile.slug] = rank_candidates(access_rules(profile.access), held, preference)
        for option in profile.options:
            ranked = {
                c.slug: rank_candidates(access_rules(c.access), held, preference)
                for c in option.choices
            }
            if option.unlisted is not None:
                rules = access_rules(option.unlisted.access)
                ranked[UNLISTED_CHOICE] = rank_candidates(rules, held, preference)
            choices[f"profile-option-{profile.slug}--{option.key}"] = ranked
    return profiles, choices


def charge_line(
    visible: Sequence[Profile],
    memberships: Iterable[GroupMembership],
    *,
    posix: Mapping[str, Any],
    saved: Mapping[str, Any] | None,
    admitted: Sequence[GroupRule],
    preference: Sequence[GroupRule],
) -> str:
    """ "Usage is charged to <group>" for the form's default selection, with the data
    (computed here) and the small script that update it as the selection changes."""
    held_list = list(memberships)
    held = HeldGroups.of(held_list)
    otherwise = charge_group(
        chosen=None, granted=(), admitted=admitted, memberships=held_list, preference=preference
    )
    profile = default_profile(visible)
    picks = {
        o.key: o.default_choice.slug
        for o in (profile.options if profile else ())
        if o.default_choice
    }
    default = charge_group(
        chosen=canonical_of(posix, _chosen_group(posix, saved)),
        granted=granting_rules(profile, picks) if profile else (),
        admitted=admitted,
        memberships=held_list,
        preference=preference,
    )
    profiles, choices = _charge_data(visible, held, preference)
    groups = _canonical_groups(posix)
    data = {"groups": groups, "profiles": profiles, "choices": choices, "otherwise": otherwise}
    return (
        '<p id="iris-charge" class="form-text iris-charge" aria-live="polite" '
        f'data-charge="{html.escape(json.dumps(data, sort_keys=True))}">'
        f"{html.escape(_charge_text(default))}</p>{_CHARGE_SCRIPT}"
    )
