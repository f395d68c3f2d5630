"""Start-up checks of every iris-jupyterhub component configured on this hub.

JupyterHub builds spawners only when a server starts, so a mistake in ``c.ManilaStorage``
or ``c.SessionAccounting`` would otherwise show first when a researcher spawns. The IRIS
authenticators are built at hub start-up and call :func:`check_config` with the hub's
configuration, so the hub refuses to start with a message naming the option. Hubs that
use ``IRISSpawner`` with another authenticator call it at the end of
``jupyterhub_config.py``::

    from iris_jupyterhub.startup import check_config
    check_config(c)
"""

from __future__ import annotations

from typing import Any

from traitlets.config import Config

__all__ = ["check_config"]


def _section(config: Any, name: str) -> Any:
    section = config.get(name) if isinstance(config, (dict, Config)) else None
    return section if isinstance(section, (dict, Config)) and section else None


def check_config(config: Any) -> None:
    """Build each configured component once, so its options are checked now.

    Only components with a section in ``config`` are built (and imported): a hub without
    storage does not import the OpenStack clients.

    Raises:
        ValueError: Naming the option to fix, e.g. ``ManilaStorage.ceph_cluster_id``.
    """
    if _section(config, "ManilaStorage") is not None:
        from .storage.spawner import check_config as check_storage  # noqa: PLC0415

        check_storage(config)
    if _section(config, "SessionAccounting") is not None:
        from .accounting.config import SessionAccounting  # noqa: PLC0415

        SessionAccounting(config=config)
