"""Prepare a researcher's storage for one spawn: shares, access rules, Kubernetes objects.

:meth:`StorageService.prepare` does, for the home share and for each group share the
researcher belongs to:

1. :func:`~iris_jupyterhub.storage.shares.ensure_share`: find the share by its key in
   Manila's metadata, or create it (once); find or create its cephx access rule; wait until
   both are ready (bounded);
2. build the Secret, PersistentVolume and PersistentVolumeClaim
   (:mod:`~iris_jupyterhub.storage.manifests`) and create or adopt them
   (:mod:`~iris_jupyterhub.storage.kube`);
3. return the volumes, mounts and init container for the pod
   (:func:`~iris_jupyterhub.storage.volumes.pod_storage`).

Shares are keyed by the identity, never the user name: the home key is a hash of the
identity provider's issuer and subject (``auth_state["identity"]``), so a renamed or
re-created hub user finds the same home, and two people with the same name never share
one. A group share's key is a hash of the canonical group. Everything is found again on
the next spawn; nothing is deleted. Any failure raises a
:class:`~iris_jupyterhub.storage.errors.StorageError` whose ``user_message`` the spawn
page shows; the spawn then fails: a pod never starts without its home.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .config import ManilaStorage
from .errors import StorageError, StorageUnavailableError
from .groups import GroupShare
from .keystone import KeystoneSession
from .kube import apply_objects
from .manifests import (
    CsiSettings,
    MountedShare,
    object_name_for,
    persistent_volume_claim_manifest,
    persistent_volume_manifest,
    secret_manifest,
)
from .manila import ManilaClient, RetryPolicy
from .shares import ReadyShare, ShareSpec, ensure_share
from .volumes import PodStorage, pod_storage

__all__ = [
    "HOME_SIGN_IN_FAILED",
    "HOME_UNAVAILABLE",
    "StorageOwner",
    "StorageService",
    "group_key",
    "home_key",
    "owner_from_auth_state",
    "service_for",
    "share_specs",
]

HOME_UNAVAILABLE = (
    "Your home directory is unavailable right now (the storage service did not answer). "
    "Your files are safe; please try again in a few minutes."
)
"""What a researcher reads when Manila, Keystone or the cluster did not answer in time."""

HOME_SIGN_IN_FAILED = (
    "Your home directory is unavailable right now because this hub could not sign in to its "
    "storage service. Your files are safe; the hub administrators have been told."
)
"""What a researcher reads when Keystone keeps refusing the hub's credentials."""

_NO_IDENTITY = (
    "Your account has no storage identity on this hub yet, so your home directory cannot "
    "be attached. Please log out and log in again."
)
KEY_LENGTH = 32
"""Hex digits of the hash in a home key and in cephx ids (128 bits of SHA-256)."""
META_PREFIX = "iris_jupyterhub_"


@dataclass(frozen=True)
class StorageOwner:
    """Who a spawn prepares storage for, from ``auth_state``.

    Attributes:
        issuer: The identity provider (``auth_state["identity"]["issuer"]``).
        subject: The subject at that provider.
        username: The POSIX user name (used for paths and hints, never as a key).
        uid: The POSIX uid.
        gid: The personal group's gid.
        groups: ``(canonical group, gid)`` of every POSIX group that stands for one.
    """

    issuer: str
    subject: str
    username: str
    uid: int
    gid: int
    groups: tuple[tuple[str, int], ...] = ()


def _int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def owner_from_auth_state(auth_state: Mapping[str, Any] | None) -> StorageOwner:
    """Read the owner from ``auth_state``; :class:`StorageError` if it is incomplete."""
    state = auth_state or {}
    identity, posix = state.get("identity") or {}, state.get("posix") or {}
    issuer, subject = identity.get("issuer"), identity.get("subject")
    uid, gid, username = _int(posix.get("uid")), _int(posix.get("gid")), posix.get("username")
    if not (isinstance(issuer, str) and issuer and isinstance(subject, str) and subject):
        raise StorageError("auth_state has no identity issuer/subject", user_message=_NO_IDENTITY)
    if uid is None or gid is None or not isinstance(username, str) or not username:
        raise StorageError("auth_state has no POSIX uid/gid/username", user_message=_NO_IDENTITY)
    groups = []
    for group in posix.get("groups") or ():
        canonical = group.get("canonical") if isinstance(group, Mapping) else None
        group_gid = _int(group.get("gid")) if isinstance(group, Mapping) else None
        if isinstance(canonical, str) and canonical and group_gid is not None:
            groups.append((canonical, group_gid))
    return StorageOwner(issuer, subject, username, uid, gid, tuple(groups))


