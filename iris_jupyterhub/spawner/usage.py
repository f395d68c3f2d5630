"""The hub's :class:`~iris_jupyterhub.spawner.quotas.GroupUsage`: one per hub database.

The running totals live in the hub process. They are not persisted a second time: the hub
database already holds what each running server uses (the ``iris`` block of its spawner
state, saved by JupyterHub once the server starts), so the totals are rebuilt from it once,
at the first spawn or stop after the hub starts (one query over the running servers), and
kept up to date from then on by :class:`~iris_jupyterhub.spawner.IRISSpawner`: counted when
a spawn passes the quota check, released when the server stops or fails to start
(JupyterHub clears the spawner's state in both cases). A second copy could drift from the
database after a crash; a rebuild from it cannot.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any

from jupyterhub import orm

from .quotas import GroupUsage
from .resources import ResourceTotals

__all__ = ["STATE_KEY", "built_usage", "hub_usage", "state_totals"]

#: The key of IRISSpawner's block in the spawner state (group, charge group, resources).
STATE_KEY = "iris"

_USAGE: weakref.WeakKeyDictionary[Any, GroupUsage] = weakref.WeakKeyDictionary()


def state_totals(info: Mapping[str, Any]) -> ResourceTotals:
    """The resources of one server from its saved ``iris`` state block."""
    return ResourceTotals(
        cpu=float(info.get("cpu") or 0),
        memory=int(info.get("memory") or 0),
        gpu=int(info.get("gpu") or 0),
    )


def _engine(db: Any) -> Any:
    return db.get_bind()


def built_usage(db: Any) -> GroupUsage | None:
    """The hub's totals if they have been built in this process, else ``None``."""
    return _USAGE.get(_engine(db))


def hub_usage(db: Any) -> GroupUsage:
    """The hub's totals, rebuilt from the running servers' saved state on first use."""
    engine = _engine(db)
    usage = _USAGE.get(engine)
    if usage is None:
        usage = GroupUsage()
        for orm_spawner in db.query(orm.Spawner).filter(orm.Spawner.server_id.isnot(None)):
            info = (orm_spawner.state or {}).get(STATE_KEY) or {}
            if info.get("group"):
                usage.add(orm_spawner.id, info["group"], state_totals(info))
        _USAGE[engine] = usage
    return usage
