"""Give every login a POSIX account from the :class:`~iris_jupyterhub.posix.IdentityRegistry`.

The authenticator calls :func:`map_login` on every login and refresh; the result is stored
in ``auth_state["posix"]`` as ``{"uid", "gid", "username", "groups": [{"name", "gid"}]}``
for the spawner. Registry failures become pages a researcher understands (503 when the
registry cannot answer, 403 when the identity's records are inconsistent: the status
each :class:`~iris_jupyterhub.posix.RegistryError` class carries), with the
technical reason in the hub log; a login never proceeds without its POSIX account.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable
from typing import Any

from ..db import registry_db_url
from ..posix import IdentityKey, IdentityRegistry, RegistryError

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
        tornado.web.HTTPError: The status of the :class:`~iris_jupyterhub.posix.RegistryError`
            raised: 503 (with ``Retry-After``) when the registry is unavailable or out of
            ids, 403 when the identity's records conflict with another identity's (never
            shared) or it cannot be a key.
    """
    key: IdentityKey | None = None
    try:
        key = IdentityKey(identity["issuer"], identity["subject"])
        account = await asyncio.get_running_loop().run_in_executor(
            None, registry.map_identity, key, name_hint, sorted(set(groups))
        )
    except RegistryError as e:
        who = str(key) if key is not None else "an identity that cannot be a key"
        if e.status < 500:
            log.error("POSIX mapping refused for %s: %s", who, e)
        else:
            log.error("POSIX identity registry failed for %s: %s", who, e)
        raise e.to_http_error() from e
    return account.to_auth_state()
