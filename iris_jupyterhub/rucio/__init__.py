"""Rucio in notebooks: short-lived Rucio access tokens that stay fresh, never a refresh token.

Hub side (this package's :mod:`~iris_jupyterhub.rucio.config`,
:mod:`~iris_jupyterhub.rucio.tokens`, :mod:`~iris_jupyterhub.rucio.handler`,
:mod:`~iris_jupyterhub.rucio.hub`, :mod:`~iris_jupyterhub.rucio.pod` and
:mod:`~iris_jupyterhub.rucio.cli`; the token requests themselves are made by the IRIS
authenticators, :mod:`iris_jupyterhub.auth.rucio`):

* ``c.RucioTokens.instances``: the Rucio instances offered and to which groups;
* ``GET /hub/api/iris/rucio/<instance>/token``: a user's server fetches a Rucio-audience
  access token with its own API token (custom scope ``custom:iris-rucio-token!user``);
* ``IRISSpawner`` sets ``IRIS_RUCIO_DIR``, ``IRIS_RUCIO_INSTANCES``, ``BEARER_TOKEN_FILE``,
  ``RUCIO_CONFIG`` and rucio-jupyterlab's ``RUCIO_OIDC_*`` for users who get an instance;
* ``iris-jupyterhub rucio identities`` prints the ``rucio-admin identity add`` lines that
  map users' OIDC identities to Rucio accounts.

Public API::

    from iris_jupyterhub.rucio import RucioTokens, configure_hub
"""

from .config import (
    DEFAULT_NOTEBOOK_DIR,
    ROUTE,
    SCOPE,
    RucioInstance,
    RucioTokens,
    account_for,
    instances_for,
    validate_instances,
)
from .hub import USER_SCOPE, configure_hub
from .pod import RucioPod, rucio_pod
from .tokens import REASONS, RucioTokenError

__all__ = [
    "DEFAULT_NOTEBOOK_DIR",
    "REASONS",
    "ROUTE",
    "SCOPE",
    "USER_SCOPE",
    "RucioInstance",
    "RucioPod",
    "RucioTokenError",
    "RucioTokens",
    "account_for",
    "configure_hub",
    "instances_for",
    "rucio_pod",
    "validate_instances",
]

# -- the notebook side (R2): token files, client configuration, the client helper ----------
# Nothing of it imports Jupyter Server or the Rucio client (see iris_jupyterhub.rucio.helper).
from .clientcfg import (
    NotebookInstance,
    NotebookSettings,
    configure_rucio_jupyterlab,
    render_rucio_cfg,
    rucio_jupyterlab_config,
    settings_from_env,
)
from .helper import (
    RucioTokenUnavailableError,
    client,
    instances,
    read_token,
    token_file,
)

__all__ += [
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
