"""Rucio in notebooks: a Rucio access token per user and instance, kept fresh in their server.

The hub side (configuration, the token endpoint, onboarding) and the notebook side (the
Jupyter Server extension :mod:`~iris_jupyterhub.rucio.extension`, the token files and the
:func:`client` helper) share this package. Nothing here imports Jupyter Server or the Rucio
client when the package is imported.
"""

from __future__ import annotations

# -- the notebook side (token files, client configuration, the client helper) --------------
from .clientcfg import (
    NotebookInstance,
    NotebookSettings,
    configure_rucio_jupyterlab,
    render_rucio_cfg,
    rucio_jupyterlab_config,
    settings_from_env,
)
from .helper import RucioTokenUnavailableError, client, instances, read_token, token_file

__all__ = [
    "NotebookInstance",
    "NotebookSettings",
    "RucioTokenUnavailableError",
    "client",
    "configure_rucio_jupyterlab",
    "instances",
    "read_token",
    "render_rucio_cfg",
    "rucio_jupyterlab_config",
    "settings_from_env",
    "token_file",
]
