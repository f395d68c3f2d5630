"""The spawn form is KubeSpawner's, rendered from a compiled template kept between renders.

Real spawners built in-process (see :mod:`tests.spawner.test_spawner_errors`): IRISSpawner's
form must be, byte for byte, what KubeSpawner's own ``_render_options_form`` renders for
the profiles the user may see (plus IRIS's label fixes and additions), while the Jinja
template is compiled once instead of on every render, and a changed template (trait or
file) or profile list shows at once.
"""

from __future__ import annotations

import os
from importlib.metadata import version
from pathlib import Path
from typing import Any

import jinja2
import pytest
from kubespawner import KubeSpawner
from packaging.version import Version
from traitlets.config import Config

from iris_jupyterhub.groups import memberships_from_auth_state
from iris_jupyterhub.spawner import IRISSpawner
from iris_jupyterhub.spawner.form import associate_labels
from iris_jupyterhub.spawner.profiles import validate_profile_list
from iris_jupyterhub.spawner.resolution import profile_list_for_form, visible_profiles
from tests.spawner.test_spawner_errors import POSIX, Handler, User, kubeconfig

__all__ = ["kubeconfig"]

AUTH_STATE = {"groups": ["iris", "iris/lsst"], "posix": POSIX}
OTHER_AUTH_STATE = {"groups": ["iris"], "posix": POSIX}
PROFILES: list[dict[str, Any]] = [
    {
        "display_name": "Standard",
        "slug": "standard",
        "description": "1 core <b>and</b> 2G",
        "default": True,
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {"display_name": "Base"},
                    "torch": {"display_name": "PyTorch", "allowed_groups": ["iris/lsst"]},
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Image",
                    "validation_regex": "^quay.io/.+$",
                    "kubespawner_override": {"image": "{value}"},
                },
            }
        },
    },
    {"display_name": "LSST", "slug": "lsst", "allowed_groups": ["iris/lsst"]},
    {"display_name": "Nobody", "slug": "nobody", "allowed_groups": ["iris/none"]},
]


def make(
    config: Config | None = None, auth_state: dict[str, Any] = AUTH_STATE, **traits: Any
) -> Any:
    spawner = IRISSpawner(
        _mock=True, user=User(auth_state), config=config or Config(), namespace="jhub", **traits
    )
    spawner.handler = Handler()
    return spawner


def kubespawner_form(auth_state: dict[str, Any], **traits: Any) -> str:
    """What vanilla KubeSpawner renders for the profiles this user may see."""
    visible = visible_profiles(
        validate_profile_list(PROFILES), memberships_from_auth_state(auth_state)
    )
    vanilla = KubeSpawner(_mock=True, user=User(auth_state), namespace="jhub", **traits)
    return associate_labels(str(vanilla._render_options_form(profile_list_for_form(visible))))


def kube_part(form: str) -> str:
    """IRISSpawner's form without what IRIS appends after KubeSpawner's part."""
    kube, _, _ = form.partition('<fieldset class="form-group iris-group">')
    kube, _, _ = kube.partition('<p id="iris-charge"')
    return kube


@pytest.mark.usefixtures("kubeconfig")
async def test_the_form_is_exactly_kubespawners_for_the_visible_profiles() -> None:
    for auth_state in (AUTH_STATE, OTHER_AUTH_STATE):
        form = await make(profile_list=PROFILES, auth_state=auth_state).get_options_form()
        assert kube_part(form) == kubespawner_form(auth_state)
    assert 'value="lsst"' in kube_part(await make(profile_list=PROFILES).get_options_form())
    assert 'value="nobody"' not in form  # per user
    assert 'value="lsst"' not in form


@pytest.mark.usefixtures("kubeconfig")
async def test_saved_options_are_preselected_as_kubespawner_does() -> None:
    saved = {"profile": "standard", "image": "torch", "group": "iris"}
    spawner = make(profile_list=PROFILES)
    spawner.user_options = saved
    vanilla = kubespawner_form(AUTH_STATE, user_options=saved)
    ours = kube_part(await spawner.get_options_form())
    assert ours == vanilla
    # KubeSpawner 7.1 preselects saved choices, 7.0 (z2jh 4.2.0) does not: ours follows it.
    kubespawner_preselects = vanilla != kubespawner_form(AUTH_STATE)
    assert (ours != kubespawner_form(AUTH_STATE)) == kubespawner_preselects
    if Version(version("jupyterhub-kubespawner")) >= Version("7.1"):
        assert kubespawner_preselects


@pytest.mark.usefixtures("kubeconfig")
async def test_the_template_is_compiled_once_not_per_render(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    compiled: list[str | None] = []
    compile_ = jinja2.Environment.compile

    def counting(self: jinja2.Environment, source: Any, *args: Any, **kwargs: Any) -> Any:
        compiled.append(args[0] if args else kwargs.get("name"))
        return compile_(self, source, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    await make(profile_list=PROFILES).get_options_form()  # may compile (first in this process)
    compiled.clear()
    for _ in range(3):
        await make(profile_list=PROFILES).get_options_form()
    assert compiled == []


@pytest.mark.usefixtures("kubeconfig")
async def test_a_changed_profile_form_template_shows_at_once() -> None:
    first = await make(
        profile_list=PROFILES, profile_form_template="A{{ profile_list|length }}"
    ).get_options_form()
    second = await make(
        profile_list=PROFILES, profile_form_template="B{{ profile_list|length }}"
    ).get_options_form()
    assert kube_part(first).endswith("A2")
    assert kube_part(second).endswith("B2")


@pytest.mark.usefixtures("kubeconfig")
async def test_a_changed_template_file_and_profile_list_show_at_once(tmp_path: Path) -> None:
    form_html = tmp_path / "form.html"
    form_html.write_text("one {% for p in profile_list %}{{ p.slug }} {% endfor %}")
    paths = {"additional_profile_form_template_paths": [str(tmp_path)]}
    first = await make(profile_list=PROFILES, **paths).get_options_form()
    assert kube_part(first).endswith("one standard lsst ")
    form_html.write_text("two {% for p in profile_list %}{{ p.slug }} {% endfor %}")
    stat = form_html.stat()  # the same second on a coarse clock: move the mtime on

    os.utime(form_html, (stat.st_atime, stat.st_mtime + 2))
    second = await make(profile_list=PROFILES[:1], **paths).get_options_form()
    assert kube_part(second).endswith("two standard ")
    form_html.unlink()  # back to KubeSpawner's own template
    third = await make(profile_list=PROFILES, **paths).get_options_form()
    assert kube_part(third) == kubespawner_form(AUTH_STATE)