def _hash(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:KEY_LENGTH]


def home_key(issuer: str, subject: str) -> str:
    """The key of an identity's home share: ``user:`` and a hash of issuer and subject."""
    return "user:" + _hash("home", issuer, subject)


def group_key(group: str) -> str:
    """The key of a canonical group's share: ``group:<canonical group>``."""
    return f"group:{group}"


def cephx_id_for(prefix: str, key: str) -> str:
    """The cephx client id granted access to the share of ``key`` (no names in it)."""
    return prefix + _hash("cephx", key)


@dataclass(frozen=True)
class _Wanted:
    """One share a spawn needs: what to ensure in Manila and where it goes in the pod."""

    kind: str
    spec: ShareSpec
    hint: str
    mount_path: str
    uid: int | None
    gid: int
    read_only: bool


def _spec(
    settings: ManilaStorage, kind: str, key: str, *, size: int, share_type: str | None, hint: str
) -> ShareSpec:
    return ShareSpec(
        key=key,
        name=settings.share_name(kind, _hash("name", key)[:16]),
        size_gb=size,
        share_type=share_type or settings.share_type or None,
        share_network_id=settings.share_network_id or None,
        availability_zone=settings.availability_zone or None,
        cephx_id=cephx_id_for(settings.cephx_id_prefix, key),
        metadata={f"{META_PREFIX}kind": kind, f"{META_PREFIX}hint": hint[:255]},
    )


def share_specs(settings: ManilaStorage, owner: StorageOwner) -> list[_Wanted]:
    """The home share and the group shares of ``owner``'s groups, in that order."""
    key = home_key(owner.issuer, owner.subject)
    wanted = [
        _Wanted(
            "home",
            _spec(
                settings,
                "home",
                key,
                size=settings.share_size_gb,
                share_type=None,
                hint=owner.username,
            ),
            owner.username,
            settings.home_path_for(owner.username),
            owner.uid,
            owner.gid,
            False,
        )
    ]
    configured: dict[str, GroupShare] = settings.parsed_group_shares()
    for group, gid in sorted(set(owner.groups)):
        share = configured.get(group)
        if share is None:
            continue
        spec = _spec(
            settings,
            "group",
            group_key(group),
            size=share.size_gb,
            share_type=share.share_type,
            hint=group,
        )
        wanted.append(_Wanted("group", spec, group, share.mount_path, None, gid, share.read_only))
    return wanted


