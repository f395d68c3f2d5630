"""iris-jupyterhub: JupyterHub plugins for the IRIS research-computing community."""

__version__ = "0.1.0.dev0"
