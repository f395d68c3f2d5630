"""CPU, memory and GPU requests: the ``resources`` shorthand and its KubeSpawner settings.

Profiles and choices may say what a server gets in one small mapping instead of several
``kubespawner_override`` keys::

    resources:
      cpu: 2                       # cores; "500m" also works
      memory: 8G                   # bytes with K/M/G/T (or Ki/Mi/Gi/Ti): all powers of 1024
      gpu: 1                       # whole devices; 0 removes a GPU the profile gave
      gpu_resource: nvidia.com/gpu # the extended resource name, this is the default
      cpu_guarantee: 1             # optional, default: the same as cpu
      memory_guarantee: 4G         # optional, default: the same as memory

:func:`expand_resources` turns that into ``cpu_limit``/``cpu_guarantee``,
``mem_limit``/``mem_guarantee``, ``extra_resource_limits``/``extra_resource_guarantees``
entries for the GPU (merged with every other extended resource the profile sets, never
replacing one), a GPU node selector and a GPU toleration. Memory suffixes follow
JupyterHub's ``ByteSpecification`` (``8G`` is 8 GiB), not Kubernetes' decimal ``G``.

:func:`summarise_resources` reads the same settings back into :class:`ResourceTotals`,
which add up across servers for group quotas.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Any

__all__ = [
    "DEFAULT_GPU_NODE_SELECTOR",
    "DEFAULT_GPU_RESOURCE",
    "DEFAULT_GPU_TOLERATION",
    "MAX_CPU",
    "MAX_GPU",
    "MAX_MEMORY",
    "RESOURCE_KEYS",
    "GpuScheduling",
    "ResourceRequest",
    "ResourceSettings",
    "ResourceTotals",
    "check_resource_overrides",
    "expand_resources",
    "parse_cpu",
    "parse_memory",
    "parse_resources",
    "summarise_resources",
]

DEFAULT_GPU_RESOURCE = "nvidia.com/gpu"
"""Extended resource requested for ``gpu`` unless ``gpu_resource`` names another."""

DEFAULT_GPU_NODE_SELECTOR: Mapping[str, str] = {"nvidia.com/gpu.present": "true"}
"""Node label set by NVIDIA's GPU feature discovery on nodes that have GPUs."""

DEFAULT_GPU_TOLERATION: Mapping[str, str] = {
    "key": "nvidia.com/gpu",
    "operator": "Exists",
    "effect": "NoSchedule",
}
"""Toleration for the taint GPU node pools usually carry."""

MAX_CPU = 1024.0
MAX_MEMORY = 64 * 1024**4
MAX_GPU = 64
"""Upper bounds: anything larger is a typo or an attack, never a real request."""

RESOURCE_KEYS = ("cpu", "cpu_guarantee", "memory", "memory_guarantee", "gpu", "gpu_resource")
"""The keys a ``resources`` mapping may have."""

_UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3, "T": 1024**4}
_MEMORY_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)\s*([KMGT]?)i?")
_CPU_RE = re.compile(r"([0-9]+(?:\.[0-9]+)?)(m?)")
RESOURCE_NAME_RE = re.compile(r"[a-z0-9]([a-z0-9.-]*[a-z0-9])?/[A-Za-z0-9]([A-Za-z0-9._-]*)")
"""An extended resource name such as ``nvidia.com/gpu``."""


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"{what} must be a number, not {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{what} must be a positive number, not {value!r}")
    return float(value)


def parse_cpu(value: object, what: str = "cpu") -> float:
    """Cores as a float from ``2``, ``0.5``, ``"2"`` or ``"500m"``; ``ValueError`` explains."""
    if isinstance(value, str):
        match = _CPU_RE.fullmatch(value.strip()) if len(value) < 32 else None
        if match is None:
            raise ValueError(f"{what} {value[:32]!r} is not a number of cores like 2 or '500m'")
        cores = float(match[1]) / (1000 if match[2] else 1)
    else:
        cores = _number(value, what)
    if cores > MAX_CPU:
        raise ValueError(f"{what} {cores:g} is more than the {MAX_CPU:g} cores anyone can have")
    return cores


