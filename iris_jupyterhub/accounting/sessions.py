"""The pure rules of recording a session: who, what, and when it started and ended.

Used by :class:`~iris_jupyterhub.accounting.hooks.AccountingMixin`; see
:mod:`~iris_jupyterhub.accounting.hooks` for the time rules in context.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime, timedelta, timezone
from typing import Any

from .reconcile import clamp, parse_kube_time
from .records import SessionRecord

__all__ = [
    "charged_group_of",
    "choices_of",
    "identity_key_of",
    "new_record_id",
    "session_end",
    "session_record",
    "session_start",
    "utcnow",
]

_OPTION_KEYS_NOT_CHOICES = frozenset({"profile", "group"})


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


def new_record_id() -> str:
    return uuid.uuid4().hex


def identity_key_of(auth_state: Mapping[str, Any] | None, hub_user: str) -> str:
    """``"<issuer> <subject>"`` from ``auth_state["identity"]``; ``"local <hub user>"``
    when the authenticator gives no federated identity."""
    identity = (auth_state or {}).get("identity") or {}
    issuer, subject = identity.get("issuer"), identity.get("subject")
    if isinstance(issuer, str) and isinstance(subject, str) and issuer and subject:
        return f"{issuer} {subject}"
    return f"local {hub_user}"


def choices_of(user_options: Mapping[str, Any] | None) -> dict[str, str]:
    """The profile option choices of a request (everything but ``profile`` and ``group``)."""
    return {
        str(k): str(v)
        for k, v in (user_options or {}).items()
        if k not in _OPTION_KEYS_NOT_CHOICES and isinstance(v, str | int | float)
    }


def session_start(
    observed: datetime, pod_start: datetime | None, tolerance: timedelta
) -> datetime:
    """The hub's time when it saw the pod running, or the pod's ``startTime`` if that is
    earlier by at most ``tolerance`` (a later or much earlier pod time is the kubelet's
    clock disagreeing with the hub's, or an image pull, and is not used)."""
    if pod_start is not None and observed - tolerance <= pod_start <= observed:
        return pod_start
    return observed


def session_end(
    now: datetime,
    start: datetime,
    last_seen: datetime | None,
    *,
    found_dead: bool,
    stale_after: timedelta,
    finished: datetime | None = None,
) -> datetime:
    """When a session ended (see the module documentation); never before ``start``."""
    seen = max(last_seen or start, start)
    if not found_dead:
        end = now
    elif finished is not None:
        end = clamp(finished, seen, now)
    elif now - seen > stale_after:
        end = seen
    else:
        end = now
    return max(end, start)


def charged_group_of(iris_state: Mapping[str, Any] | None) -> str | None:
    """The VO group a session is charged to, from IRISSpawner's ``state["iris"]``.

    ``charge_group`` is decided at spawn (:func:`~iris_jupyterhub.spawner.charging.charge_group`);
    ``group`` (the canonical group of the POSIX group run as) is read only from a state
    written before ``charge_group`` existed.
    """
    state = iris_state or {}
    charged = state.get("charge_group", state.get("group"))
    return charged if isinstance(charged, str) and charged else None


def _int_or_none(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _float_or_none(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def session_record(
    *,
    record_id: str,
    hub_user: str,
    server_name: str,
    auth_state: Mapping[str, Any] | None,
    user_options: Mapping[str, Any] | None,
    iris_state: Mapping[str, Any] | None,
    uid: Any,
    gid: Any,
    image: str | None,
    cpu_guarantee: Any,
    cpu_limit: Any,
    mem_guarantee: Any,
    mem_limit: Any,
    namespace: str | None,
    pod_name: str | None,
    pod: Mapping[str, Any] | None,
    observed: datetime,
    tolerance: timedelta,
) -> SessionRecord:
    """The record of a session that just started, from what the spawner knows."""
    posix = (auth_state or {}).get("posix") or {}
    options = user_options or {}
    group = options.get("group")
    if not isinstance(group, str):
        group = None
    pod_start = parse_kube_time(((pod or {}).get("status") or {}).get("startTime"))
    node = ((pod or {}).get("spec") or {}).get("nodeName")
    profile = options.get("profile")
    return SessionRecord(
        record_id=record_id,
        identity_key=identity_key_of(auth_state, hub_user),
        hub_user=hub_user,
        server_name=server_name,
        posix_user=posix.get("username") if isinstance(posix.get("username"), str) else None,
        uid=_int_or_none(uid) if uid is not None else _int_or_none(posix.get("uid")),
        gid=_int_or_none(gid) if gid is not None else _int_or_none(posix.get("gid")),
        group=group,
        canonical_group=charged_group_of(iris_state),
        profile=profile if isinstance(profile, str) and profile else None,
        choices=choices_of(options),
        image=image or None,
        cpu_request=_float_or_none(cpu_guarantee),
        cpu_limit=_float_or_none(cpu_limit),
        memory_request=_int_or_none(mem_guarantee),
        memory_limit=_int_or_none(mem_limit),
        gpus=_int_or_none((iris_state or {}).get("gpu")) or 0,
        node=node if isinstance(node, str) and node else None,
        namespace=namespace or None,
        pod=pod_name or None,
        start=session_start(observed, pod_start, tolerance),
        last_seen=observed,
    )
