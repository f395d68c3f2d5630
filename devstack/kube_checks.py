"""Checks of the Kubernetes stand-in: strict schema validation, selectors, records.

Shared by the stand-in server (:mod:`devstack.kube_server`) and the client
handle (:mod:`devstack.kube`).
"""

from __future__ import annotations

import datetime
import functools
import importlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]

#: Kubernetes version whose OpenAPI schemas manifests are checked against (strict mode).
#: The oldest release still supported upstream-ish that z2jh 4.x runs on: a manifest valid
#: here is valid on newer clusters too. Override with ``IRIS_KUBE_VALIDATE_VERSION``.
KUBE_VERSION = os.environ.get("IRIS_KUBE_VALIDATE_VERSION", "1.31")
DEFAULT_NAMESPACE = "jhub"
KUBELET_AGENT = "standin-kubelet"

#: (group/version, plural) -> (kind, namespaced) served by the stand-in.
RESOURCES: dict[tuple[str, str], tuple[str, bool]] = {
    ("v1", "pods"): ("Pod", True),
    ("v1", "events"): ("Event", True),
    ("v1", "persistentvolumeclaims"): ("PersistentVolumeClaim", True),
    ("v1", "persistentvolumes"): ("PersistentVolume", False),
    ("v1", "secrets"): ("Secret", True),
    ("v1", "services"): ("Service", True),
    ("v1", "configmaps"): ("ConfigMap", True),
    ("v1", "serviceaccounts"): ("ServiceAccount", True),
    ("v1", "namespaces"): ("Namespace", False),
    ("v1", "endpoints"): ("Endpoints", True),
    ("networking.k8s.io/v1", "ingresses"): ("Ingress", True),
    ("networking.k8s.io/v1", "networkpolicies"): ("NetworkPolicy", True),
}


# --------------------------------------------------------------------------------------
# Manifest validation (kubernetes-validate, strict)
# --------------------------------------------------------------------------------------


def _schema_version(desired: str) -> str:
    """The newest schema set shipped by kubernetes-validate not newer than ``desired``."""
    from packaging.version import Version

    all_versions = _kv_utils().all_versions

    wanted = Version(desired.lstrip("v"))
    wanted = Version(f"{wanted.major}.{wanted.minor}.999")
    shipped = [v for v in all_versions() if Version(v) <= wanted]
    if not shipped:
        raise ValueError(f"kubernetes-validate ships no schemas for Kubernetes <= {desired}")
    return str(shipped[-1])


def _kv_utils() -> Any:
    """``kubernetes_validate.utils`` (imported on first use; it ships no type information)."""
    return importlib.import_module("kubernetes_validate.utils")


@functools.lru_cache(maxsize=4)
def _definitions(version: str) -> Any:
    """The shared ``_definitions.json`` of a schema set, as a referencing resource."""
    from referencing import Resource

    schema_contents = _kv_utils().schema_contents
    path = f"kubernetes-json-schema/v{version}-local-strict/_definitions.json"
    return Resource.from_contents(schema_contents(path, version))


@functools.lru_cache(maxsize=64)
def _validator(version: str, kind: str, api_version: str) -> Any:
    """A cached Draft 2020-12 validator for ``kind``/``api_version`` (None: no schema)."""
    from referencing import Registry, Resource

    jsonschema = importlib.import_module("jsonschema")  # untyped without types-jsonschema
    schema_contents = _kv_utils().schema_contents

    schema_dir = f"kubernetes-json-schema/v{version}-local-strict"
    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)
    try:
        schema = schema_contents(f"{schema_dir}/{kind.lower()}-{group_version}.json", version)
    except FileNotFoundError:
        return None
    registry: Registry[Any] = _definitions(version) @ (Resource.from_contents(schema) @ Registry())
    return jsonschema.Draft202012Validator(schema, registry=registry)


def validate_manifest(obj: Mapping[str, Any], version: str = KUBE_VERSION) -> list[str]:
    """Every error of ``obj`` against the strict OpenAPI schema of Kubernetes ``version``.

    Strict means unknown fields are errors as well as wrong types and missing required
    fields. Each error reads ``<json path>: <message>``; an empty list means valid.
    """
    kind, api_version = obj.get("kind"), obj.get("apiVersion")
    if not isinstance(kind, str) or not isinstance(api_version, str):
        return ["$: kind and apiVersion are required"]
    validator = _validator(_schema_version(version), kind, api_version)
    if validator is None:
        return [f"$: no schema for {kind} {api_version} in Kubernetes {version}"]
    errors = sorted(validator.iter_errors(dict(obj)), key=lambda e: list(e.absolute_path))
    return [f"{e.json_path}: {e.message}" for e in errors]


# --------------------------------------------------------------------------------------
# Selectors
# --------------------------------------------------------------------------------------

_SET_REQ = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")


def _split_selector(selector: str) -> list[str]:
    """Split on commas that are not inside ``( )``."""
    parts, depth, current = [], 0, ""
    for char in selector:
        depth += char == "("
        depth -= char == ")"
        if char == "," and depth == 0:
            parts.append(current)
            current = ""
        else:
            current += char
    parts.append(current)
    return [p.strip() for p in parts if p.strip()]


def label_selector_matches(labels: Mapping[str, str], selector: str) -> bool:
    """Label selector semantics: ``=``, ``==``, ``!=``, ``in``, ``notin``, ``k``, ``!k``."""
    for req in _split_selector(selector):
        if m := _SET_REQ.match(req):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            ok = labels.get(key) in values if op == "in" else labels.get(key) not in values
        elif "!=" in req:
            key, value = (s.strip() for s in req.split("!=", 1))
            ok = labels.get(key) != value
        elif "=" in req:
            key, value = (s.strip() for s in re.split(r"==?", req, maxsplit=1))
            ok = labels.get(key) == value
        elif req.startswith("!"):
            ok = req[1:].strip() not in labels
        else:
            ok = req in labels
        if not ok:
            return False
    return True


def field_selector_matches(obj: Mapping[str, Any], selector: str) -> bool:
    """Field selectors as dotted paths compared as strings (``=``, ``==``, ``!=``)."""
    for req in _split_selector(selector):
        negate = "!=" in req
        path, value = (s.strip() for s in re.split(r"!=|==?", req, maxsplit=1))
        current: Any = obj
        for part in path.split("."):
            current = current.get(part) if isinstance(current, Mapping) else None
        actual = "" if current is None else str(current)
        if (actual == value) == negate:
            return False
    return True


# --------------------------------------------------------------------------------------
# Records shared by the server process and its clients (tests, demo)
# --------------------------------------------------------------------------------------


@dataclass
class CreatedObject:
    """One create request the stand-in received: the manifest as sent and its schema errors."""

    kind: str
    api_version: str
    namespace: str | None
    name: str
    manifest: dict[str, Any]
    errors: list[str]
    status: int
    actor: str = "client"

    @property
    def key(self) -> str:
        return f"{self.kind} {self.namespace}/{self.name}" if self.namespace else self.kind

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> CreatedObject:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__})


def _now() -> str:
    return datetime.datetime.now(tz=datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _qos_class(pod: Mapping[str, Any]) -> str:
    containers = pod.get("spec", {}).get("containers", []) or []
    resources = [c.get("resources") or {} for c in containers]
    if not any(r.get("requests") or r.get("limits") for r in resources):
        return "BestEffort"
    for r in resources:
        limits, requests = r.get("limits") or {}, r.get("requests") or {}
        for res in ("cpu", "memory"):
            if res not in limits or requests.get(res, limits[res]) != limits[res]:
                return "Burstable"
    return "Guaranteed"