def parse_memory(value: object, what: str = "memory") -> int:
    """Bytes from ``8589934592``, ``"8G"``, ``"8Gi"``, ``"512M"`` or ``"1.5G"`` (1024-based)."""
    if isinstance(value, str):
        match = _MEMORY_RE.fullmatch(value.strip()) if len(value) < 32 else None
        if match is None or (value.strip().endswith("i") and not match[2]):
            raise ValueError(
                f"{what} {value[:32]!r} is not a size like '512M', '8G' or '8Gi' "
                "(K, M, G and T are powers of 1024)"
            )
        size = float(match[1]) * _UNITS[match[2]]
    else:
        size = _number(value, what)
    if size > MAX_MEMORY:
        raise ValueError(f"{what} {value!r} is more than the 64T anyone can have")
    return int(size)


def _gpu_count(value: object, what: str = "gpu") -> int:
    if isinstance(value, str) and value.isdigit() and len(value) < 8:
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{what} must be a whole number of devices (0 or more), not {value!r}")
    if value > MAX_GPU:
        raise ValueError(f"{what} {value} is more than the {MAX_GPU} devices anyone can have")
    return value


@dataclass(frozen=True)
class ResourceRequest:
    """A validated ``resources`` mapping; ``None`` means "not said here".

    Attributes:
        cpu: Core limit (and guarantee, unless ``cpu_guarantee`` is set).
        cpu_guarantee: Cores reserved for the server.
        memory: Memory limit in bytes (and guarantee, unless ``memory_guarantee`` is set).
        memory_guarantee: Bytes reserved for the server.
        gpu: Number of GPU devices; ``0`` means none.
        gpu_resource: Extended resource name of the GPUs, e.g. ``"amd.com/gpu"``.
    """

    cpu: float | None = None
    cpu_guarantee: float | None = None
    memory: int | None = None
    memory_guarantee: int | None = None
    gpu: int | None = None
    gpu_resource: str | None = None

    def merged(self, later: ResourceRequest) -> ResourceRequest:
        """This request with every field ``later`` says replacing this one's."""
        said = {f.name: getattr(later, f.name) for f in fields(later)}
        return replace(self, **{k: v for k, v in said.items() if v is not None})

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))


def parse_resources(spec: object) -> ResourceRequest:
    """Validate a ``resources`` mapping (see the module docs) into a :class:`ResourceRequest`.

    Raises:
        ValueError: For unknown keys, malformed or negative values, values beyond
            :data:`MAX_CPU`/:data:`MAX_MEMORY`/:data:`MAX_GPU`, or a guarantee above its limit.
    """
    if not isinstance(spec, Mapping):
        raise ValueError(f"resources must be a mapping, not {type(spec).__name__}")
    unknown = sorted(map(str, set(spec) - set(RESOURCE_KEYS)))
    if unknown:
        raise ValueError(
            f"unknown resources key(s) {', '.join(map(repr, unknown))}; "
            f"use {', '.join(RESOURCE_KEYS)}"
        )
    got = {k: v for k, v in spec.items() if v is not None}
    name = got.get("gpu_resource")
    if name is not None and (not isinstance(name, str) or not RESOURCE_NAME_RE.fullmatch(name)):
        raise ValueError(
            f"gpu_resource {name!r} is not an extended resource like 'nvidia.com/gpu'"
        )
    request = ResourceRequest(
        cpu=parse_cpu(got["cpu"]) if "cpu" in got else None,
        cpu_guarantee=parse_cpu(got["cpu_guarantee"], "cpu_guarantee")
        if "cpu_guarantee" in got
        else None,
        memory=parse_memory(got["memory"]) if "memory" in got else None,
        memory_guarantee=parse_memory(got["memory_guarantee"], "memory_guarantee")
        if "memory_guarantee" in got
        else None,
        gpu=_gpu_count(got["gpu"]) if "gpu" in got else None,
        gpu_resource=name,
    )
    _check_guarantees(request.cpu_guarantee, request.cpu, "cpu")
    _check_guarantees(request.memory_guarantee, request.memory, "memory")
    return request


