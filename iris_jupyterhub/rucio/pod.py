"""What a notebook pod gets for Rucio: environment, and the in-memory token directory.

:func:`rucio_pod` is pure: from the configured instances, the user's ``auth_state`` and
the directory it builds a :class:`RucioPod`; ``IRISSpawner`` applies it to the pod of a
user who gets at least one instance (and whose profile does not say ``rucio: false``).
No token is ever in the environment or the pod spec: the notebook-side extension writes
the token files into the directory at run time.

Environment (see the project's contract)::

    IRIS_RUCIO_DIR         /run/iris-rucio
    IRIS_RUCIO_INSTANCES   [{"name", "display_name", "rucio_host", "auth_host", "vo",
                             "account", "ca_cert", "default"}]   (JSON, non-secret)
    BEARER_TOKEN_FILE      $IRIS_RUCIO_DIR/<default>.token
    RUCIO_CONFIG           $IRIS_RUCIO_DIR/rucio.cfg
    RUCIO_OIDC_AUTH        file
    RUCIO_OIDC_FILE_NAME   $BEARER_TOKEN_FILE   (rucio-jupyterlab)
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..groups import memberships_from_auth_state
from .config import RucioInstance, account_for, instances_for

__all__ = ["VOLUME_NAME", "RucioPod", "instances_env", "rucio_pod", "rucio_traits"]

VOLUME_NAME = "iris-rucio"


@dataclass(frozen=True)
class RucioPod:
    """Environment, volumes and mounts for Rucio in one pod (Kubernetes API shapes)."""

    environment: dict[str, str]
    volumes: list[dict[str, Any]] = field(default_factory=list)
    volume_mounts: list[dict[str, Any]] = field(default_factory=list)


def instances_env(
    instances: Sequence[RucioInstance], auth_state: Mapping[str, Any], hub_username: str
) -> list[dict[str, Any]]:
    """``IRIS_RUCIO_INSTANCES`` as data: the first instance is the default."""
    return [
        {
            "name": i.name,
            "display_name": i.display_name,
            "rucio_host": i.rucio_host,
            "auth_host": i.auth_host,
            "vo": i.vo,
            "account": account_for(i, auth_state, hub_username),
            "ca_cert": i.ca_cert,
            "default": index == 0,
        }
        for index, i in enumerate(instances)
    ]


def rucio_pod(
    instances: Sequence[RucioInstance],
    auth_state: Mapping[str, Any],
    hub_username: str,
    directory: str,
    *,
    volume: bool = True,
) -> RucioPod | None:
    """The Rucio part of a user's pod, or ``None`` when the user gets no instance.

    Args:
        instances: The configured instances (configuration order).
        auth_state: The user's ``auth_state`` (groups, POSIX identity).
        hub_username: The hub username (for account templates).
        directory: ``IRIS_RUCIO_DIR``.
        volume: Mount an in-memory ``emptyDir`` there.
    """
    offered = instances_for(instances, memberships_from_auth_state(auth_state))
    if not offered:
        return None
    bearer = f"{directory}/{offered[0].name}.token"
    environment = {
        "IRIS_RUCIO_DIR": directory,
        "IRIS_RUCIO_INSTANCES": json.dumps(
            instances_env(offered, auth_state, hub_username), separators=(",", ":")
        ),
        "BEARER_TOKEN_FILE": bearer,
        "RUCIO_CONFIG": f"{directory}/rucio.cfg",
        "RUCIO_OIDC_AUTH": "file",
        "RUCIO_OIDC_FILE_NAME": bearer,
    }
    if not volume:
        return RucioPod(environment)
    return RucioPod(
        environment,
        volumes=[{"name": VOLUME_NAME, "emptyDir": {"medium": "Memory", "sizeLimit": "1Mi"}}],
        volume_mounts=[{"name": VOLUME_NAME, "mountPath": directory}],
    )


def _added(current: Any, items: Sequence[Mapping[str, Any]]) -> Any:
    """``items`` added to a KubeSpawner list trait that may also be a dict (KubeSpawner 7)."""
    from ..spawner.pod import literal  # noqa: PLC0415  (the spawner imports this module)

    if not items:
        return current
    if isinstance(current, Mapping):
        return {**current, **{str(item["name"]): literal(item) for item in items}}
    named = {item["name"] for item in items}
    kept = [v for v in current or [] if not (isinstance(v, Mapping) and v.get("name") in named)]
    return [*kept, *(literal(item) for item in items)]


def rucio_traits(pod: RucioPod, current: Mapping[str, Any]) -> dict[str, Any]:
    """The KubeSpawner trait values that add ``pod`` to the ``current`` ``environment``,
    ``volumes`` and ``volume_mounts`` (values brace-escaped: KubeSpawner expands
    ``{username}``-style templates in them, and the instance list is JSON)."""
    from ..spawner.pod import literal  # noqa: PLC0415

    traits: dict[str, Any] = {
        "environment": {**(current.get("environment") or {}), **literal(pod.environment)}
    }
    if pod.volumes:
        traits["volumes"] = _added(current.get("volumes"), pod.volumes)
        traits["volume_mounts"] = _added(current.get("volume_mounts"), pod.volume_mounts)
    return traits
