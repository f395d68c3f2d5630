"""Is an existing Kubernetes object ours and equivalent to the one we would create?

The hub creates the Secret, PersistentVolume and claim of a share with the ``create`` verb
only; when one already exists (HTTP 409) it reads it back and :func:`same_object` lists
the differences that matter (``[]``: adopt it). See
:mod:`~iris_jupyterhub.storage.manifests` for the objects themselves.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Any

from .manifests import (
    ACCESS_RULE_ANNOTATION,
    KIND_LABEL,
    MANAGED_BY_LABEL,
    OWNER_ANNOTATION,
    OWNER_LABEL,
    SHARE_LABEL,
)

__all__ = ["same_object"]

#: Maps compared key for key (nobody else adds keys there).
_EXACT_MAPS = {"data", "spec.csi.volumeAttributes"}
#: Values never shown in a difference (they end up in logs).
_SECRET_PATHS = ("data",)
#: Not compared: the size of a share grows when an admin extends it in Manila (CephFS
#: enforces the quota; the Kubernetes figures are informational).
_IGNORED = {"spec.capacity.storage", "spec.resources.requests.storage"}
#: Compared in metadata: what identifies the object as ours and whose it is.
_IDENTITY = {
    "labels": (MANAGED_BY_LABEL, KIND_LABEL, OWNER_LABEL, SHARE_LABEL),
    "annotations": (OWNER_ANNOTATION, ACCESS_RULE_ANNOTATION),
}


def _normalise(obj: Mapping[str, Any]) -> dict[str, Any]:
    """Fold ``stringData`` into ``data``, ``shareAccessID`` into ``shareAccessIDs``."""
    out = dict(obj)
    if obj.get("kind") == "Secret" and obj.get("stringData"):
        data = dict(obj.get("data") or {})
        data.update(
            {k: base64.b64encode(str(v).encode()).decode() for k, v in obj["stringData"].items()}
        )
        out["data"] = data
        out.pop("stringData")
    spec = obj.get("spec")
    csi = spec.get("csi") if isinstance(spec, Mapping) else None
    attributes = csi.get("volumeAttributes") if isinstance(csi, Mapping) else None
    if (
        isinstance(spec, Mapping)
        and isinstance(csi, Mapping)
        and isinstance(attributes, Mapping)
        and "shareAccessID" in attributes
    ):
        folded = dict(attributes)
        folded.setdefault("shareAccessIDs", folded.pop("shareAccessID"))
        folded.pop("shareAccessID", None)
        out["spec"] = {**spec, "csi": {**csi, "volumeAttributes": folded}}
    return out


def _compare_mapping(
    existing: Any, desired: Mapping[str, Any], path: str, diffs: list[str]
) -> None:
    if existing is None and not desired:
        return
    if not isinstance(existing, Mapping):
        diffs.append(f"{path}: missing or not a mapping")
        return
    if path in _EXACT_MAPS:
        extra = sorted(set(existing) - set(desired))
        if extra:
            diffs.append(f"{path}: unexpected keys {extra}")
    for key, value in desired.items():
        _compare(existing.get(key), value, f"{path}.{key}", diffs)


def _compare(existing: Any, desired: Any, path: str, diffs: list[str]) -> None:
    if path in _IGNORED:
        return
    if isinstance(desired, Mapping):
        _compare_mapping(existing, desired, path, diffs)
    elif isinstance(desired, list):
        if existing is None and not desired:
            return
        if not isinstance(existing, list) or len(existing) != len(desired):
            diffs.append(f"{path}: {existing!r} != {desired!r}")
            return
        for index, (old, new) in enumerate(zip(existing, desired, strict=True)):
            _compare(old, new, f"{path}[{index}]", diffs)
    elif existing is None and desired in ("", False, 0):
        return  # the API server omits empty strings and false booleans
    elif existing != desired:
        if path.split(".", maxsplit=1)[0] in _SECRET_PATHS:
            diffs.append(f"{path}: differs")
        else:
            diffs.append(f"{path}: {existing!r} != {desired!r}")


def same_object(existing: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """The differences that matter between an existing object and the desired one.

    Compared: kind, name, namespace, the labels and annotations that say the object is
    ours and whose it is, and every field of the body the builders set. Ignored: other
    labels and annotations (extra labels may change with the configuration), fields the
    server adds (uid, resourceVersion, finalizers, status, ``claimRef.uid``, ...), empty
    values the server omits, and the storage size (an admin may have extended the share).
    Secret values are never shown. ``[]`` means the existing object is ours and
    equivalent.
    """
    existing, desired = _normalise(existing), _normalise(desired)
    diffs: list[str] = []
    for key in ("apiVersion", "kind"):
        if existing.get(key) != desired.get(key):
            diffs.append(f"{key}: {existing.get(key)!r} != {desired.get(key)!r}")
    old_meta = existing.get("metadata") or {}
    new_meta = desired.get("metadata") or {}
    for key in ("name", "namespace"):
        if old_meta.get(key) != new_meta.get(key):
            diffs.append(f"metadata.{key}: {old_meta.get(key)!r} != {new_meta.get(key)!r}")
    for key, names in _IDENTITY.items():
        old, new = old_meta.get(key) or {}, new_meta.get(key) or {}
        wanted = {name: new[name] for name in names if name in new}
        _compare(old, wanted, f"metadata.{key}", diffs)
    for key, value in desired.items():
        if key not in ("apiVersion", "kind", "metadata"):
            _compare(existing.get(key), value, key, diffs)
    return diffs
