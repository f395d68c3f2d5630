"""Overrides as administrators write them, and values researchers type into them.

Pure helpers of :mod:`~iris_jupyterhub.spawner.profiles` and
:mod:`~iris_jupyterhub.spawner.resolution`: KubeSpawner's ``{value}`` templating of an
``unlisted_choice``, merging override layers as KubeSpawner applies them, and reading an
image reference's registry and path for ``allowed_image_registries``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["fill_value", "image_name", "merge_overrides", "template_keys"]

_HOST_RE = re.compile(r"(localhost|[a-zA-Z0-9-]+(\.[a-zA-Z0-9-]+)+)(:[0-9]{1,5})?")
_PATH_RE = re.compile(r"[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*")
_TAG_RE = re.compile(r"(:[A-Za-z0-9_][A-Za-z0-9_.-]{0,127})?(@sha256:[a-f0-9]{64})?")


def fill_value(template: Any, value: str) -> Any:
    """KubeSpawner's ``{value}`` templating, on values only (never on keys)."""
    if isinstance(template, str):
        return template.format_map(_KeepOthers(value=value))
    if isinstance(template, (list, tuple, set)):
        return type(template)(fill_value(item, value) for item in template)
    if isinstance(template, Mapping):
        return {k: fill_value(v, value) for k, v in template.items()}
    return template


class _KeepOthers(dict[str, str]):
    def __missing__(self, key: str) -> str:
        return "{" + key + "}"


def template_keys(tree: object) -> Iterable[str]:
    if isinstance(tree, Mapping):
        for key, value in tree.items():
            yield str(key)
            yield from template_keys(value)


def merge_overrides(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """``update`` over ``base``, dicts merged recursively, as KubeSpawner applies overrides."""
    result = dict(base)
    for key, value in update.items():
        old = result.get(key)
        both = isinstance(value, Mapping) and isinstance(old, Mapping)
        result[key] = merge_overrides(old, value) if both else value  # type: ignore[arg-type]
    return result


def image_name(reference: str) -> str | None:
    """``registry/path`` of an image reference (``docker.io`` filled in), or ``None``."""
    rest, at, digest = reference.partition("@")
    colon = rest.rfind(":")
    name, tag = (rest[:colon], rest[colon:]) if colon > rest.rfind("/") else (rest, "")
    if not _TAG_RE.fullmatch(tag + at + digest):
        return None
    first, slash, path = name.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        host = first if _HOST_RE.fullmatch(first) else ""
    else:
        host, path = "docker.io", name if slash else f"library/{name}"
    host = "docker.io" if host == "index.docker.io" else host
    return f"{host}/{path}" if host and _PATH_RE.fullmatch(path) else None