class StorageService:
    """The OpenStack clients of one configuration, shared by every spawn of the hub."""

    def __init__(self, settings: ManilaStorage, log: logging.Logger | None = None) -> None:
        self.settings = settings
        self.log = log or logging.getLogger(__name__)
        self.session = KeystoneSession(
            settings.auth_url,
            application_credential_id=settings.application_credential_id,
            application_credential_secret=settings.application_credential_secret,
            username=settings.username,
            password=settings.password,
            user_domain_name=settings.user_domain_name,
            project_name=settings.project_name,
            project_domain_name=settings.project_domain_name,
            region_name=settings.region_name,
            interface=settings.interface,
            timeout=settings.request_timeout,
            log=self.log,
        )
        self.client = ManilaClient(
            self.session,
            retry=RetryPolicy(
                attempts=settings.retries,
                poll_interval=settings.poll_interval,
                max_poll_interval=max(settings.poll_interval, 5.0),
                wait_timeout=settings.prepare_timeout,
            ),
            log=self.log,
        )

    async def prepare(
        self, owner: StorageOwner, *, api: Any, namespace: str, timeout: float | None = None
    ) -> PodStorage:
        """Everything :mod:`~iris_jupyterhub.storage` does for one spawn, bounded in time.

        Args:
            owner: Whose storage.
            api: A ``kubernetes_asyncio`` ``CoreV1Api``.
            namespace: Of the Secrets and claims.
            timeout: A tighter bound than ``ManilaStorage.prepare_timeout`` (the spawner
                passes most of its ``start_timeout``, so that the researcher reads this
                error rather than JupyterHub's generic time-out).

        Raises:
            StorageError: With a ``user_message`` for the spawn page (the detail is logged).
        """
        timeout = min(self.settings.prepare_timeout, timeout or self.settings.prepare_timeout)
        try:
            return await asyncio.wait_for(self._prepare(owner, api, namespace), timeout)
        except asyncio.TimeoutError:
            detail = f"storage of {owner.username} not ready after {timeout:g}s"
            self.log.error("Storage: %s (ManilaStorage.prepare_timeout)", detail)
            raise StorageUnavailableError(detail, user_message=HOME_UNAVAILABLE) from None
        except StorageUnavailableError as e:
            self.log.error("Storage for %s unavailable: %s", owner.username, e.detail)
            if "user_message" not in vars(e):  # keep a more specific one (the cluster's)
                e.user_message = HOME_UNAVAILABLE if e.retryable else HOME_SIGN_IN_FAILED
            raise
        except StorageError as e:
            self.log.error("Storage for %s failed: %s", owner.username, e.detail)
            raise

    async def _prepare(self, owner: StorageOwner, api: Any, namespace: str) -> PodStorage:
        wanted = share_specs(self.settings, owner)
        ready = await asyncio.gather(
            *(ensure_share(self.client, w.spec, log=self.log) for w in wanted)
        )
        csi = self.settings.csi_settings(namespace)
        mounted = [self._mounted(w, r) for w, r in zip(wanted, ready, strict=True)]
        await asyncio.gather(
            *(
                self._apply(s, w, r, api, csi)
                for s, w, r in zip(mounted, wanted, ready, strict=True)
            )
        )
        return pod_storage(
            mounted,
            init_image=self.settings.init_image,
            image_pull_policy=self.settings.init_image_pull_policy,
            ownership_init=self.settings.ownership_init,
        )

    async def _apply(
        self, share: MountedShare, wanted: _Wanted, ready: ReadyShare, api: Any, csi: CsiSettings
    ) -> None:
        manifests = [
            secret_manifest(share, csi),
            persistent_volume_manifest(share, csi),
            persistent_volume_claim_manifest(share, csi),
        ]
        applied = await apply_objects(
            api, manifests, log=self.log, timeout=self.settings.request_timeout
        )
        self.log.info(
            "Storage: %s share %s of %s %s (%s)",
            wanted.kind,
            ready.share.id,
            wanted.hint,
            "created" if ready.created else "found",
            ", ".join(f"{a.kind} {'created' if a.created else 'found'}" for a in applied),
        )

    def _mounted(self, wanted: _Wanted, ready: ReadyShare) -> MountedShare:
        return MountedShare(
            kind=wanted.kind,
            owner_key=wanted.spec.key,
            object_name=object_name_for(wanted.kind, wanted.spec.key, self.settings.hub_name),
            share_id=ready.share.id,
            share_size_gb=ready.share.size or wanted.spec.size_gb,
            access_rule_id=ready.rule.id,
            cephx_id=wanted.spec.cephx_id,
            access_key=ready.rule.access_key or "",
            monitors=tuple(ready.export.monitors),
            root_path=ready.export.path,
            mount_path=wanted.mount_path,
            uid=wanted.uid,
            gid=wanted.gid,
            read_only=wanted.read_only,
        )

    async def aclose(self) -> None:
        await self.session.aclose()


_SERVICES: dict[tuple[Any, ...], StorageService] = {}


def _fingerprint(settings: ManilaStorage) -> tuple[Any, ...]:
    names = sorted(settings.traits(config=True))
    return tuple(repr(getattr(settings, n)) for n in names)


def service_for(settings: ManilaStorage) -> StorageService:
    """One :class:`StorageService` per distinct configuration (tokens are reused)."""
    key = _fingerprint(settings)
    service = _SERVICES.get(key)
    if service is None:
        service = _SERVICES[key] = StorageService(settings, settings.log)
    return service
