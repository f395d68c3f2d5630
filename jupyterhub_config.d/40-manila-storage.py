# Manila CephFS homes and group shares (ManilaStorage), from the environment or z2jh values.
#
# Works unchanged as a plain hub config file (`jupyterhub -f`, or `load_subconfig` from a
# hub's jupyterhub_config.py) and in Zero to JupyterHub, either mounted with
# `hub.extraFiles` at /usr/local/etc/jupyterhub/jupyterhub_config.d/40-manila-storage.py
# or pasted into `hub.extraConfig`. Needs 30-profiles.py (IRISSpawner). In z2jh also set
# `singleuser.storage.type: none` and apply helm/storage-rbac.yaml.
#
#   variable (values key under custom.iris)              required  meaning
#   OS_AUTH_URL (storage.authUrl)                         yes  Keystone v3 URL
#   OS_APPLICATION_CREDENTIAL_ID (environment only)       yes  application credential (or
#   OS_APPLICATION_CREDENTIAL_SECRET (environment only)   yes    OS_USERNAME + OS_PASSWORD +
#                                                                OS_PROJECT_NAME instead)
#   OS_REGION_NAME (storage.regionName)                   with csiDriver manila  region
#   OS_INTERFACE (storage.interface)                      no   public (default), internal, admin
#   IRIS_MANILA_SHARE_TYPE (storage.shareType)            no   share type of homes
#   IRIS_MANILA_SHARE_SIZE_GB (storage.shareSizeGb)       no   size of a new home (default 10)
#   IRIS_MANILA_SHARE_NETWORK_ID (storage.shareNetworkId) no   share network of new shares
#   IRIS_MANILA_GROUP_SHARES (storage.groupShares)        no   YAML mapping, e.g.
#                                                              {"iris/lsst": {"size_gb": 500}}
#   IRIS_MANILA_CSI_DRIVER (storage.csiDriver)            no   manila (default) or cephfs
#   IRIS_MANILA_CEPH_CLUSTER_ID (storage.cephClusterId)   with csiDriver cephfs
#   IRIS_MANILA_HUB_NAME (storage.hubName)                no   short name in object names
#   IRIS_MANILA_INIT_IMAGE (storage.initImage)            no   image of the ownership init
#
# The OpenStack credentials are read only from the standard OS_* variables (in z2jh:
# hub.extraEnv from a Kubernetes Secret). Every setting: docs/admin/snippets.md; storage:
# docs/admin/storage.md.
from iris_jupyterhub.snippets import SnippetSettings

s = SnippetSettings(globals(), "40-manila-storage.py")
c = s.config

c.ManilaStorage.enabled = True
c.ManilaStorage.auth_url = s.required("OS_AUTH_URL", "storage.authUrl", "the Keystone v3 URL")
if s.found("OS_APPLICATION_CREDENTIAL_ID", None) or not s.found("OS_USERNAME", None):
    # ManilaStorage reads the credentials from these variables itself
    s.required(
        "OS_APPLICATION_CREDENTIAL_ID",
        None,
        "the hub's Keystone application credential (or OS_USERNAME and OS_PASSWORD)",
    )
    s.required("OS_APPLICATION_CREDENTIAL_SECRET", None, "the application credential's secret")
else:
    s.required("OS_PASSWORD", None, "the password of OS_USERNAME")
    s.required("OS_PROJECT_NAME", None, "the project of OS_USERNAME")
for trait, variable, key in (
    ("region_name", "OS_REGION_NAME", "storage.regionName"),
    ("interface", "OS_INTERFACE", "storage.interface"),
    ("share_type", "IRIS_MANILA_SHARE_TYPE", "storage.shareType"),
    ("share_network_id", "IRIS_MANILA_SHARE_NETWORK_ID", "storage.shareNetworkId"),
    ("csi_driver", "IRIS_MANILA_CSI_DRIVER", "storage.csiDriver"),
    ("ceph_cluster_id", "IRIS_MANILA_CEPH_CLUSTER_ID", "storage.cephClusterId"),
    ("hub_name", "IRIS_MANILA_HUB_NAME", "storage.hubName"),
    ("init_image", "IRIS_MANILA_INIT_IMAGE", "storage.initImage"),
):
    if s.found(variable, key):
        c.ManilaStorage[trait] = s.optional(variable, key)
if s.found("IRIS_MANILA_SHARE_SIZE_GB", "storage.shareSizeGb"):
    c.ManilaStorage.share_size_gb = s.integer(
        "IRIS_MANILA_SHARE_SIZE_GB", "storage.shareSizeGb", 10, minimum=1
    )
group_shares = s.value("IRIS_MANILA_GROUP_SHARES", "storage.groupShares", dict)
if group_shares is not None:
    c.ManilaStorage.group_shares = group_shares
