"""The security context and environment of a researcher's pod, from their POSIX identity.

The authenticator stores each user's POSIX account in ``auth_state["posix"]``::

    {"uid": 2000001, "gid": 2000001, "username": "alice",
     "groups": [{"name": "alice", "gid": 2000001}, {"name": "lsst", "gid": 3000002}]}

:func:`run_as` checks that, and the group the researcher chose to work as;
:func:`security_settings` turns the result into the pod and container ``securityContext``
(as the Kubernetes API spells them) and the environment the Jupyter docker-stacks images
expect (:func:`iris_jupyterhub.spawner.pod.build_pod` calls both and assembles the whole
pod):

* the container runs as the user's uid, never as root, with no privilege escalation, every
  capability dropped and the runtime's default seccomp profile;
* the chosen group (default: the personal group) is the primary group and, unless the
  pod mounts shares, ``fsGroup``, so new files and mounted volumes belong to it; every
  group of the user is a supplementary group, so shared directories of all their groups
  stay readable;
* ``NB_USER``, ``NB_UID``, ``NB_GID`` and ``HOME`` (``/home/<username>``, or the home
  share's mount path) are set. Images started directly as an arbitrary uid (no root start
  script) need ``HOME`` to be writable by that uid: mount the home volume there
  (docker-stacks images then work unchanged).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..posix.names import is_valid_name
from .errors import SpawnRequestError, bad_request, forbidden

__all__ = ["MIN_ID", "RunAs", "SecuritySettings", "run_as", "security_settings"]

MIN_ID = 1000
"""Lowest uid/gid a pod may run as: system ids (root, daemons) are never used."""

MAX_ID = 2**31 - 1
"""Highest uid/gid Kubernetes accepts in a security context."""

_NO_IDENTITY = (
    "Your account has no POSIX identity on this hub yet, so a server cannot be started. "
    "Please log out and log in again; if this keeps happening, contact the hub administrators."
)


@dataclass(frozen=True)
class SecuritySettings:
    """How a pod runs, shaped like the Kubernetes API objects it goes into.

    Attributes:
        pod_security_context: For ``spec.securityContext`` (``runAsUser``, ``runAsGroup``,
            ``fsGroup``, ``supplementalGroups``, ``runAsNonRoot``, ``seccompProfile``).
        container_security_context: For the notebook container's ``securityContext``.
        environment: Variables for the notebook container (``NB_USER``, ``NB_UID``,
            ``NB_GID``, ``HOME``).
        group: The POSIX group name the server runs as.
        notice: A sentence for the researcher when a saved group was replaced, else ``None``.
    """

    pod_security_context: Mapping[str, Any]
    container_security_context: Mapping[str, Any]
    environment: Mapping[str, str]
    group: str
    notice: str | None = None


def _posix_id(value: object) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_ID <= value <= MAX_ID:
        return None
    return value


def _invalid(detail: str) -> SpawnRequestError:
    return SpawnRequestError(500, _NO_IDENTITY, f"auth_state['posix'] {detail}")


def _groups(posix: Mapping[str, Any]) -> dict[str, int]:
    """The user's groups by name, checked; raises for anything malformed."""
    groups: dict[str, int] = {}
    listed = posix.get("groups")
    if not isinstance(listed, (list, tuple)):
        raise _invalid("has no 'groups' list")
    for entry in listed:
        name = entry.get("name") if isinstance(entry, Mapping) else None
        gid = _posix_id(entry.get("gid")) if isinstance(entry, Mapping) else None
        if not isinstance(name, str) or not is_valid_name(name) or gid is None:
            raise _invalid(f"has a malformed group entry {str(entry)[:80]!r}")
        groups[name] = gid
    return groups


@dataclass(frozen=True)
class RunAs:
    """Who a server runs as: the checked POSIX identity and the group chosen for it.

    Attributes:
        uid: The user's uid.
        gid: The gid of the group the server runs as (primary group).
        username: The user's POSIX name.
        group: The name of that group.
        supplemental_gids: Every group of the user, personal group included, sorted.
        notice: A sentence for the researcher when a saved group was replaced, else ``None``.
    """

    uid: int
    gid: int
    username: str
    group: str
    supplemental_gids: tuple[int, ...]
    notice: str | None = None


def run_as(
    posix: Mapping[str, Any] | None,
    chosen_group: str | None,
    *,
    stale_fallback: bool = False,
) -> RunAs:
    """Check ``posix`` and the group choice; the identity a server of this user runs as.

    Args:
        posix: ``auth_state["posix"]`` (see the module docs).
        chosen_group: Name of the POSIX group to run as (``user_options["group"]``), or
            ``None``/``""`` for the personal group.
        stale_fallback: The group comes from options saved in an earlier session: if the
            user is no longer in it, use the personal group and say so in ``notice``
            instead of refusing.

    Raises:
        SpawnRequestError: 403 if the user is not in ``chosen_group``; 400 if it is not a
            string; 500 with a "log in again" message if ``posix`` is missing or malformed.
    """
    if not isinstance(posix, Mapping):
        raise _invalid("is missing")
    uid, gid, username = (
        _posix_id(posix.get("uid")),
        _posix_id(posix.get("gid")),
        posix.get("username"),
    )
    if uid is None or gid is None:
        raise _invalid(f"has no valid uid/gid (must be {MIN_ID}-{MAX_ID})")
    if not isinstance(username, str) or not is_valid_name(username):
        raise _invalid("has no valid username")
    groups = _groups(posix)
    personal = next((name for name, g in groups.items() if g == gid), username)
    supplemental = tuple(sorted({gid, *groups.values()}))
    if chosen_group is not None and not isinstance(chosen_group, str):
        raise bad_request("The group must be given as a group name.")
    if not chosen_group:
        return RunAs(uid, gid, username, personal, supplemental)
    if chosen_group in groups:
        return RunAs(uid, groups[chosen_group], username, chosen_group, supplemental)
    if stale_fallback:
        notice = (
            f"You are no longer in the group {chosen_group[:64]!r}, so your server runs "
            f"as your personal group {personal!r}."
        )
        return RunAs(uid, gid, username, personal, supplemental, notice)
    raise forbidden(
        f"You are not a member of the group {chosen_group[:64]!r}. "
        f"Choose one of: {', '.join(sorted(groups)) or personal}."
    )


def security_settings(
    run: RunAs, *, fs_group: bool = True, home: str | None = None
) -> SecuritySettings:
    """The security contexts and environment of a server running as ``run``.

    Args:
        run: From :func:`run_as`.
        fs_group: Set ``fsGroup`` to the run group (off for pods that mount shares: see
            :func:`iris_jupyterhub.spawner.pod.build_pod`).
        home: ``HOME``; ``/home/<username>`` by default.
    """
    pod_context: dict[str, Any] = {
        "runAsUser": run.uid,
        "runAsGroup": run.gid,
        "fsGroup": run.gid,
        "supplementalGroups": list(run.supplemental_gids),
        "runAsNonRoot": True,
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    if not fs_group:
        del pod_context["fsGroup"]
    container_context = {
        "runAsUser": run.uid,
        "runAsGroup": run.gid,
        "runAsNonRoot": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    environment = {
        "NB_USER": run.username,
        "NB_UID": str(run.uid),
        "NB_GID": str(run.gid),
        "HOME": home or f"/home/{run.username}",
    }
    return SecuritySettings(pod_context, container_context, environment, run.group, run.notice)
