"""Start-up checks of every iris-jupyterhub component configured on this hub.

JupyterHub builds spawners only when a server starts, so a mistake in ``c.IRISSpawner``,
``c.ManilaStorage``, ``c.SessionAccounting`` or ``c.RucioTokens`` would otherwise show
first when a researcher spawns. The IRIS
authenticators are built at hub start-up and call :func:`check_config` with the hub's
configuration, so the hub refuses to start with a message naming the option. Hubs that
use ``IRISSpawner`` with another authenticator call it at the end of
``jupyterhub_config.py``::

    from iris_jupyterhub.startup import check_config
    check_config(c)
"""

from __future__ import annotations

from importlib.metadata import entry_points
from typing import Any

from traitlets.config import Config, Configurable
from traitlets.utils.importstring import import_item

__all__ = ["check_config", "spawner_sections"]


def _section(config: Any, name: str) -> Any:
    section = config.get(name) if isinstance(config, (dict, Config)) else None
    return section if isinstance(section, (dict, Config)) and section else None


def _spawner_class(value: Any) -> type | None:
    """The class ``c.JupyterHub.spawner_class`` names (as JupyterHub loads it), or None."""
    if isinstance(value, type):
        return value
    if not isinstance(value, str) or not value:
        return None
    try:
        found = list(entry_points(group="jupyterhub.spawners", name=value))
        loaded = found[0].load() if found else None
        if loaded is None and "." in value:
            loaded = import_item(value)
    except Exception:  # JupyterHub itself reports a spawner class it cannot load
        return None
    return loaded if isinstance(loaded, type) else None


def spawner_sections(config: Any) -> list[str] | None:
    """The sections configuring the hub's ``IRISSpawner``, the most specific first.

    ``None`` when the hub does not use ``IRISSpawner`` (neither ``spawner_class`` is it,
    or a subclass, nor is there a ``c.IRISSpawner`` section).
    """
    hub = _section(config, "JupyterHub")
    cls = _spawner_class(hub.get("spawner_class") if hub is not None else None)
    if cls is not None and any(c.__name__ == "IRISSpawner" for c in cls.__mro__):
        return [c.__name__ for c in cls.__mro__ if issubclass(c, Configurable)]
    if _section(config, "IRISSpawner") is not None:
        from .spawner.checks import SPAWNER_SECTIONS  # noqa: PLC0415

        return list(SPAWNER_SECTIONS)
    return None


def check_config(config: Any) -> None:
    """Build each configured component once, so its options are checked now.

    Only components with a section in ``config`` are built (and imported): a hub without
    storage does not import the OpenStack clients. ``IRISSpawner``'s options are checked
    when it is the hub's ``spawner_class`` (``"iris"``, the class or a subclass) or has a
    section, with the spawner's own validation functions and without building a spawner
    (which would need a Kubernetes configuration).

    Raises:
        ValueError: Naming the option to fix, e.g. ``ManilaStorage.ceph_cluster_id``.
    """
    sections = spawner_sections(config)
    if sections is not None:
        from .spawner.checks import check_spawner_config  # noqa: PLC0415

        check_spawner_config(config, sections)
    if _section(config, "ManilaStorage") is not None:
        from .storage.spawner import check_config as check_storage  # noqa: PLC0415

        check_storage(config)
    if _section(config, "SessionAccounting") is not None:
        from .accounting.config import SessionAccounting  # noqa: PLC0415

        SessionAccounting(config=config)
    if _section(config, "RucioTokens") is not None:
        from .rucio.config import RucioTokens  # noqa: PLC0415

        RucioTokens(config=config)
