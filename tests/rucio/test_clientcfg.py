"""The instances from the server's environment, and the client configurations made from them."""

from __future__ import annotations

import configparser
import json
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from traitlets.config import Config

from iris_jupyterhub.rucio import (
    configure_rucio_jupyterlab,
    render_rucio_cfg,
    rucio_jupyterlab_config,
    settings_from_env,
)
from iris_jupyterhub.rucio.clientcfg import NotebookInstance, parse_instances

VENDOR = Path(__file__).resolve().parents[1] / "vendor" / "rucio_jupyterlab"

RAL = {
    "name": "ral",
    "display_name": "RAL Rucio",
    "rucio_host": "https://rucio.ral.example:443",
    "auth_host": "https://rucio-auth.ral.example:443",
    "vo": "",
    "account": "alice",
    "ca_cert": "/etc/pki/tls/certs/ral-ca.pem",
    "default": True,
}
CAM = {
    "name": "cam",
    "display_name": "Cambridge Rucio",
    "rucio_host": "https://rucio.cam.example",
    "auth_host": "",
    "vo": "cam",
    "account": "",
    "ca_cert": "",
    "default": False,
}


def env(*instances: dict[str, Any], directory: str = "/run/iris-rucio") -> dict[str, str]:
    return {"IRIS_RUCIO_DIR": directory, "IRIS_RUCIO_INSTANCES": json.dumps(list(instances))}


def test_no_instances_means_rucio_is_not_offered() -> None:
    assert settings_from_env({}) is None
    assert settings_from_env({"IRIS_RUCIO_INSTANCES": " "}) is None


def test_the_environment_gives_the_directory_and_instances() -> None:
    settings = settings_from_env(env(CAM, RAL))
    assert settings is not None
    assert settings.directory == Path("/run/iris-rucio")
    assert settings.default.name == "ral"
    assert [i.name for i in settings.instances] == ["cam", "ral"]
    cam = settings.find("cam")
    assert cam.auth_host == cam.rucio_host, "auth_host defaults to rucio_host"
    assert settings.files(cam).token == Path("/run/iris-rucio/cam.token")
    assert settings.rucio_cfg == Path("/run/iris-rucio/rucio.cfg")
    with pytest.raises(KeyError):
        settings.find("lsst")


