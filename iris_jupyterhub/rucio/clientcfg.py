"""The notebook side's view of the Rucio instances, and the client configurations made from it.

The hub puts the instances a researcher may use in the server's environment
(``IRIS_RUCIO_INSTANCES``, a JSON list without secrets) together with ``IRIS_RUCIO_DIR``,
the private directory the token files go to. From these, pure functions build:

- the Rucio client configuration of an instance (:func:`render_rucio_cfg`), written to
  ``<dir>/<name>.cfg`` and, for the default instance, to ``<dir>/rucio.cfg``
  (``RUCIO_CONFIG``);
- rucio-jupyterlab's ``c.RucioConfig`` for file-based tokens
  (:func:`rucio_jupyterlab_config`, :func:`configure_rucio_jupyterlab`).

Nothing here imports the Rucio client, rucio-jupyterlab or Jupyter Server.
"""

from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .files import InstanceFiles

__all__ = [
    "DEFAULT_CA_BUNDLE",
    "DIR_ENV",
    "INSTANCES_ENV",
    "NotebookInstance",
    "NotebookSettings",
    "configure_rucio_jupyterlab",
    "parse_instances",
    "render_rucio_cfg",
    "rucio_jupyterlab_config",
    "settings_from_env",
]

DIR_ENV = "IRIS_RUCIO_DIR"
INSTANCES_ENV = "IRIS_RUCIO_INSTANCES"
# rucio-jupyterlab's download mode requires a CA file; the system bundle of the
# docker-stacks (Ubuntu) images serves instances whose certificate a public CA signed.
DEFAULT_CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,62}")
_TEXT_FIELDS = ("display_name", "rucio_host", "auth_host", "vo", "account", "ca_cert")
log = logging.getLogger(__name__)


@dataclass(frozen=True)
class NotebookInstance:
    """One Rucio instance as the server's environment describes it (no secrets)."""

    name: str
    display_name: str
    rucio_host: str
    auth_host: str
    vo: str = ""
    account: str = ""
    ca_cert: str = ""
    default: bool = False


@dataclass(frozen=True)
class NotebookSettings:
    """The token directory and instances (``IRIS_RUCIO_DIR``, ``IRIS_RUCIO_INSTANCES``)."""

    directory: Path
    instances: tuple[NotebookInstance, ...]

    @property
    def default(self) -> NotebookInstance:
        """The instance ``rucio.cfg`` and ``BEARER_TOKEN_FILE`` are for."""
        return next((i for i in self.instances if i.default), self.instances[0])

    def files(self, instance: NotebookInstance | str) -> InstanceFiles:
        """The paths of one instance's files."""
        name = instance if isinstance(instance, str) else instance.name
        return InstanceFiles(self.directory, name)

    def find(self, name: str | None) -> NotebookInstance:
        """The instance called ``name`` (the default one for None), else :class:`KeyError`."""
        if name is None:
            return self.default
        for instance in self.instances:
            if instance.name == name:
                return instance
        raise KeyError(name)

    @property
    def rucio_cfg(self) -> Path:
        """``<dir>/rucio.cfg``: the default instance's client configuration (``RUCIO_CONFIG``)."""
        return self.directory / "rucio.cfg"


def _instance(item: object, index: int) -> NotebookInstance:
    where = f"{INSTANCES_ENV}[{index}]"
    if not isinstance(item, Mapping):
        raise ValueError(f"{where} must be an object, not {type(item).__name__}")
    name = item.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise ValueError(f"{where}.name must be letters, digits, '-' or '_' (got {name!r})")
    values: dict[str, str] = {}
    for key in _TEXT_FIELDS:
        value = item.get(key) or ""
        if not isinstance(value, str) or any(ch in value for ch in "\r\n\0"):
            raise ValueError(f"{where}.{key} must be a one-line string")
        values[key] = value.strip()
    if not values["rucio_host"].startswith(("https://", "http://")):
        raise ValueError(f"{where}.rucio_host must be an http(s) URL")
    return NotebookInstance(
        name=name,
        display_name=values["display_name"] or name,
        rucio_host=values["rucio_host"],
        auth_host=values["auth_host"] or values["rucio_host"],
        vo=values["vo"],
        account=values["account"],
        ca_cert=values["ca_cert"],
        default=item.get("default") is True,
    )


def parse_instances(text: str) -> tuple[NotebookInstance, ...]:
    """The instances of an ``IRIS_RUCIO_INSTANCES`` value; :class:`ValueError` says what is wrong.

    When none is marked ``default`` the first one is the default; more than one is an error.
    """
    try:
        items = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{INSTANCES_ENV} is not JSON: {error}") from None
    if not isinstance(items, list) or not items:
        raise ValueError(f"{INSTANCES_ENV} must be a non-empty JSON list")
    instances = tuple(_instance(item, index) for index, item in enumerate(items))
    names = [i.name for i in instances]
    if len(set(names)) != len(names):
        raise ValueError(f"{INSTANCES_ENV} names an instance twice: {names}")
    if sum(i.default for i in instances) > 1:
        raise ValueError(f"{INSTANCES_ENV} marks more than one instance as default")
    default = next((i for i in instances if i.default), instances[0])
    if "rucio" in names and default.name != "rucio":
        # its <name>.cfg would be rucio.cfg, the default instance's configuration
        raise ValueError(f"{INSTANCES_ENV}: only the default instance may be called 'rucio'")
    return instances


