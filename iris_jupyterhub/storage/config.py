"""``ManilaStorage``: how the hub provisions researchers' OpenStack Manila CephFS storage.

Every option is ``c.ManilaStorage.<option>`` (in Zero to JupyterHub:
``hub.config.ManilaStorage.<option>``). The class only holds configuration;
:mod:`~iris_jupyterhub.storage.service` does the work. Each option is checked when it is
set, and the combination (credentials present, a cluster id for ceph-csi, mount paths that
do not overlap) when the object is built, by the rules of
:mod:`~iris_jupyterhub.storage.options`, so a mistake is a :class:`ValueError` whose
message names ``ManilaStorage.<option>``.
"""

from __future__ import annotations

import os
from typing import Any

from traitlets import Bool, Dict, Float, Int, Unicode, default, validate
from traitlets.config import LoggingConfigurable

from .groups import GroupShare, parse_group_shares
from .manifests import CsiSettings
from .options import OPTION_RULES, check_combination, check_option

__all__ = ["ManilaStorage"]


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
        help="""
        Namespace of the Secrets and PersistentVolumeClaims (empty: the spawner's). The
        PersistentVolumes' claim and CSI secret references point there, and
        ``helm/storage-pv-policy.yaml`` refuses any the hub creates that point elsewhere:
        keep it the namespace named in that policy (and in ``helm/storage-rbac.yaml``).
        """,
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

    @validate(*OPTION_RULES)
    def _validate_option(self, proposal: Any) -> Any:
        return check_option(proposal.trait.name, proposal.value)

    # --- the whole --------------------------------------------------------------------------
    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        if self.enabled:
            self.check()

    def check(self) -> None:
        """Check the options together; :class:`ValueError` names the one to fix."""
        check_combination(self)

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
