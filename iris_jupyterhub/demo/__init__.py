"""A local demo hub (``make demo``): loopback OIDC provider, JupyterHub, proxy.

Run it with ``python -m iris_jupyterhub.demo`` from a source checkout; see
``docs/admin/demo.md``.
"""
