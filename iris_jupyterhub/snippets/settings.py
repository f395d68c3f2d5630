"""``SnippetSettings``: what a template reads its settings and configuration through."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no type hints
from traitlets.config import Config

from .hub import z2jh_values
from .parsing import (
    Raw,
    Setting,
    SnippetSettingError,
    ValuesGetter,
    lookup,
    parse_boolean,
    parse_groups,
    parse_integer,
    parse_structured,
    parse_text,
)

__all__ = ["SnippetSettings"]


class SnippetSettings:
    """The settings of one template, and the configuration object it writes to.

    Args:
        namespace: the template's ``globals()``.
        snippet: the template's file name, named in every error.
        environ: the environment (default ``os.environ``).
        values: the chart's values lookup (default: :func:`z2jh_values` of ``namespace``).
    """

    def __init__(
        self,
        namespace: Mapping[str, Any],
        snippet: str,
        *,
        environ: Mapping[str, str] | None = None,
        values: ValuesGetter | None = None,
    ) -> None:
        self.namespace = namespace
        self.snippet = snippet
        self.environ: Mapping[str, str] = os.environ if environ is None else environ
        self.values = values if values is not None else z2jh_values(namespace)

    @property
    def in_z2jh(self) -> bool:
        """Whether the chart's values are read (running inside Zero to JupyterHub)."""
        return self.values is not None

    @property
    def config(self) -> Config:
        """The hub's configuration: the loader's ``c``, else traitlets' ``get_config()``."""
        c = self.namespace.get("c")
        if isinstance(c, Config):
            return c
        getter = self.namespace.get("get_config")
        if callable(getter) and getattr(getter, "__module__", None) != "z2jh":
            config = getter()
            if isinstance(config, Config):
                return config
        raise SnippetSettingError(
            f"{self.snippet}: no JupyterHub configuration to write to; load this file as a "
            "hub configuration file (jupyterhub -f, load_subconfig, or Zero to JupyterHub "
            "hub.extraFiles / hub.extraConfig)"
        )

    def _error(self, setting: Setting, problem: str, help: str = "") -> SnippetSettingError:
        what = f" ({help})" if help else ""
        return SnippetSettingError(f"{self.snippet}: {problem}: {setting.where()}{what}")

    def _parse(self, setting: Setting, parser: Callable[[Raw], Any], help: str) -> Any:
        raw = lookup(setting, self.environ, self.values)
        if raw is None:
            return None
        try:
            return parser(raw)
        except ValueError as e:
            name = setting.variable if raw.source == "env" else str(setting.values_key)
            shown = "" if setting.key is None else f" = {str(raw.value)[:60]!r}"
            raise self._error(setting, f"{name}{shown} {e}", help) from None

    def found(self, variable: str, key: str | None) -> bool:
        """Whether the setting is given at all (non-empty)."""
        return lookup(Setting(variable, key), self.environ, self.values) is not None

    def required(self, variable: str, key: str | None, help: str = "") -> str:
        """Text that must be given; ``key`` ``None``: a secret, environment only."""
        setting = Setting(variable, key)
        value = self._parse(setting, parse_text, help)
        if not value:
            raise self._error(setting, f"{variable} is not set", help)
        return str(value)

    def optional(self, variable: str, key: str | None, default: str = "", help: str = "") -> str:
        """Text, or ``default`` when not given."""
        value = self._parse(Setting(variable, key), parse_text, help)
        return default if value is None else str(value)

    def groups(self, variable: str, key: str | None, help: str = "") -> list[str]:
        """Group names (comma-separated or a YAML list); empty when not given."""
        value = self._parse(Setting(variable, key), parse_groups, help)
        return [] if value is None else list(value)

    def integer(
        self,
        variable: str,
        key: str | None,
        default: int,
        minimum: int | None = None,
        help: str = "",
    ) -> int:
        """A whole number, or ``default`` when not given."""
        value = self._parse(Setting(variable, key), lambda r: parse_integer(r, minimum), help)
        return default if value is None else int(value)

    def boolean(self, variable: str, key: str | None, default: bool, help: str = "") -> bool:
        """true/false, or ``default`` when not given."""
        value = self._parse(Setting(variable, key), parse_boolean, help)
        return default if value is None else bool(value)

    def value(
        self, variable: str, key: str | None, kind: type, default: Any = None, help: str = ""
    ) -> Any:
        """A structured value of type ``kind`` (``dict`` or ``list``), or ``default``."""
        value = self._parse(Setting(variable, key), lambda r: parse_structured(r, kind), help)
        return default if value is None else value

    def yaml_file(self, variable: str, key: str | None, kind: type, help: str = "") -> Any:
        """The content (``kind``) of the YAML file the setting names, or ``None``."""
        setting = Setting(variable, key)
        path = self.optional(variable, key, help=help)
        if not path:
            return None
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except OSError as e:
            raise self._error(setting, f"cannot read {path}: {e.strerror}", help) from None
        except yaml.YAMLError:
            raise self._error(setting, f"{path} is not valid YAML", help) from None
        try:
            return parse_structured(Raw(data, "file"), kind)
        except ValueError as e:
            raise self._error(setting, f"{path} {e}", help) from None

    def hub_config_file(self) -> str:
        """The hub's configuration file, for a service that loads it again.

        ``IRIS_HUB_CONFIG_FILE`` (values ``hubConfigFile``) when set; inside Zero to
        JupyterHub the chart's ``jupyterhub_config.py`` (the loader's ``__file__``);
        else the running JupyterHub's ``config_file``.
        """
        given = self.optional("IRIS_HUB_CONFIG_FILE", "hubConfigFile")
        if given:
            return given
        loader_file = self.namespace.get("__file__")
        if self.in_z2jh and isinstance(loader_file, str) and loader_file:
            return os.path.abspath(loader_file)
        from jupyterhub.app import JupyterHub  # noqa: PLC0415 - only inside a hub

        if JupyterHub.initialized():
            return os.path.abspath(str(JupyterHub.instance().config_file))
        raise self._error(
            Setting("IRIS_HUB_CONFIG_FILE", "hubConfigFile"),
            "cannot tell which file is the hub's configuration",
            "the path of the hub's jupyterhub_config.py",
        )
