"""Spawning: group-aware profiles, resources and POSIX security for KubeSpawner.

The pure parts (profile validation and resolution, resource shorthands, security
contexts, the assembled pod) are plain functions over data; the KubeSpawner subclass
glues them to traits.
"""

from .errors import SpawnRequestError
from .pod import PodSettings, build_pod
from .profiles import Profile, validate_profile_list
from .resolution import (
    Resolution,
    default_profile,
    profile_list_for_form,
    resolve_request,
    visible_profiles,
)
from .resources import GpuScheduling, ResourceTotals, summarise_resources
from .security import RunAs, SecuritySettings, run_as
from .spawner import IRISSpawner

__all__ = [
    "GpuScheduling",
    "IRISSpawner",
    "PodSettings",
    "Profile",
    "Resolution",
    "ResourceTotals",
    "RunAs",
    "SecuritySettings",
    "SpawnRequestError",
    "build_pod",
    "default_profile",
    "profile_list_for_form",
    "resolve_request",
    "run_as",
    "summarise_resources",
    "validate_profile_list",
    "visible_profiles",
]
