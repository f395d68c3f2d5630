"""Start-up checks of ``IRISSpawner``'s options, without building a spawner.

JupyterHub builds a spawner only when a server starts, and building a KubeSpawner reads
the Kubernetes configuration and makes API clients. :func:`check_spawner_config` checks
the options of ``c.IRISSpawner`` (and of the sections it inherits, such as the
``c.KubeSpawner.profile_list`` that Zero to JupyterHub writes) with the same pure
functions the spawner uses, so :func:`iris_jupyterhub.startup.check_config` can refuse a
mistake when the hub starts.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from traitlets.config.loader import LazyConfigValue

from ..groups import parse_group_rules
from .profiles import validate_profile_list
from .quotas import validate_group_quotas
from .resources import RESOURCE_NAME_RE, GpuScheduling

__all__ = ["SPAWNER_SECTIONS", "check_spawner_config", "validate_gpu_option"]

SPAWNER_SECTIONS = ("IRISSpawner", "KubeSpawner", "Spawner")
"""Configuration sections that set ``IRISSpawner``'s options, the most specific first."""

_TOLERATION_KEYS = ("key", "operator", "value", "effect", "tolerationSeconds")
_OPERATORS = ("Exists", "Equal")
_EFFECTS = ("NoSchedule", "PreferNoSchedule", "NoExecute")


def _strings(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise ValueError(f"{what} must map label names to label values (text)")
    return dict(value)


def _toleration(value: object) -> dict[str, Any] | None:
    if not isinstance(value, Mapping):
        raise ValueError("must be a toleration (a mapping), or {} for none")
    if not value:
        return None
    unknown = sorted(map(str, set(value) - set(_TOLERATION_KEYS)))
    if unknown:
        raise ValueError(f"unknown key(s) {', '.join(map(repr, unknown))}")
    if value.get("operator", "Equal") not in _OPERATORS:
        raise ValueError(f"operator must be one of {', '.join(_OPERATORS)}")
    if value.get("effect") not in (None, "", *_EFFECTS):
        raise ValueError(f"effect must be one of {', '.join(_EFFECTS)}")
    seconds = value.get("tolerationSeconds")
    if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, int)):
        raise ValueError("tolerationSeconds must be a whole number")
    if not all(isinstance(value.get(k, ""), str) for k in ("key", "value")):
        raise ValueError("key and value must be text")
    return dict(value)


def _resource(value: object) -> None:
    if not isinstance(value, str) or not RESOURCE_NAME_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not an extended resource like 'nvidia.com/gpu'")


def _node_selector(value: object) -> None:
    _strings(value, "the node selector")


_GPU_OPTIONS = {
    "gpu_resource": _resource,
    "gpu_node_selector": _node_selector,
    "gpu_toleration": _toleration,
}


def validate_gpu_option(name: str, value: object) -> Any:
    """Check ``IRISSpawner.<name>``, one of the GPU options; return it unchanged.

    Raises:
        ValueError: Naming ``IRISSpawner.<name>``.
    """
    try:
        _GPU_OPTIONS[name](value)
    except ValueError as e:
        raise ValueError(f"IRISSpawner.{name}: {e}") from e
    return value


def _quotas(value: object) -> None:
    if not isinstance(value, Mapping):
        raise ValueError("must map groups to their limits")
    validate_group_quotas(value)


def _effective(config: Any, sections: Sequence[str], name: str, default: Any) -> tuple[bool, Any]:
    """``(set, value)`` of option ``name`` as traitlets would load it into the spawner:
    sections from the least to the most specific, ``.append()``-style values applied."""
    found, value = False, default
    for section in reversed(sections):
        values = config.get(section) if isinstance(config, Mapping) else None
        if isinstance(values, Mapping) and name in values:
            found, given = True, values[name]
            value = given.get_value(value) if isinstance(given, LazyConfigValue) else given
    return found, value


def check_spawner_config(config: Any, sections: Sequence[str] = SPAWNER_SECTIONS) -> None:
    """Check ``IRISSpawner``'s options in ``config`` as the spawner would when built.

    Args:
        config: The hub's configuration (a traitlets ``Config``).
        sections: The sections that configure the spawner class, the most specific first
            (a subclass of ``IRISSpawner`` adds its own name in front).

    A callable ``profile_list`` is checked at every use instead, as the spawner does.

    Raises:
        ValueError: Naming ``IRISSpawner.<option>``: ``profile_list``, ``group_quotas``,
            ``gpu_resource``, ``gpu_node_selector``, ``gpu_toleration`` or
            ``charge_group_preference``.
    """
    default = GpuScheduling()
    gpu: dict[str, Any] = {
        "gpu_resource": default.resource,
        "gpu_node_selector": dict(default.node_selector),
        "gpu_toleration": dict(default.toleration or {}),
    }
    for name, fallback in list(gpu.items()):
        found, value = _effective(config, sections, name, fallback)
        if found:
            gpu[name] = validate_gpu_option(name, value)
    found, quotas = _effective(config, sections, "group_quotas", {})
    if found:
        try:
            _quotas(quotas)
        except ValueError as e:
            raise ValueError(f"IRISSpawner.group_quotas: {e}") from e
    found, preference = _effective(config, sections, "charge_group_preference", [])
    if found:
        if isinstance(preference, (str, bytes)) or not isinstance(preference, Sequence):
            raise ValueError("IRISSpawner.charge_group_preference: must be a list of group rules")
        parse_group_rules(preference, "IRISSpawner.charge_group_preference")
    found, profiles = _effective(config, sections, "profile_list", [])
    if found and not callable(profiles):
        scheduling = GpuScheduling(
            resource=gpu["gpu_resource"],
            node_selector=dict(gpu["gpu_node_selector"]),
            toleration=dict(gpu["gpu_toleration"]) or None,
        )
        try:
            validate_profile_list(profiles, scheduling)
        except ValueError as e:
            raise ValueError(f"IRISSpawner.profile_list: {e}") from e
