"""Spawning: group-aware profiles, resources and POSIX security for KubeSpawner.

The pure parts (profile validation and resolution, resource shorthands, security
contexts) are plain functions over data; the KubeSpawner subclass glues them to traits.
"""

from .errors import SpawnRequestError
from .profiles import Profile, validate_profile_list
from .resolution import (
    Resolution,
    default_profile,
    profile_list_for_form,
    resolve_request,
    visible_profiles,
)
from .resources import GpuScheduling, ResourceTotals, summarise_resources
from .security import SecuritySettings, pod_security
from .spawner import IRISSpawner

__all__ = [
    "GpuScheduling",
    "IRISSpawner",
    "Profile",
    "Resolution",
    "ResourceTotals",
    "SecuritySettings",
    "SpawnRequestError",
    "default_profile",
    "pod_security",
    "profile_list_for_form",
    "resolve_request",
    "summarise_resources",
    "validate_profile_list",
    "visible_profiles",
]
