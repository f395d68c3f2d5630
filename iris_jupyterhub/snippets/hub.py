"""What the templates need from the hub's side: Zero to JupyterHub's values, services,
the default profiles."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping
from typing import Any

from traitlets.config import Config

from .parsing import ValuesGetter

__all__ = [
    "HUB_ONLY_VARIABLES",
    "add_service",
    "check_hub_config",
    "default_profile_list",
    "service_environment",
    "z2jh_values",
]


def z2jh_values(namespace: Mapping[str, Any]) -> ValuesGetter | None:
    """The chart's values lookup when running inside Zero to JupyterHub, else ``None``.

    Inside the chart's ``jupyterhub_config.py`` (``hub.extraFiles``, ``hub.extraConfig``)
    ``namespace["get_config"]`` is ``z2jh.get_config``. Elsewhere the ``z2jh`` module is
    used when it is already loaded or importable (a hub pod of the chart).
    """
    getter = namespace.get("get_config")
    if not (callable(getter) and getattr(getter, "__module__", None) == "z2jh"):
        module = sys.modules.get("z2jh")
        if module is None:
            try:
                module = importlib.import_module("z2jh")
            except ImportError:
                return None
        getter = getattr(module, "get_config", None)
        if not callable(getter):
            return None
    found: Callable[..., Any] = getter

    def values(key: str) -> Any:
        return found(key, None)

    return values


def add_service(config: Config, service: Mapping[str, Any]) -> None:
    """Append ``service`` to ``c.JupyterHub.services`` unless one of that name is there.

    Works whether ``services`` is already a list (Zero to JupyterHub sets one) or not set
    yet (traitlets then appends to the trait's default).
    """
    services = config.JupyterHub.services
    named = service["name"]
    if isinstance(services, list) and any(
        isinstance(s, Mapping) and s.get("name") == named for s in services
    ):
        return
    services.append(dict(service))


HUB_ONLY_VARIABLES = ("CONFIGPROXY_AUTH_TOKEN", "JUPYTERHUB_CRYPT_KEY", "JPY_COOKIE_SECRET")
"""The hub's own secrets, which no configuration file reads: kept from services."""


def service_environment(environ: Mapping[str, str]) -> dict[str, str]:
    """The environment for a hub-managed service that loads the hub's configuration.

    JupyterHub starts services with an almost empty environment, but the hub's
    configuration reads the hub's (the templates' settings, and in Zero to JupyterHub
    the Kubernetes service addresses). The service is this package's code in the hub's
    container; only :data:`HUB_ONLY_VARIABLES` are left out.
    """
    return {k: v for k, v in environ.items() if k not in HUB_ONLY_VARIABLES}


def default_profile_list(gpu_groups: list[str], gpu_image: str = "") -> list[dict[str, Any]]:
    """The profiles of ``30-profiles.py`` when none are configured.

    ``Standard`` (2 CPUs, 4 GiB, 0.5 CPU and 2 GiB guaranteed) for everyone, the
    default; and, when ``gpu_groups`` is not empty, ``GPU`` (4 CPUs, 16 GiB, one GPU)
    for members of those groups only, with ``gpu_image`` when given.
    """
    profiles: list[dict[str, Any]] = [
        {
            "display_name": "Standard",
            "slug": "standard",
            "description": "2 CPUs, 4 GiB memory",
            "default": True,
            "resources": {
                "cpu": 2,
                "cpu_guarantee": 0.5,
                "memory": "4G",
                "memory_guarantee": "2G",
            },
        }
    ]
    if gpu_groups:
        gpu: dict[str, Any] = {
            "display_name": "GPU",
            "slug": "gpu",
            "description": "4 CPUs, 16 GiB memory, 1 GPU",
            "allowed_groups": list(gpu_groups),
            "resources": {"cpu": 4, "memory": "16G", "gpu": 1},
        }
        if gpu_image:
            gpu["kubespawner_override"] = {"image": gpu_image}
        profiles.append(gpu)
    return profiles


def check_hub_config(namespace: Mapping[str, Any], config: Config) -> None:
    """What ``99-iris-check.py`` does: :func:`iris_jupyterhub.startup.check_config` now.

    Inside Zero to JupyterHub, and for a hub's own ``jupyterhub_config.py``, ``config`` is
    the whole configuration loaded so far. traitlets' ``load_subconfig`` instead gives
    each file a configuration of its own, merged into the hub's afterwards, so the check
    cannot see the other files from there: in a running hub this is logged as a warning
    naming the fix (call ``check_config(c)`` at the end of the hub's file). The IRIS
    authenticators run the same check on the whole configuration when the hub starts.

    Raises:
        ValueError: Naming the option to fix (from ``check_config``).
    """
    from ..startup import check_config  # noqa: PLC0415

    check_config(config)
    here = namespace.get("__file__")
    if z2jh_values(namespace) is not None or not isinstance(here, str):
        return
    from jupyterhub.app import JupyterHub  # noqa: PLC0415 - only inside a hub

    if not JupyterHub.initialized():
        return
    app = JupyterHub.instance()
    main = os.path.abspath(str(app.config_file))
    if os.path.abspath(here) != main:
        app.log.warning(
            "%s was loaded with load_subconfig, so it checked only its own settings; to "
            "check the whole configuration at start-up, end %s with: "
            "from iris_jupyterhub.startup import check_config; check_config(c)",
            os.path.basename(here),
            main,
        )
