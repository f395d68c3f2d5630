"""Settings of the ``jupyterhub_config.d/`` templates, read the same way everywhere.

The templates (one file per concern: login, identity registry, profiles, storage,
accounting, the start-up check) work unchanged in three places:

* a plain hub: the file is the hub's ``-f`` configuration, or a ``jupyterhub_config.py``
  pulls it in with traitlets' ``load_subconfig``;
* Zero to JupyterHub ``hub.extraFiles``: the chart's ``jupyterhub_config.py`` ``exec``\\ s
  the file in its own globals, where ``c`` exists and ``get_config`` is the chart's
  ``z2jh.get_config(key)`` (so traitlets' ``get_config()`` cannot be called there);
* Zero to JupyterHub ``hub.extraConfig``: the same globals, the text pasted into values.

Each template starts with::

    from iris_jupyterhub.snippets import SnippetSettings

    s = SnippetSettings(globals(), "20-identity-registry.py")
    c = s.config
    c.IdentityRegistry.db_url = s.required("IRIS_REGISTRY_DB_URL", None)

A setting is read from its environment variable first; inside Zero to JupyterHub (the
chart's ``z2jh`` module is loaded) it is then read from the chart's values under
``custom.iris.<key>``. A key of ``None`` marks a secret: only the environment is read.
A missing required setting, or a malformed one, raises :class:`SnippetSettingError`
naming the template, the variable and the values key, so the hub stops at start-up.
The parsing is done by pure functions (:func:`parse_groups`, :func:`parse_integer`, ...)
on plain data.
"""

from .hub import (
    HUB_ONLY_VARIABLES,
    add_service,
    check_hub_config,
    default_profile_list,
    service_environment,
    z2jh_values,
)
from .parsing import (
    VALUES_PREFIX,
    Raw,
    Setting,
    SnippetSettingError,
    lookup,
    parse_boolean,
    parse_groups,
    parse_integer,
    parse_structured,
    parse_text,
)
from .settings import SnippetSettings

__all__ = [
    "HUB_ONLY_VARIABLES",
    "VALUES_PREFIX",
    "Raw",
    "Setting",
    "SnippetSettingError",
    "SnippetSettings",
    "add_service",
    "check_hub_config",
    "default_profile_list",
    "lookup",
    "parse_boolean",
    "parse_groups",
    "parse_integer",
    "parse_structured",
    "parse_text",
    "service_environment",
    "z2jh_values",
]
