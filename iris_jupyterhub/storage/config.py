"""``ManilaStorage``: how the hub provisions researchers' OpenStack Manila CephFS storage.

Every option is ``c.ManilaStorage.<option>`` (in Zero to JupyterHub:
``hub.config.ManilaStorage.<option>``). The class only holds and checks configuration;
:mod:`~iris_jupyterhub.storage.service` does the work. Each option is checked when it is
set, and the combination (credentials present, a cluster id for ceph-csi, mount paths that
do not overlap) when the object is built, so a mistake is a :class:`ValueError` whose
message names ``ManilaStorage.<option>``.
"""

from __future__ import annotations

import os
import re
import string
from typing import Any
from urllib.parse import urlparse

from traitlets import Bool, Dict, Float, Int, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from .groups import GroupShare, check_home_overlap, check_mount_path, parse_group_shares
from .manifests import CSI_DRIVERS, CsiSettings, validate_csi_settings

__all__ = ["ManilaStorage"]


_INTERFACES = ("public", "internal", "admin")
_TEMPLATE_FIELDS = {"kind", "key"}
_COUNT_BOUNDS = {"share_size_gb": (1, 1_000_000), "retries": (1, 10)}
#: Text options checked only for stray spaces and control characters (pasted secrets).
_PLAIN_TRAITS = (
    *("application_credential_id", "application_credential_secret", "username", "password"),
    *("user_domain_name", "project_name", "project_domain_name", "region_name"),
    *("share_type", "share_network_id", "availability_zone", "ceph_cluster_id"),
    *("ceph_fs_name", "init_image"),
)
_CONTROL_RE = re.compile(r"[\x00-\x1f\x7f]")
_NAME_RE = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_CEPHX_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,31}")
_GROUP_SHARE_KEYS = ("size_gb", "mount_path", "share_type", "read_only")


def _interface(value: str) -> str:
    value = value.removesuffix("URL")  # the openstack CLI also takes publicURL
    if value not in _INTERFACES:
        raise ValueError(f"ManilaStorage.interface: must be one of {_INTERFACES}, not {value!r}")
    return value


def _env_default(trait: str, variable: str, fallback: str = "") -> Any:
    """A traitlets default: the OpenStack environment variable ``variable``."""

    def from_environment(self: Any) -> str:
        return os.environ.get(variable, fallback)

    return default(trait)(from_environment)