def _check_guarantees(guarantee: float | None, limit: float | None, what: str) -> None:
    if guarantee is not None and limit is not None and guarantee > limit:
        raise ValueError(f"{what}_guarantee {guarantee:g} is above the {what} limit {limit:g}")


@dataclass(frozen=True)
class GpuScheduling:
    """Where GPU servers go: the site's defaults, configurable on the spawner.

    Attributes:
        resource: Extended resource requested when ``resources`` names none.
        node_selector: Labels a GPU server's node must have; labels the profile's own
            ``node_selector`` sets win.
        toleration: Toleration a GPU server gets unless the profile's ``tolerations``
            already have one with the same key; ``None`` for none.
    """

    resource: str = DEFAULT_GPU_RESOURCE
    node_selector: Mapping[str, str] = field(
        default_factory=lambda: dict(DEFAULT_GPU_NODE_SELECTOR)
    )
    toleration: Mapping[str, str] | None = field(
        default_factory=lambda: dict(DEFAULT_GPU_TOLERATION)
    )


@dataclass(frozen=True)
class ResourceSettings:
    """What a :class:`ResourceRequest` becomes for KubeSpawner.

    Attributes:
        overrides: The profile's overrides with the resource traits merged in; apply them
            like any ``kubespawner_override``.
        tolerations: Tolerations to *append* to the spawner's own (z2jh sets user-node
            tolerations there, which an override would replace).
    """

    overrides: Mapping[str, Any]
    tolerations: tuple[Mapping[str, str], ...] = ()


def _conflict(key: str, where: str) -> ValueError:
    return ValueError(
        f"{where} is set both by kubespawner_override and by the resources shorthand; "
        f"keep one ({key})"
    )


def expand_resources(
    request: ResourceRequest,
    overrides: Mapping[str, Any],
    gpu: GpuScheduling | None = None,
) -> ResourceSettings:
    """Merge the KubeSpawner settings for ``request`` into ``overrides`` (not modified).

    Args:
        request: The merged shorthand of a profile and its chosen options.
        overrides: The merged ``kubespawner_override`` of the same.
        gpu: The site's GPU defaults (:class:`GpuScheduling` when not given).

    Raises:
        ValueError: If the overrides already set a trait the shorthand sets (``cpu_limit``
            with ``cpu``, or the same extended resource with ``gpu``): an admin mistake.
    """
    gpu = gpu or GpuScheduling()
    result = dict(overrides)
    traits: dict[str, Any] = {}
    if request.cpu is not None:
        traits["cpu_limit"] = request.cpu
        traits["cpu_guarantee"] = (
            request.cpu if request.cpu_guarantee is None else request.cpu_guarantee
        )
    elif request.cpu_guarantee is not None:
        traits["cpu_guarantee"] = request.cpu_guarantee
    if request.memory is not None:
        traits["mem_limit"] = request.memory
        traits["mem_guarantee"] = (
            request.memory if request.memory_guarantee is None else request.memory_guarantee
        )
    elif request.memory_guarantee is not None:
        traits["mem_guarantee"] = request.memory_guarantee
    for key, value in traits.items():
        if result.get(key) is not None:
            raise _conflict(key, key)
        result[key] = value
    tolerations: tuple[Mapping[str, str], ...] = ()
    if request.gpu:
        name = request.gpu_resource or gpu.resource
        for key in ("extra_resource_limits", "extra_resource_guarantees"):
            existing = dict(result.get(key) or {})
            if existing.get(name) is not None:
                raise _conflict(key, f"{key}[{name!r}]")
            result[key] = {**existing, name: str(request.gpu)}
        result["node_selector"] = {**gpu.node_selector, **(result.get("node_selector") or {})}
        own = result.get("tolerations") or ()
        if gpu.toleration and not any(
            isinstance(t, Mapping) and t.get("key") == gpu.toleration.get("key") for t in own
        ):
            tolerations = (dict(gpu.toleration),)
    return ResourceSettings(result, tolerations)


