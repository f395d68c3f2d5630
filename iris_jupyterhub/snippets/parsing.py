"""Pure parsing of the templates' settings: where a setting is looked up, and its types.

Each parser takes a :class:`Raw` value (text from the environment, or YAML data from the
chart's values) and returns the typed value, or raises ``ValueError`` saying what was
expected; :class:`~iris_jupyterhub.snippets.SnippetSettings` adds the names.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import yaml  # type: ignore[import-untyped]  # PyYAML ships no type hints

__all__ = [
    "VALUES_PREFIX",
    "Raw",
    "Setting",
    "SnippetSettingError",
    "ValuesGetter",
    "lookup",
    "parse_boolean",
    "parse_groups",
    "parse_integer",
    "parse_structured",
    "parse_text",
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