class ManilaStorage(LoggingConfigurable):
    """Per-user home directories and per-group shared directories on Manila CephFS.

    With ``enabled``, every spawn of a profile with storage (the default; a profile opts
    out with ``storage: false``) finds or creates the researcher's home share, its cephx
    access rule and the Kubernetes Secret, PersistentVolume and PersistentVolumeClaim
    that mount it, and likewise one share per configured group the researcher belongs to.
    Nothing is ever deleted. A failure fails the spawn with a message for the researcher;
    a pod never starts without its home.
    """

    enabled = Bool(
        False,
        config=True,
        help="""
        Mount a Manila CephFS share as every researcher's home (and configured group
        shares). Off by default; the other settings are only checked when it is on.
        """,
    )

    # --- OpenStack authentication -------------------------------------------------------
    auth_url = Unicode(
        config=True,
        help="Keystone v3 URL, e.g. ``https://keystone.example.ac.uk:5000/v3``. "
        "Default: the ``OS_AUTH_URL`` environment variable.",
    )
    application_credential_id = Unicode(
        config=True,
        help="Keystone application credential id (preferred way to authenticate). "
        "Default: ``OS_APPLICATION_CREDENTIAL_ID``.",
    )
    application_credential_secret = Unicode(
        config=True,
        help="Its secret; keep it in a Kubernetes Secret exposed as an environment variable. "
        "Default: ``OS_APPLICATION_CREDENTIAL_SECRET``.",
    )
    username = Unicode(
        config=True,
        help="Password authentication instead of an application credential: the user. "
        "Default: ``OS_USERNAME``.",
    )
    password = Unicode(config=True, help="Password of ``username``. Default: ``OS_PASSWORD``.")
    user_domain_name = Unicode(
        config=True, help="Domain of ``username``. Default: ``OS_USER_DOMAIN_NAME`` or Default."
    )
    project_name = Unicode(
        config=True,
        help="Project the shares belong to (password authentication). "
        "Default: ``OS_PROJECT_NAME``.",
    )
    project_domain_name = Unicode(
        config=True,
        help="Domain of ``project_name``. Default: ``OS_PROJECT_DOMAIN_NAME`` or Default.",
    )
    region_name = Unicode(
        config=True,
        help="Region of the Manila endpoint in the catalog; empty for any. "
        "Default: ``OS_REGION_NAME``.",
    )
    interface = Unicode(
        config=True,
        help="Catalog interface of the Manila endpoint: public, internal or admin. "
        "Default: ``OS_INTERFACE`` or public.",
    )

    _auth_url_default = _env_default("auth_url", "OS_AUTH_URL")
    _ac_id_default = _env_default("application_credential_id", "OS_APPLICATION_CREDENTIAL_ID")
    _ac_secret_default = _env_default(
        "application_credential_secret", "OS_APPLICATION_CREDENTIAL_SECRET"
    )
    _username_default = _env_default("username", "OS_USERNAME")
    _password_default = _env_default("password", "OS_PASSWORD")
    _user_domain_default = _env_default("user_domain_name", "OS_USER_DOMAIN_NAME", "Default")
    _project_default = _env_default("project_name", "OS_PROJECT_NAME")
    _project_domain_default = _env_default(
        "project_domain_name", "OS_PROJECT_DOMAIN_NAME", "Default"
    )
    _region_default = _env_default("region_name", "OS_REGION_NAME")

    @default("interface")
    def _interface_default(self) -> str:
        return os.environ.get("OS_INTERFACE", "public").removesuffix("URL")

    @validate("auth_url")
    def _validate_auth_url(self, proposal: Any) -> str:
        value = str(proposal.value)
        url = urlparse(value)
        if value and (url.scheme not in ("http", "https") or not url.netloc):
            raise ValueError(f"ManilaStorage.auth_url: {value!r} is not an http(s) URL")
        return value

    @validate("interface")
    def _validate_interface(self, proposal: Any) -> str:
        return _interface(str(proposal.value))

    # --- the shares --------------------------------------------------------------------
    share_type = Unicode(
        "",
        config=True,
        help="Manila share type of home shares (empty: the project's default share type).",
    )
    share_size_gb = Int(
        10, config=True, help="Size of a new home share in GB; existing shares keep theirs."
    )
    share_network_id = Unicode(
        "", config=True, help="Manila share network for new shares (empty: none)."
    )
    availability_zone = Unicode(
        "", config=True, help="Availability zone for new shares (empty: Manila's default)."
    )
    share_name_template = Unicode(
        "iris-{kind}-{key}",
        config=True,
        help="""
        Name of new shares in Manila; ``{kind}`` is ``home`` or ``group`` and ``{key}`` a
        hash of the owner's key (itself a hash of the identity provider's issuer and
        subject, or the canonical group). Shares are found again by their metadata
        (``iris_jupyterhub_key``), not by this name.
        """,
    )
    cephx_id_prefix = Unicode(
        "iris-",
        config=True,
        help="Prefix of the cephx client ids the hub grants access to "
        "(``<prefix><hash of the share's key>``).",
    )
    group_shares = Dict(
        config=True,
        help="""
        Shared directories per canonical group, e.g.
        ``{"iris/lsst": {"size_gb": 500, "mount_path": "/shared/lsst"}}``. Keys: ``size_gb``
        (required), ``mount_path`` (default ``/shared/<group>`` with ``/`` as ``-``),
        ``share_type`` (default: ``share_type``), ``read_only`` (default false). The share
        is created by the first member's spawn and mounted only into members' pods.
        """,
    )

    @validate("share_name_template")
    def _validate_name_template(self, proposal: Any) -> str:
        value = str(proposal.value)
        try:
            fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        except ValueError as e:
            raise ValueError(f"ManilaStorage.share_name_template: {e}") from None
        if not fields <= _TEMPLATE_FIELDS or "key" not in fields:
            raise ValueError(
                "ManilaStorage.share_name_template: must contain {key} and no fields other "
                f"than {sorted(_TEMPLATE_FIELDS)}, got {value!r}"
            )
        return value

    @validate("cephx_id_prefix")
    def _validate_cephx_prefix(self, proposal: Any) -> str:
        value = str(proposal.value)
        if not _CEPHX_RE.fullmatch(value + "x" * 24) or len(value) > 16:
            raise ValueError(
                "ManilaStorage.cephx_id_prefix: 1-16 characters of A-Z a-z 0-9 . _ - "
                f"starting with a letter or digit, not {value!r}"
            )
        return value

    @validate("group_shares")
    def _validate_group_shares(self, proposal: Any) -> dict[str, Any]:
        try:
            parse_group_shares(proposal.value)
        except ValueError as e:
            raise ValueError(f"ManilaStorage.group_shares: {e}") from None
        return dict(proposal.value)

    # --- Kubernetes -----------------------------------------------------------------------
    csi_driver = Unicode(
        "manila",
        config=True,
        help="""
        CSI driver of the PersistentVolumes: ``manila`` (cloud-provider-openstack's
        ``cephfs.manila.csi.openstack.org``) or ``cephfs`` (``cephfs.csi.ceph.com``,
        static volumes; needs ``ceph_cluster_id``).
        """,
    )
    ceph_cluster_id = Unicode(
        "",
        config=True,
        help="ceph-csi ``clusterID`` (its csi-config entry holds the monitors); required "
        "with ``csi_driver = 'cephfs'``.",
    )
    ceph_fs_name = Unicode(
        "", config=True, help="ceph-csi ``fsName`` of the volumes (empty: the driver's default)."
    )
    manila_share_access_ids = Bool(
        False,
        config=True,
        help="Write the access rule as ``shareAccessIDs`` instead of ``shareAccessID`` on "
        "Manila CSI volumes (needs cloud-provider-openstack >= 1.35). Exactly one of the two "
        "is written: releases 1.35 and 1.36 refuse a volume that has both, and up to 1.34 "
        "only ``shareAccessID`` exists (the default, which every release reads).",
    )
    mounter = Unicode(
        "",
        config=True,
        help="CephFS client of the node plugin: ``kernel`` or ``fuse`` (Manila CSI's "
        "``cephfs-mounter``, ceph-csi's ``mounter``); empty: the driver's default.",
    )
    labels = Dict(
        config=True,
        help="Extra labels on every Secret, PersistentVolume and claim, e.g. z2jh's "
        "``{'app': 'jupyterhub', 'release': 'jhub'}`` (checked with the other options).",
    )
    hub_name = Unicode(
        "",
        config=True,
        help="""
        A short, stable name put into the Kubernetes object names, for several hubs sharing
        one cluster (PersistentVolumes are cluster-wide). Changing it later gives every
        share new object names.
        """,
    )
    namespace = Unicode(
        "",
        config=True,
        help="Namespace of the Secrets and PersistentVolumeClaims (empty: the spawner's).",
    )
    home_mount_path = Unicode(
        "/home/{username}",
        config=True,
        help="""
        Where the home share is mounted; ``{username}`` is the POSIX user name. ``HOME`` is
        set to it. The default keeps the ``HOME`` IRISSpawner sets without storage.
        """,
    )
    init_image = Unicode(
        "docker.io/library/busybox:1.37",
        config=True,
        help="""
        Image of the init container that gives a new share's top directory to its owner.
        It runs as root with only CAP_CHOWN and CAP_FOWNER, so it is always this
        administrator-chosen image, never the notebook image a researcher may pick.
        """,
    )
    init_image_pull_policy = Unicode(
        "IfNotPresent", config=True, help="``imagePullPolicy`` of the init container."
    )
    ownership_init = Bool(
        True,
        config=True,
        help="""
        Run the init container (new CephFS shares are owned by root, mode 755). Turn off
        only when Manila creates shares owned by the right ids, or the namespace's Pod
        Security level is ``restricted`` (which forbids it).
        """,
    )

    @validate("mounter")
    def _validate_mounter(self, proposal: Any) -> str:
        if proposal.value not in ("", "kernel", "fuse"):
            raise ValueError(
                f"ManilaStorage.mounter: must be 'kernel', 'fuse' or empty, not {proposal.value!r}"
            )
        return str(proposal.value)

    @validate("csi_driver")
    def _validate_driver(self, proposal: Any) -> str:
        if proposal.value not in CSI_DRIVERS:
            raise ValueError(
                f"ManilaStorage.csi_driver: must be one of {list(CSI_DRIVERS)}, "
                f"not {proposal.value!r}"
            )
        return str(proposal.value)

    @validate("namespace")
    def _validate_names(self, proposal: Any) -> str:
        value = str(proposal.value)
        if value and (len(value) > 63 or not _NAME_RE.fullmatch(value)):
            raise ValueError(
                f"ManilaStorage.{proposal.trait.name}: {value!r} is not a Kubernetes name"
            )
        return value

    @validate("home_mount_path")
    def _validate_home(self, proposal: Any) -> str:
        value = str(proposal.value)
        try:
            check_mount_path(value.replace("{username}", "u"), "ManilaStorage.home_mount_path")
        except ValueError as e:
            raise ValueError(f"{e} (such as /home/{{username}})") from None
        fields = {f for _, f, _, _ in string.Formatter().parse(value) if f is not None}
        if fields - {"username"}:
            raise ValueError(
                f"ManilaStorage.home_mount_path: only {{username}} may be filled in, not {value!r}"
            )
        return value

    # --- bounds on a spawn ------------------------------------------------------------------
    prepare_timeout = Float(
        120.0,
        config=True,
        help="""
        Most seconds a spawn waits for its storage (new share available, rule active,
        objects created); then the spawn fails with a message. Keep it below the spawner's
        ``start_timeout``.
        """,
    )
    request_timeout = Float(
        15.0, config=True, help="Seconds for one request to Keystone or Manila."
    )
    retries = Int(
        3,
        config=True,
        help="Attempts for a request that failed in a way safe to repeat (timeouts, 5xx).",
    )
    poll_interval = Float(
        1.0, config=True, help="Seconds between checks of a share or rule being created."
    )

    @validate("prepare_timeout", "request_timeout", "poll_interval")
    def _validate_positive(self, proposal: Any) -> float:
        value = float(proposal.value)
        if not 0 < value <= 3600:
            raise ValueError(
                f"ManilaStorage.{proposal.trait.name}: must be > 0 and <= 3600 seconds"
            )
        return value

    @validate(*_PLAIN_TRAITS)
    def _validate_plain(self, proposal: Any) -> str:
        value = str(proposal.value)
        if value != value.strip() or _CONTROL_RE.search(value) or len(value) > 1024:
            raise ValueError(
                f"ManilaStorage.{proposal.trait.name}: no surrounding spaces or control "
                "characters, at most 1024 characters"
            )
        return value

    @validate("hub_name")
    def _validate_hub_name(self, proposal: Any) -> str:
        value = str(proposal.value)
        if value and (len(value) > 16 or not _NAME_RE.fullmatch(value)):
            raise ValueError(
                "ManilaStorage.hub_name: up to 16 characters of a-z 0-9 - "
                f"(a DNS label), not {value!r}"
            )
        return value

    @validate("init_image_pull_policy")
    def _validate_pull_policy(self, proposal: Any) -> str:
        if proposal.value not in ("Always", "IfNotPresent", "Never"):
            raise ValueError(
                "ManilaStorage.init_image_pull_policy: Always, IfNotPresent or Never, "
                f"not {proposal.value!r}"
            )
        return str(proposal.value)

    @validate("share_size_gb", "retries")
    def _validate_counts(self, proposal: Any) -> int:
        low, high = _COUNT_BOUNDS[proposal.trait.name]
        if not low <= int(proposal.value) <= high:
            raise ValueError(
                f"ManilaStorage.{proposal.trait.name}: must be {low}..{high}, not {proposal.value}"
            )
        return int(proposal.value)

    # --- the whole --------------------------------------------------------------------------
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.enabled:
            self.check()

    def check(self) -> None:
        """Check the options together; :class:`ValueError` names the one to fix."""
        if not self.auth_url:
            raise ValueError(
                "ManilaStorage.auth_url: required when ManilaStorage.enabled (or set OS_AUTH_URL)"
            )
        if self.application_credential_id or self.application_credential_secret:
            for name in ("application_credential_id", "application_credential_secret"):
                if not getattr(self, name):
                    raise ValueError(
                        f"ManilaStorage.{name}: required with the other half of the "
                        f"application credential (or set OS_{name.upper()})"
                    )
        elif not (self.username and self.password and self.project_name):
            missing = [n for n in ("username", "password", "project_name") if not getattr(self, n)]
            raise ValueError(
                f"ManilaStorage.application_credential_id: required when ManilaStorage.enabled "
                f"(or password authentication: ManilaStorage.{missing[0]} is not set)"
            )
        _interface(self.interface)  # a default from OS_INTERFACE is not validated
        if self.ownership_init and not self.init_image:
            raise ValueError("ManilaStorage.init_image: required while ownership_init is on")
        if self.csi_driver == "manila" and not self.region_name:
            raise ValueError(
                "ManilaStorage.region_name: required with csi_driver = 'manila' (its node "
                "plugin needs os-region; or set OS_REGION_NAME)"
            )
        validate_csi_settings(self.csi_settings(self.namespace or "default"))
        try:
            check_home_overlap(self.parsed_group_shares(), self.home_mount_path)
        except ValueError as e:
            raise ValueError(f"ManilaStorage.group_shares: {e}") from None

    def csi_settings(self, namespace: str) -> CsiSettings:
        """How the cluster mounts shares, for objects in ``namespace``."""
        return CsiSettings(
            driver=self.csi_driver,
            namespace=namespace,
            ceph_cluster_id=self.ceph_cluster_id,
            ceph_fs_name=self.ceph_fs_name,
            manila_secret=self.manila_secret() if self.csi_driver == "manila" else None,
            manila_share_access_ids=self.manila_share_access_ids,
            mounter=self.mounter,
            labels=dict(self.labels),
        )

    def manila_secret(self) -> dict[str, str]:
        """The ``os-*`` keys Manila CSI's node plugin authenticates with (the hub's own)."""
        secret = {"os-authURL": self.auth_url, "os-region": self.region_name}
        if self.application_credential_id:
            secret["os-applicationCredentialID"] = self.application_credential_id
            secret["os-applicationCredentialSecret"] = self.application_credential_secret
        else:
            secret.update(
                {
                    "os-userName": self.username,
                    "os-password": self.password,
                    "os-userDomainName": self.user_domain_name,
                    "os-projectName": self.project_name,
                    "os-projectDomainName": self.project_domain_name,
                }
            )
        return secret

    def parsed_group_shares(self) -> dict[str, GroupShare]:
        """``group_shares`` as :class:`GroupShare` objects (defaults filled in)."""
        return parse_group_shares(self.group_shares)

    def home_path_for(self, username: str) -> str:
        """``home_mount_path`` for one POSIX user name."""
        return self.home_mount_path.replace("{username}", username)

    def share_name(self, kind: str, key: str) -> str:
        """The Manila name of a new share."""
        return self.share_name_template.format(kind=kind, key=key)
