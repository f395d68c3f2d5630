"""Give every login a POSIX account from the :class:`~iris_jupyterhub.posix.IdentityRegistry`.

The authenticator calls :func:`map_login` on every login and refresh; the result is stored
in ``auth_state["posix"]`` as ``{"uid", "gid", "username", "groups": [{"name", "gid"}]}``
for the spawner. Registry failures become pages a researcher understands (503 when the
registry cannot answer, 403 when the identity's records are inconsistent), with the
technical reason in the hub log; a login never proceeds without its POSIX account.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from tornado import web

from ..db import registry_db_url
from ..errors import http_error
from ..posix import (
    IdentityConflictError,
    IdentityKey,
    IdentityRegistry,
    InvalidIdentityError,
    RegistryError,
)

__all__ = ["make_registry", "map_login"]


def make_registry(authenticator: Any) -> IdentityRegistry:
    """The registry configured as ``c.IdentityRegistry.*``, on the hub's default database.

    The database is :func:`iris_jupyterhub.db.registry_db_url` of the hub's configuration
    and the running hub's database (the authenticator's parent application), as the
    ``iris-jupyterhub`` commands find it.
    """
    hub_db = str(getattr(authenticator.parent, "db_url", "") or "") or None
    url = registry_db_url(authenticator.config, hub_db=hub_db)
    return IdentityRegistry(parent=authenticator, db_url=url)


async def map_login(
    registry: IdentityRegistry,
    identity: dict[str, str],
    name_hint: str | None,
    groups: Iterable[str],
    log: logging.Logger,
) -> dict[str, Any]:
    """Map one identity and its canonical groups; return the ``auth_state["posix"]`` dict.

    Raises:
        tornado.web.HTTPError: 503 when the registry is unavailable or out of ids, 403 when
            the identity's records conflict with another identity's (never shared).
    """
    key = IdentityKey(identity["issuer"], identity["subject"])
    try:
        account = await asyncio.get_running_loop().run_in_executor(
            None, registry.map_identity, key, name_hint, sorted(set(groups))
        )
    except (IdentityConflictError, InvalidIdentityError) as e:
        log.error("POSIX mapping refused for %s: %s", key, e)
        raise http_error(403, e.user_message) from e
    except RegistryError as e:
        log.error("POSIX identity registry failed for %s: %s", key, e)
        raise http_error(503, e.user_message, headers={"Retry-After": "60"}) from e
    except web.HTTPError:
        raise
    return account.to_auth_state()
