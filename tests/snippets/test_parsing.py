"""The settings logic of the templates as plain data: parsers, lookup, messages, ``c``."""

from __future__ import annotations

from typing import Any

import pytest
from traitlets.config import Config

from iris_jupyterhub.snippets import (
    Raw,
    Setting,
    SnippetSettingError,
    SnippetSettings,
    add_service,
    lookup,
    parse_boolean,
    parse_groups,
    parse_integer,
    parse_structured,
    parse_text,
    service_environment,
    z2jh_values,
)


def z2jh_get_config(values: dict[str, Any]) -> Any:
    """A stand-in with z2jh.get_config's signature and module (resolves dotted keys)."""

    def get_config(key: str, default: Any = None) -> Any:
        value: Any = values
        for level in key.split("."):
            if not isinstance(value, dict) or level not in value:
                return default
            value = value[level]
        return value

    get_config.__module__ = "z2jh"
    return get_config


def settings(env: dict[str, str], custom: dict[str, Any] | None = None) -> SnippetSettings:
    namespace: dict[str, Any] = {"c": Config()}
    if custom is not None:
        namespace["get_config"] = z2jh_get_config({"custom": {"iris": custom}})
    return SnippetSettings(namespace, "xx-test.py", environ=env)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (Raw("iris, iris/lsst ,,iris", "env"), ["iris", "iris/lsst"]),
        (Raw("[iris, 'iris/lsst']", "env"), ["iris", "iris/lsst"]),
        (Raw("iris\niris/dune", "env"), ["iris", "iris/dune"]),
        (Raw(["iris", " dune "], "values"), ["iris", "dune"]),
        (Raw("iris,dune", "values"), ["iris", "dune"]),
    ],
)
def test_parse_groups(raw: Raw, expected: list[str]) -> None:
    assert parse_groups(raw) == expected


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (["iris", 3], "must be a list of group names"),
        (["iris", ""], "must be a list of group names"),
        ({"iris": True}, "not dict"),
        (5, "not int"),
        ("[iris", "is not a valid YAML list"),
    ],
)
def test_parse_groups_refuses(value: Any, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_groups(Raw(value, "values"))


def test_parse_integer_boolean_text() -> None:
    assert parse_integer(Raw(" 20 ", "env")) == 20
    assert parse_integer(Raw(20, "values"), minimum=1) == 20
    for bad in (Raw("20GB", "env"), Raw(2.5, "values"), Raw(True, "values"), Raw([1], "values")):
        with pytest.raises(ValueError, match="whole number"):
            parse_integer(bad)
    with pytest.raises(ValueError, match="at least 60"):
        parse_integer(Raw("59", "env"), minimum=60)
    assert parse_boolean(Raw("Yes", "env")) is True
    assert parse_boolean(Raw("off", "env")) is False
    assert parse_boolean(Raw(False, "values")) is False
    with pytest.raises(ValueError, match="true or false"):
        parse_boolean(Raw("maybe", "env"))
    assert parse_text(Raw(" x ", "env")) == "x"
    assert parse_text(Raw(10, "values")) == "10"
    for bad in (Raw(["x"], "values"), Raw(True, "values"), Raw("a\nb", "env")):
        with pytest.raises(ValueError, match=r"text|single line"):
            parse_text(bad)


def test_parse_structured() -> None:
    assert parse_structured(Raw('{"a": "b"}', "env"), dict) == {"a": "b"}
    assert parse_structured(Raw("- slug: x\n", "env"), list) == [{"slug": "x"}]
    assert parse_structured(Raw({"a": 1}, "values"), dict) == {"a": 1}
    with pytest.raises(ValueError, match=r"is not valid YAML at line \d"):
        parse_structured(Raw("a: 1\nb: [\n", "env"), dict)
    with pytest.raises(ValueError, match=r"must be a mapping \(YAML\), not list"):
        parse_structured(Raw("[1]", "env"), dict)
    with pytest.raises(ValueError, match="must be a list"):
        parse_structured(Raw({"a": 1}, "values"), list)


def test_lookup_environment_first_then_values() -> None:
    values = z2jh_get_config({"custom": {"iris": {"iam": {"clientId": "v"}}}})

    def get(key: str) -> Any:
        return values(key, None)

    setting = Setting("IRIS_IAM_CLIENT_ID", "iam.clientId")
    assert lookup(setting, {"IRIS_IAM_CLIENT_ID": "e"}, get) == Raw("e", "env")
    assert lookup(setting, {"IRIS_IAM_CLIENT_ID": "  "}, get) == Raw("v", "values")
    assert lookup(setting, {}, get) == Raw("v", "values")
    assert lookup(setting, {}, None) is None  # outside z2jh values are not read
    secret = Setting("IRIS_IAM_CLIENT_SECRET", None)
    assert lookup(secret, {}, lambda key: "leaked") is None  # never from values


def test_messages_name_the_file_variable_and_values_key() -> None:
    s = settings({}, custom={})
    with pytest.raises(SnippetSettingError) as info:
        s.required("IRIS_IAM_CLIENT_ID", "iam.clientId", "the client id")
    assert str(info.value) == (
        "xx-test.py: IRIS_IAM_CLIENT_ID is not set: set the environment variable "
        "IRIS_IAM_CLIENT_ID, or custom.iris.iam.clientId in the chart's values (the client id)"
    )
    with pytest.raises(SnippetSettingError, match="IRIS_X = '7x' must be a whole number"):
        settings({"IRIS_X": "7x"}).integer("IRIS_X", "x.y", 1)
    with pytest.raises(SnippetSettingError) as info:
        settings({}, custom={"x": {"y": "no"}}).integer("IRIS_X", "x.y", 1)
    assert "custom.iris.x.y = 'no' must be a whole number" in str(info.value)
    assert "environment variable IRIS_X" in str(info.value)
    with pytest.raises(SnippetSettingError) as info:
        settings({"IRIS_S": "[1"}).value("IRIS_S", None, dict)
    assert "[1" not in str(info.value)  # a secret's value is never repeated


def test_readers_defaults_and_values() -> None:
    s = settings({"IRIS_B": "no"}, custom={"n": 3, "g": ["a", "b"], "m": {"k": "v"}})
    assert s.in_z2jh
    assert s.optional("IRIS_T", "t", "dflt") == "dflt"
    assert s.integer("IRIS_N", "n", 1) == 3
    assert s.groups("IRIS_G", "g") == ["a", "b"]
    assert s.groups("IRIS_NONE", "none") == []
    assert s.boolean("IRIS_B", "b", True) is False
    assert s.value("IRIS_M", "m", dict) == {"k": "v"}
    assert s.found("IRIS_M", "m")
    assert not s.found("IRIS_M", None)
    assert not settings({}).in_z2jh


def test_config_is_the_loaders() -> None:
    c = Config()
    assert SnippetSettings({"c": c}, "f.py", environ={}).config is c
    loader_config = Config()
    s = SnippetSettings({"get_config": lambda: loader_config}, "f.py", environ={})
    assert s.config is loader_config
    # z2jh's get_config takes a key: it is never called to get the configuration
    z2jh_only = {"get_config": z2jh_get_config({})}
    with pytest.raises(SnippetSettingError, match="no JupyterHub configuration"):
        _ = SnippetSettings(z2jh_only, "f.py", environ={}).config
    assert z2jh_values(z2jh_only) is not None
    assert z2jh_values({"get_config": lambda: loader_config}) is None


def test_add_service_and_its_environment() -> None:
    c = Config()
    add_service(c, {"name": "a", "command": ["x"]})
    assert c.JupyterHub.services.get_value([]) == [{"name": "a", "command": ["x"]}]
    c = Config()
    c.JupyterHub.services = [{"name": "culler"}, {"name": "a"}]
    add_service(c, {"name": "a", "command": ["x"]})
    add_service(c, {"name": "b"})
    assert c.JupyterHub.services == [{"name": "culler"}, {"name": "a"}, {"name": "b"}]
    env = {"PATH": "/bin", "CONFIGPROXY_AUTH_TOKEN": "t", "JUPYTERHUB_CRYPT_KEY": "k"}
    assert service_environment(env) == {"PATH": "/bin"}