def test_without_a_default_the_first_instance_is_it() -> None:
    settings = settings_from_env(env({**CAM}, {**RAL, "default": False}))
    assert settings is not None
    assert settings.default.name == "cam"


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("not json", "is not JSON"),
        ("{}", "non-empty JSON list"),
        ("[]", "non-empty JSON list"),
        ('["ral"]', r"IRIS_RUCIO_INSTANCES\[0\] must be an object"),
        (json.dumps([{**RAL, "name": "../etc"}]), r"\[0\]\.name must be letters"),
        (json.dumps([{**RAL, "rucio_host": "rucio.example"}]), "rucio_host must be an http"),
        (json.dumps([{**RAL, "vo": "a\nb"}]), r"\[0\]\.vo must be a one-line string"),
        (json.dumps([RAL, RAL]), "names an instance twice"),
        (json.dumps([RAL, {**CAM, "default": True}]), "more than one instance as default"),
        (json.dumps([RAL, {**CAM, "name": "rucio"}]), "only the default instance may be called"),
    ],
)
def test_a_malformed_environment_says_what_is_wrong(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_instances(text)


def test_a_relative_or_missing_directory_is_refused() -> None:
    with pytest.raises(ValueError, match="IRIS_RUCIO_DIR must be an absolute path"):
        settings_from_env({"IRIS_RUCIO_INSTANCES": json.dumps([RAL])})
    with pytest.raises(ValueError, match="IRIS_RUCIO_DIR"):
        settings_from_env(env(RAL, directory="run/iris-rucio"))


def read_cfg(text: str) -> configparser.SectionProxy:
    """Read as the Rucio client does (``configparser.ConfigParser()``, % interpolation)."""
    parser = configparser.ConfigParser()
    parser.read_string(text)
    return parser["client"]


def test_rucio_cfg_has_the_client_keys_the_rucio_client_reads() -> None:
    ral = parse_instances(json.dumps([RAL]))[0]
    client = read_cfg(render_rucio_cfg(ral, Path("/run/iris-rucio/ral.token")))
    assert dict(client) == {
        "rucio_host": "https://rucio.ral.example:443",
        "auth_host": "https://rucio-auth.ral.example:443",
        "auth_type": "oidc",
        "account": "alice",
        "ca_cert": "/etc/pki/tls/certs/ral-ca.pem",
        "auth_token_file_path": "/run/iris-rucio/ral.token",
    }


def test_empty_values_are_left_to_the_client_and_percent_signs_survive() -> None:
    odd = NotebookInstance("cam", "Cam", "https://rucio.cam.example/a%20b", "https://x", vo="cam")
    client = read_cfg(render_rucio_cfg(odd, Path("/run/100%/cam.token")))
    assert client["rucio_host"] == "https://rucio.cam.example/a%20b"
    assert client["auth_token_file_path"] == "/run/100%/cam.token"
    assert client["vo"] == "cam"
    assert "account" not in client
    assert "ca_cert" not in client


def jupyterlab_schema() -> Any:
    sys.path.insert(0, str(VENDOR))
    try:
        import schema  # the vendored rucio_jupyterlab/config/schema.py
    finally:
        sys.path.remove(str(VENDOR))
    return schema.root


def test_rucio_jupyterlab_reads_each_instance_s_token_file() -> None:
    import jsonschema

    settings = settings_from_env(env(RAL, CAM))
    assert settings is not None
    config = rucio_jupyterlab_config(settings)
    jsonschema.validate(config["instances"], jupyterlab_schema())
    assert config["default_instance"] == "ral"
    assert config["default_auth_type"] == "oidc"
    ral, cam = config["instances"]
    assert ral == {
        "name": "ral",
        "display_name": "RAL Rucio",
        "rucio_base_url": "https://rucio.ral.example:443",
        "rucio_auth_url": "https://rucio-auth.ral.example:443",
        "rucio_ca_cert": "/etc/pki/tls/certs/ral-ca.pem",
        "mode": "download",
        "oidc_auth": "file",
        "oidc_file_name": "/run/iris-rucio/ral.token",
    }
    assert cam["oidc_file_name"] == "/run/iris-rucio/cam.token"
    assert cam["rucio_ca_cert"] == "/etc/ssl/certs/ca-certificates.crt", "download mode needs one"
    assert cam["vo"] == "cam"


def test_replica_mode_needs_the_mounted_rse_of_each_instance() -> None:
    import jsonschema

    settings = settings_from_env(env(RAL))
    assert settings is not None
    with pytest.raises(ValueError, match=r"ral needs \['destination_rse', 'rse_mount_path'\]"):
        rucio_jupyterlab_config(settings, mode="replica")
    extra = {"ral": {"destination_rse": "RAL_CEPHFS", "rse_mount_path": "/rucio/ral"}}
    config = rucio_jupyterlab_config(settings, mode="replica", extra=extra)
    jsonschema.validate(config["instances"], jupyterlab_schema())
    with pytest.raises(ValueError, match="mode must be"):
        rucio_jupyterlab_config(settings, mode="mounted")


def test_configure_sets_rucio_config_or_leaves_it_alone() -> None:
    c = Config()
    assert configure_rucio_jupyterlab(c, env(RAL))
    assert c.RucioConfig.default_instance == "ral"
    assert c.RucioConfig.instances[0]["oidc_auth"] == "file"
    untouched = Config()
    assert not configure_rucio_jupyterlab(untouched, {})
    assert "RucioConfig" not in untouched


def test_a_malformed_environment_leaves_rucio_jupyterlab_unconfigured(
    caplog: pytest.LogCaptureFixture,
) -> None:
    c = SimpleNamespace(RucioConfig=SimpleNamespace())
    assert not configure_rucio_jupyterlab(c, {"IRIS_RUCIO_INSTANCES": "[", "IRIS_RUCIO_DIR": "/r"})
    assert vars(c.RucioConfig) == {}
    assert (
        "Rucio: rucio-jupyterlab is not configured: IRIS_RUCIO_INSTANCES is not JSON"
        in caplog.text
    )
