"""Hub configurations of the whole-stack tests and the benchmarks (``jupyterhub_config.py`` text).

Each is a fragment appended to :class:`~devstack.hub.HubProcess`'s base config; the IdP ones
carry an ``{issuer}`` placeholder that :func:`devstack.stacks.start_stack` fills in. Concatenate
them: ``IAM_HUB_CONFIG + KUBE_HUB_CONFIG + IRIS_SPAWNER_CONFIG``.
"""

from __future__ import annotations

from typing import Any

from .kube import DEFAULT_NAMESPACE

__all__ = [
    "CHECKIN_HUB_CONFIG",
    "IAM_HUB_CONFIG",
    "IRIS_SPAWNER_CONFIG",
    "IRIS_SPAWNER_PROFILES",
    "KUBE_HUB_CONFIG",
    "KUBE_IMAGE",
    "KUBE_NAMESPACE",
]

#: INDIGO IAM login: members of ``iris`` admitted, ``iris/admins`` are hub admins.
IAM_HUB_CONFIG = """
c.JupyterHub.authenticator_class = "iris-iam"
c.IAMAuthenticator.issuer = "{issuer}"
c.IAMAuthenticator.client_id = "hub"
c.IAMAuthenticator.client_secret = "s3cret"
c.IAMAuthenticator.allowed_groups = {"iris"}
c.IAMAuthenticator.admin_groups = {"iris/admins"}
c.IAMAuthenticator.http_timeout = 3
c.IAMAuthenticator.jwks_min_refetch_interval = 0
"""

#: EGI Check-in login: members of the ``vo.iris.ac.uk`` VO admitted.
CHECKIN_HUB_CONFIG = """
c.JupyterHub.authenticator_class = "egi-checkin"
c.EGICheckinAuthenticator.issuer = "{issuer}"
c.EGICheckinAuthenticator.client_id = "hub"
c.EGICheckinAuthenticator.client_secret = "s3cret"
c.EGICheckinAuthenticator.required_groups = {"vo.iris.ac.uk:role=member"}
c.EGICheckinAuthenticator.admin_groups = {"vo.iris.ac.uk/lsst/desc:role=manager"}
c.EGICheckinAuthenticator.entitlement_namespaces = [
    "urn:mace:egi.eu", "urn:geant:eduteams.org:service:eduteams"
]
"""

KUBE_NAMESPACE = DEFAULT_NAMESPACE
KUBE_IMAGE = "quay.io/jupyter/base-notebook:latest"

#: Plain KubeSpawner on the Kubernetes stand-in; appended after an IdP config
#: (HubProcess's base config sets a local-process spawner).
KUBE_HUB_CONFIG = f"""
c.JupyterHub.spawner_class = "kubespawner.KubeSpawner"
c.KubeSpawner.namespace = "{KUBE_NAMESPACE}"
c.KubeSpawner.image = "{KUBE_IMAGE}"
c.KubeSpawner.cmd = ["jupyterhub-singleuser"]
c.KubeSpawner.args = []
c.KubeSpawner.start_timeout = 60
c.KubeSpawner.http_timeout = 60
"""

#: IRISSpawner's profiles: a standard one for everyone (image choices and a checked custom
#: image), a GPU one for ``iris/lsst`` only.
IRIS_SPAWNER_PROFILES: list[dict[str, Any]] = [
    {
        "display_name": "Standard",
        "slug": "standard",
        "default": True,
        "resources": {"cpu": 1, "memory": "2G"},
        "profile_options": {
            "image": {
                "display_name": "Image",
                "choices": {
                    "base": {
                        "display_name": "Base",
                        "default": True,
                        "kubespawner_override": {"image": "quay.io/jupyter/base-notebook:latest"},
                    },
                    "scipy": {
                        "display_name": "SciPy",
                        "kubespawner_override": {"image": "quay.io/jupyter/scipy-notebook:latest"},
                    },
                },
                "unlisted_choice": {
                    "enabled": True,
                    "display_name": "Custom image",
                    "validation_regex": r"quay\.io/jupyter/[a-z-]+:[a-z0-9.-]+",
                    "allowed_image_registries": ["quay.io"],
                    "kubespawner_override": {"image": "{value}"},
                },
            }
        },
    },
    {
        "display_name": "LSST GPU",
        "slug": "lsst-gpu",
        "allowed_groups": ["iris/lsst"],
        "resources": {"cpu": 2, "memory": "4G", "gpu": 1},
        "kubespawner_override": {"extra_resource_limits": {"example.com/fpga": "1"}},
    },
]

#: IRISSpawner on the stand-in with :data:`IRIS_SPAWNER_PROFILES` and a zero server quota for
#: ``dune``; appended after ``IAM_HUB_CONFIG + KUBE_HUB_CONFIG``.
IRIS_SPAWNER_CONFIG = f"""
c.JupyterHub.spawner_class = "iris"
c.IRISSpawner.namespace = "jhub"
c.IRISSpawner.image = "quay.io/jupyter/base-notebook:latest"
c.IRISSpawner.cmd = ["jupyterhub-singleuser"]
c.IRISSpawner.args = []
c.IRISSpawner.start_timeout = 60
c.IRISSpawner.http_timeout = 60
c.IRISSpawner.profile_list = {IRIS_SPAWNER_PROFILES!r}
c.IRISSpawner.group_quotas = {{"dune": {{"servers": 0}}}}
"""
