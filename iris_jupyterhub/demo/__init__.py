"""A local demo hub (``make demo``): loopback OIDC provider, JupyterHub, proxy, and a
Kubernetes API stand-in (:mod:`~iris_jupyterhub.demo.kube`) that IRISSpawner spawns against.

Run it with ``python -m iris_jupyterhub.demo`` from a source checkout; see
``docs/admin/demo.md``.
"""