def check_resource_overrides(overrides: Mapping[str, Any]) -> dict[str, Any]:
    """Validate and normalise the resource traits in ``overrides``; other keys pass through.

    ``cpu_limit``/``cpu_guarantee`` become floats, ``mem_limit``/``mem_guarantee`` bytes and
    ``extra_resource_*`` quantities of known GPU resources whole numbers as strings. Values
    that are callables (allowed in ``kubespawner_override``) are left alone.

    Raises:
        ValueError: For malformed, negative or absurd values, or a guarantee above its limit.
    """
    result = dict(overrides)
    for key, parse in (("cpu_limit", parse_cpu), ("cpu_guarantee", parse_cpu)):
        if result.get(key) is not None and not callable(result[key]):
            result[key] = parse(result[key], key)
    for key in ("mem_limit", "mem_guarantee"):
        if result.get(key) is not None and not callable(result[key]):
            result[key] = parse_memory(result[key], key)
    for key in ("extra_resource_limits", "extra_resource_guarantees"):
        value = result.get(key)
        if isinstance(value, Mapping):
            result[key] = {
                name: str(_gpu_count(q, f"{key}[{name!r}]")) if _is_gpu(name) and q else q
                for name, q in value.items()
            }
    for what, low, high in (
        ("cpu", "cpu_guarantee", "cpu_limit"),
        ("mem", "mem_guarantee", "mem_limit"),
    ):
        if all(isinstance(result.get(k), (int, float)) for k in (low, high)):
            _check_guarantees(result[low], result[high], what)
    return result


def _is_gpu(name: object) -> bool:
    return isinstance(name, str) and name.endswith("/gpu")


@dataclass(frozen=True)
class ResourceTotals:
    """Resources one or more servers may use at most, for quotas.

    Attributes:
        cpu: Cores (the limits, or the guarantees where no limit is set).
        memory: Bytes, likewise.
        gpu: GPU devices of every ``*/gpu`` extended resource.
        servers: How many servers these totals cover.
    """

    cpu: float = 0.0
    memory: int = 0
    gpu: int = 0
    servers: int = 1

    def __add__(self, other: ResourceTotals) -> ResourceTotals:
        return ResourceTotals(
            self.cpu + other.cpu,
            self.memory + other.memory,
            self.gpu + other.gpu,
            self.servers + other.servers,
        )

    @classmethod
    def total(cls, items: Iterable[ResourceTotals]) -> ResourceTotals:
        """The sum of ``items`` (zero servers when empty)."""
        result = cls(servers=0)
        for item in items:
            result += item
        return result


def summarise_resources(values: Mapping[str, Any]) -> ResourceTotals:
    """The totals of one server from its KubeSpawner settings.

    Args:
        values: ``cpu_limit``, ``cpu_guarantee``, ``mem_limit``, ``mem_guarantee`` and
            ``extra_resource_limits``/``extra_resource_guarantees`` as overrides or as the
            spawner's final trait values (missing or ``None`` count as zero).

    Raises:
        ValueError: If a value is malformed (see :func:`check_resource_overrides`).
    """
    checked = check_resource_overrides(values)

    def first(*keys: str) -> Any:
        return next((checked[k] for k in keys if isinstance(checked.get(k), (int, float))), 0)

    gpus = 0
    for key in ("extra_resource_limits", "extra_resource_guarantees"):
        quantities = checked.get(key)
        if isinstance(quantities, Mapping):
            gpus = max(gpus, sum(int(q) for n, q in quantities.items() if _is_gpu(n) and q))
    return ResourceTotals(
        cpu=float(first("cpu_limit", "cpu_guarantee")),
        memory=int(first("mem_limit", "mem_guarantee")),
        gpu=gpus,
    )
