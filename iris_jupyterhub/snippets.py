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

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no type hints
from traitlets.config import Config

__all__ = [
    "VALUES_PREFIX",
    "Setting",
    "SnippetSettingError",
    "SnippetSettings",
    "add_service",
    "parse_boolean",
    "parse_groups",
    "parse_integer",
    "parse_structured",
    "parse_text",
    "z2jh_values",
]

VALUES_PREFIX = "custom.iris."
"""Where the templates' settings live in the Zero to JupyterHub chart's values."""

ValuesGetter = Callable[[str], Any]
"""Looks a dotted values key up (``custom.iris.iam.clientId``); ``None`` when absent."""

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class SnippetSettingError(ValueError):
    """A template's setting is missing or malformed (raised while the hub loads config)."""


@dataclass(frozen=True)
class Setting:
    """One setting of a template: its environment variable and its values key."""

    variable: str
    key: str | None
    """Key under ``custom.iris`` in the chart's values; ``None``: environment only."""

    @property
    def values_key(self) -> str | None:
        """The full values key, e.g. ``custom.iris.iam.clientId``."""
        return None if self.key is None else VALUES_PREFIX + self.key

    def where(self) -> str:
        """Where to set it, for error messages."""
        if self.values_key is None:
            return (
                f"set the environment variable {self.variable} (a secret: in Zero to "
                "JupyterHub from a Kubernetes Secret with hub.extraEnv; never read from values)"
            )
        return (
            f"set the environment variable {self.variable}, or {self.values_key} in the "
            "chart's values"
        )


@dataclass(frozen=True)
class Raw:
    """A setting's value as found, and where: ``"env"`` (text) or ``"values"`` (YAML data)."""

    value: Any
    source: str


# -- pure parsers: raw value in, typed value out; ValueError says what was expected ---------


def parse_text(raw: Raw) -> str:
    """A single line of text (values may give a number, taken as its text)."""
    value = raw.value
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise ValueError(f"must be text, not {type(value).__name__}")
    text = str(value).strip()
    if "\n" in text:
        raise ValueError("must be a single line")
    return text


def _split(text: str) -> list[str]:
    return [part.strip() for part in text.replace("\n", ",").split(",") if part.strip()]


def parse_groups(raw: Raw) -> list[str]:
    """Group names: comma-separated text, or a YAML list (``[iris, iris/lsst]``).

    Order is kept and duplicates removed; the syntax of each group is checked later by
    the trait it is given to (``IAMAuthenticator.allowed_groups``, profiles).
    """
    value = raw.value
    if isinstance(value, str) and value.strip().startswith("["):
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as e:
            raise ValueError(f"is not a valid YAML list ({e.__class__.__name__})") from None
    if isinstance(value, str):
        items = _split(value)
    elif isinstance(value, list):
        if not all(isinstance(item, str) and item.strip() for item in value):
            raise ValueError("must be a list of group names (text), e.g. [iris, iris/lsst]")
        items = [item.strip() for item in value]
    else:
        raise ValueError(
            f"must be a list of group names or comma-separated text, not {type(value).__name__}"
        )
    return list(dict.fromkeys(items))


def parse_integer(raw: Raw, minimum: int | None = None) -> int:
    """A whole number (text in the environment), at least ``minimum``."""
    value = raw.value
    if isinstance(value, (bool, float)):
        raise ValueError(f"must be a whole number, not {value!r}")
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"must be a whole number, not {value.strip()[:40]!r}") from None
    if not isinstance(value, int):
        raise ValueError(f"must be a whole number, not {type(value).__name__}")
    if minimum is not None and value < minimum:
        raise ValueError(f"must be at least {minimum}, not {value}")
    return value


def parse_boolean(raw: Raw) -> bool:
    """true/false (also yes/no, on/off, 1/0 as text)."""
    value = raw.value
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        word = value.strip().lower()
        if word in _TRUE:
            return True
        if word in _FALSE:
            return False
    raise ValueError(f"must be true or false, not {str(value)[:40]!r}")


def parse_structured(raw: Raw, kind: type) -> Any:
    """A mapping or list: YAML (or JSON) text in the environment, YAML data in values."""
    value = raw.value
    if raw.source == "env":
        try:
            value = yaml.safe_load(value)
        except yaml.YAMLError as e:
            where = getattr(e, "problem_mark", None)
            at = f" at line {where.line + 1}" if where is not None else ""
            raise ValueError(f"is not valid YAML{at}") from None
    if not isinstance(value, kind):
        names: dict[type, str] = {dict: "a mapping", list: "a list"}
        expected = names.get(kind, kind.__name__)
        raise ValueError(f"must be {expected} (YAML), not {type(value).__name__}")
    return value


def lookup(
    setting: Setting, environ: Mapping[str, str], values: ValuesGetter | None
) -> Raw | None:
    """The setting's raw value: the environment first, then the chart's values.

    An empty variable counts as unset (``hub.extraEnv`` may define it empty); so do a
    ``null`` or empty values entry.
    """
    text = environ.get(setting.variable)
    if text is not None and text.strip():
        return Raw(text, "env")
    if setting.values_key is not None and values is not None:
        found = values(setting.values_key)
        if found is not None and found != "":
            return Raw(found, "values")
    return None


# -- Zero to JupyterHub --------------------------------------------------------------------


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


# -- the settings object the templates use --------------------------------------------------


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
