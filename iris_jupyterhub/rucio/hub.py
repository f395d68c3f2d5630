"""Wiring the Rucio token endpoint into a hub's configuration: one call.

::

    from iris_jupyterhub.rucio import configure_hub

    configure_hub(c, instances=[{...}])

does three things with JupyterHub's documented options:

1. defines the custom scope ``custom:iris-rucio-token`` (``c.JupyterHub.custom_scopes``);
2. grants it to every user, filtered to themselves (``custom:iris-rucio-token!user``):
   ``c.JupyterHub.extra_user_scopes`` on JupyterHub 6, else the ``user`` role in
   ``c.JupyterHub.load_roles`` (JupyterHub 5 merges a redefined default role with its
   defaults; the role's other scopes, ``self`` included, are kept);
3. asks for it in every server's ``JUPYTERHUB_API_TOKEN``
   (``c.Spawner.server_token_scopes``: the ``server`` role's scopes plus this one, or the
   list already configured plus this one). JupyterHub gives a server token only scopes
   its user holds, so each server can fetch its own user's token and no one else's.

The endpoint itself is registered by the IRIS authenticators (``get_handlers``) when
``c.RucioTokens.instances`` is not empty; nothing here gives any token
``admin:auth_state``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from traitlets.config import Config
from traitlets.config.loader import LazyConfigValue

from .config import SCOPE

__all__ = ["USER_SCOPE", "configure_hub", "server_token_scopes"]

USER_SCOPE = f"{SCOPE}!user"
"""The grant: each user (and their servers) may fetch only their own Rucio tokens."""

SCOPE_DEFINITION = {
    "description": "Fetch your own Rucio access tokens from the hub (notebook servers use it).",
}


def _default_role_scopes(name: str) -> list[str]:
    from jupyterhub.roles import get_default_roles  # noqa: PLC0415

    role = next(r for r in get_default_roles() if r["name"] == name)
    return list(role.get("scopes", []))


def _roles(config: Config) -> list[Any] | None:
    roles = config.JupyterHub.get("load_roles")
    return roles if isinstance(roles, list) else None


def server_token_scopes(current: object, roles: Sequence[Any] | None) -> Any:
    """``Spawner.server_token_scopes`` with :data:`USER_SCOPE` added.

    ``current`` is the configured value (a list, a callable, or nothing); without one the
    scopes of the ``server`` role are the base (a ``server`` role in ``load_roles`` wins
    over JupyterHub's default one), as JupyterHub would use them.
    """
    if callable(current):
        wrapped: Callable[[Any], Any] = current

        async def with_rucio(spawner: Any) -> list[str]:
            value = wrapped(spawner)
            if hasattr(value, "__await__"):
                value = await value
            base = list(value or []) or _server_role_scopes(roles)
            return base if USER_SCOPE in base else [*base, USER_SCOPE]

        return with_rucio
    base = list(current) if isinstance(current, (list, tuple)) and current else None
    base = base or _server_role_scopes(roles)
    return base if USER_SCOPE in base else [*base, USER_SCOPE]


def _server_role_scopes(roles: Sequence[Any] | None) -> list[str]:
    for role in roles or ():
        if isinstance(role, Mapping) and role.get("name") == "server" and "scopes" in role:
            return list(role["scopes"])
    return _default_role_scopes("server")


def _grant_to_users(config: Config, jupyterhub_major: int) -> None:
    roles = _roles(config)
    if jupyterhub_major >= 6 and not any(
        isinstance(r, Mapping) and r.get("name") == "user" for r in roles or ()
    ):
        extra = config.JupyterHub.extra_user_scopes
        if isinstance(extra, (set, list)):
            config.JupyterHub.extra_user_scopes = {*extra, USER_SCOPE}
        else:
            extra.update({USER_SCOPE})
        return
    for role in roles or ():
        if isinstance(role, dict) and role.get("name") == "user":
            scopes = list(role.get("scopes") or _default_role_scopes("user"))
            role["scopes"] = scopes if USER_SCOPE in scopes else [*scopes, USER_SCOPE]
            return
    user_role = {"name": "user", "scopes": [*_default_role_scopes("user"), USER_SCOPE]}
    if roles is not None:
        roles.append(user_role)
    else:
        lazy = config.JupyterHub.load_roles
        if isinstance(lazy, LazyConfigValue):
            lazy.append(user_role)
        else:
            config.JupyterHub.load_roles = [user_role]


def configure_hub(
    config: Config,
    instances: Sequence[Mapping[str, Any]] | None = None,
    *,
    jupyterhub_major: int | None = None,
) -> None:
    """Wire the Rucio token endpoint into ``config`` (a hub's ``c``); see the module doc.

    ``instances``, when given, become ``c.RucioTokens.instances``. ``jupyterhub_major``
    defaults to the installed JupyterHub's major version.
    """
    if jupyterhub_major is None:
        from jupyterhub import version_info  # noqa: PLC0415

        jupyterhub_major = int(version_info[0])
    if instances is not None:
        config.RucioTokens.instances = [dict(i) for i in instances]
    custom = config.JupyterHub.custom_scopes
    if isinstance(custom, dict):
        config.JupyterHub.custom_scopes = {**custom, SCOPE: dict(SCOPE_DEFINITION)}
    else:
        custom.update({SCOPE: dict(SCOPE_DEFINITION)})
    _grant_to_users(config, jupyterhub_major)
    current = config.Spawner.get("server_token_scopes")
    config.Spawner.server_token_scopes = server_token_scopes(current, _roles(config))