def settings_from_env(environ: Mapping[str, str] | None = None) -> NotebookSettings | None:
    """The settings in ``environ`` (default ``os.environ``); None when Rucio is not offered.

    Rucio is offered when ``IRIS_RUCIO_INSTANCES`` is set and not empty; then
    ``IRIS_RUCIO_DIR`` must be an absolute path, else :class:`ValueError`.
    """
    env = os.environ if environ is None else environ
    text = env.get(INSTANCES_ENV, "").strip()
    if not text:
        return None
    directory = env.get(DIR_ENV, "")
    if not os.path.isabs(directory):
        raise ValueError(f"{DIR_ENV} must be an absolute path when {INSTANCES_ENV} is set")
    return NotebookSettings(Path(directory), parse_instances(text))


def _cfg_value(value: str) -> str:
    # The client reads rucio.cfg with configparser's default (%-)interpolation.
    return value.replace("%", "%%")


def render_rucio_cfg(instance: NotebookInstance, token_file: Path) -> str:
    """The Rucio client configuration (``rucio.cfg``) of ``instance``.

    ``auth_type = oidc`` makes the client look for a bearer token (``BEARER_TOKEN``,
    ``BEARER_TOKEN_FILE``, ``$XDG_RUNTIME_DIR/bt_u<uid>``, ``/tmp/bt_u<uid>``) before
    ``auth_token_file_path``; an empty ``account``, ``vo`` or ``ca_cert`` is left out so the
    client's own defaults apply (the identity's default account, VO ``def``, the system CAs).
    """
    lines = [
        "# Written by the notebook server's Rucio extension (iris_jupyterhub.rucio) at start-up",
        f"# for the Rucio instance {instance.name!r} ({instance.display_name}); edits are lost.",
        "[client]",
        f"rucio_host = {_cfg_value(instance.rucio_host)}",
        f"auth_host = {_cfg_value(instance.auth_host)}",
        "auth_type = oidc",
    ]
    for key in ("account", "vo", "ca_cert"):
        value = getattr(instance, key)
        if value:
            lines.append(f"{key} = {_cfg_value(value)}")
    lines.append(f"auth_token_file_path = {_cfg_value(str(token_file))}")
    return "\n".join(lines) + "\n"


def rucio_jupyterlab_config(
    settings: NotebookSettings,
    *,
    mode: str = "download",
    ca_bundle: str = DEFAULT_CA_BUNDLE,
    extra: Mapping[str, Mapping[str, Any]] | None = None,
) -> dict[str, Any]:
    """rucio-jupyterlab's ``RucioConfig`` settings for ``settings``' instances.

    Each instance reads its token from ``<dir>/<name>.token`` (``oidc_auth = file``), which
    rucio-jupyterlab re-reads once the token it holds has expired. ``mode`` is
    ``download`` (files are downloaded into the server) or ``replica`` (an RSE is
    mounted; each instance then needs ``destination_rse`` and ``rse_mount_path`` in
    ``extra[<name>]``). ``extra[<name>]`` adds or overrides any instance key.
    """
    if mode not in ("download", "replica"):
        raise ValueError(f"rucio-jupyterlab mode must be 'download' or 'replica', not {mode!r}")
    instances = []
    for instance in settings.instances:
        entry: dict[str, Any] = {
            "name": instance.name,
            "display_name": instance.display_name,
            "rucio_base_url": instance.rucio_host,
            "rucio_auth_url": instance.auth_host,
            "rucio_ca_cert": instance.ca_cert or ca_bundle,
            "mode": mode,
            "oidc_auth": "file",
            "oidc_file_name": str(settings.files(instance).token),
        }
        if instance.vo:
            entry["vo"] = instance.vo
        entry.update((extra or {}).get(instance.name, {}))
        missing = _replica_missing(entry)
        if missing:
            raise ValueError(f"rucio-jupyterlab replica mode: {instance.name} needs {missing}")
        instances.append(entry)
    return {
        "instances": instances,
        "default_instance": settings.default.name,
        "default_auth_type": "oidc",
    }


def _replica_missing(entry: Mapping[str, Any]) -> list[str]:
    if entry.get("mode") != "replica":
        return []
    return [key for key in ("destination_rse", "rse_mount_path") if not entry.get(key)]


def configure_rucio_jupyterlab(
    c: Any, environ: Mapping[str, str] | None = None, **options: Any
) -> bool:
    """Set ``c.RucioConfig`` from the environment; True when Rucio is offered.

    For a Jupyter Server configuration file (``c = get_config()``); ``options`` are those
    of :func:`rucio_jupyterlab_config`. A malformed environment is logged and leaves
    rucio-jupyterlab unconfigured (the server still starts); bad ``options`` raise.
    """
    try:
        settings = settings_from_env(environ)
    except ValueError as error:
        log.error("Rucio: rucio-jupyterlab is not configured: %s", error)
        return False
    if settings is None:
        return False
    for key, value in rucio_jupyterlab_config(settings, **options).items():
        setattr(c.RucioConfig, key, value)
    return True


def instance_names(instances: Sequence[NotebookInstance]) -> str:
    """``a, b, c``: for messages."""
    return ", ".join(i.name for i in instances)
