"""Idempotently make sure a share with a cephx access rule exists for an identity key.

:func:`ensure_share` is safe to call on every spawn: it finds the share by metadata,
creates it only if absent, waits for it, makes sure exactly one cephx rule exists for the
configured cephx id, and returns everything a pod needs to mount it. It never deletes or
modifies anything it finds; inconsistent state is reported, not repaired.

Metadata written on every share it creates (Manila share metadata, searchable):

``iris_jupyterhub_key``
    The stable identity key (:attr:`ShareSpec.key`), e.g. ``user:<sha256>`` or
    ``group:<name>``; this is how a share is found again.
``iris_jupyterhub_managed``
    Always ``"true"``: marks shares made by this library (for admins' listings).
``iris_jupyterhub_cephx_id``
    The cephx id the library grants access to (informational).
"""

from __future__ import annotations

import asyncio
import logging
import weakref
from collections.abc import Mapping
from dataclasses import dataclass, field

from .errors import StorageConflictError, StorageStateError
from .exports import CephExport, choose_export
from .manila import AccessRule, ManilaClient, Share, share_available

__all__ = [
    "METADATA_CEPHX_ID",
    "METADATA_KEY",
    "METADATA_MANAGED",
    "ReadyShare",
    "ShareSpec",
    "ensure_share",
]

METADATA_KEY = "iris_jupyterhub_key"
METADATA_MANAGED = "iris_jupyterhub_managed"
METADATA_CEPHX_ID = "iris_jupyterhub_cephx_id"

_log = logging.getLogger(__name__)

#: Per-key locks of this process; entries vanish when no call holds them.
_locks: weakref.WeakValueDictionary[tuple[int, str], asyncio.Lock] = weakref.WeakValueDictionary()


@dataclass(frozen=True)
class ShareSpec:
    """What share to ensure: identity ``key``, Manila create parameters, cephx id."""

    key: str
    name: str
    size_gb: int
    share_type: str | None
    share_network_id: str | None
    availability_zone: str | None
    cephx_id: str
    metadata: Mapping[str, str] = field(default_factory=dict)

    def identity_metadata(self) -> dict[str, str]:
        """The metadata filter that finds this spec's share."""
        return {METADATA_KEY: self.key}

    def create_metadata(self) -> dict[str, str]:
        """All metadata written when creating the share (extra metadata first)."""
        return {
            **self.metadata,
            METADATA_KEY: self.key,
            METADATA_MANAGED: "true",
            METADATA_CEPHX_ID: self.cephx_id,
        }


@dataclass(frozen=True)
class ReadyShare:
    """An available share, its active cephx rule (with ``access_key``) and export."""

    share: Share
    rule: AccessRule
    export: CephExport
    created: bool


def _lock_for(key: str) -> asyncio.Lock:
    # keyed by event loop too: an asyncio.Lock must not be shared across loops
    lock_key = (id(asyncio.get_running_loop()), key)
    lock = _locks.get(lock_key)
    if lock is None:
        lock = asyncio.Lock()
        _locks[lock_key] = lock
    return lock


async def _find_or_create(
    client: ManilaClient, spec: ShareSpec, log: logging.Logger
) -> tuple[Share, bool]:
    found = await client.find_shares(spec.identity_metadata())
    if found:
        found.sort(key=lambda s: (s.created_at, s.id))
        if len(found) > 1:
            log.warning(
                "Manila has %d shares for key %s: %s; using the oldest, %s (nothing deleted)",
                len(found),
                spec.key,
                ", ".join(f"{s.id} ({s.name}, {s.created_at})" for s in found),
                found[0].id,
            )
        return found[0], False
    log.info("Creating Manila share %s (%d GB) for %s", spec.name, spec.size_gb, spec.key)
    share = await client.create_share(
        name=spec.name,
        size_gb=spec.size_gb,
        share_type=spec.share_type,
        share_network_id=spec.share_network_id,
        availability_zone=spec.availability_zone,
        metadata=spec.create_metadata(),
    )
    return share, True


async def _ensure_rule(
    client: ManilaClient, share: Share, spec: ShareSpec, log: logging.Logger
) -> AccessRule:
    rules = [
        r
        for r in await client.access_rules(share.id)
        if r.access_type == "cephx" and r.access_to == spec.cephx_id
    ]
    for rule in rules:
        if rule.state == "error":
            raise StorageStateError(
                f"Manila access rule {rule.id} (cephx {spec.cephx_id}) on share {share.id} is "
                "in state 'error'; an administrator must look at it (never deleted automatically)"
            )
        if rule.access_level != "rw":
            raise StorageConflictError(
                f"Manila access rule {rule.id} on share {share.id} gives cephx {spec.cephx_id} "
                f"access level {rule.access_level!r}, not 'rw'; an administrator must fix it"
            )
    if rules:
        rules.sort(key=lambda r: (r.state != "active", r.id))
        rule = rules[0]
    else:
        log.info("Granting cephx %s rw access to share %s", spec.cephx_id, share.id)
        rule = await client.allow_access(share.id, spec.cephx_id, "rw")
    if rule.state != "active" or rule.access_key is None:
        rule = await client.wait_rule_active(share.id, rule.id)
    return rule


async def ensure_share(
    client: ManilaClient, spec: ShareSpec, *, log: logging.Logger | None = None
) -> ReadyShare:
    """Find or create the share for ``spec.key``, grant cephx access, return mount data.

    Idempotent and safe to call concurrently: calls for the same key in one process run
    one after another, so only one share and one rule are ever created. Raises a
    :class:`~iris_jupyterhub.storage.errors.StorageError` subclass on failure.
    """
    log = log or _log
    async with _lock_for(spec.key):
        share, created = await _find_or_create(client, spec, log)
        if share.share_proto.upper() != "CEPHFS":
            raise StorageConflictError(
                f"Manila share {share.id} for {spec.key} has protocol {share.share_proto!r}, "
                "not CEPHFS"
            )
        if not share_available(share):  # raises at once for shares in error
            share = await client.wait_share_available(share.id)
        rule = await _ensure_rule(client, share, spec, log)
        locations = await client.export_locations(share.id)
        try:
            export = choose_export(locations)
        except ValueError as exc:
            raise StorageConflictError(f"Manila share {share.id} for {spec.key}: {exc}") from exc
    return ReadyShare(share=share, rule=rule, export=export, created=created)
