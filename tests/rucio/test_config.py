"""``RucioTokens`` and the instance rules, as plain data."""

from __future__ import annotations

from typing import Any

import pytest
from traitlets.config import Config

from iris_jupyterhub.groups import membership_from_string
from iris_jupyterhub.rucio import (
    RucioTokens,
    account_for,
    instances_for,
    validate_instances,
)
from iris_jupyterhub.startup import check_config

RAL = {
    "name": "ral",
    "display_name": "RAL Rucio",
    "rucio_host": "https://rucio.ral.example.ac.uk/",
    "auth_host": "https://rucio-auth.ral.example.ac.uk",
    "vo": "def",
    "ca_cert": "/etc/pki/tls/certs/ca-bundle.crt",
    "groups": ["iris/lsst", "dune:role=production"],
    "account": "{username}",
}
CAM = {"name": "cam", "rucio_host": "https://rucio.cam.example.ac.uk", "groups": ["dune"]}


def memberships(*texts: str) -> list[Any]:
    return [membership_from_string(t) for t in texts]


def test_an_instance_with_its_defaults() -> None:
    [ral, cam] = validate_instances([RAL, CAM])
    assert ral.rucio_host == "https://rucio.ral.example.ac.uk"  # trailing / dropped
    assert ral.audience == "rucio"
    assert ral.scopes == ("openid", "profile")
    assert ral.grant == "refresh_token"
    assert [str(g) for g in ral.groups] == ["iris/lsst", "dune:role=production"]
    assert (cam.display_name, cam.auth_host, cam.vo, cam.ca_cert, cam.account) == (
        "cam",
        "https://rucio.cam.example.ac.uk",
        None,
        None,
        "",
    )


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        ({"name": "RAL"}, "name 'RAL' must be 1-32 characters"),
        ({"name": "../x"}, "must be 1-32 characters"),
        ({"rucio_host": "rucio.example"}, "rucio_host must be an http(s) URL"),
        ({"rucio_host": "http://rucio.example.ac.uk"}, "rucio_host must be an https URL"),
        ({"auth_host": "https://a.example/?x=1"}, "auth_host must not have a query"),
        ({"groups": []}, "groups must be a non-empty list"),
        ({"groups": "iris"}, "groups must be a non-empty list"),
        ({"groups": ["/iris"]}, "drop the leading '/'"),
        ({"vo": "toolong"}, "vo 'toolong' must be Rucio's short VO name"),
        ({"scopes": []}, "scopes must be a non-empty list"),
        ({"scopes": ["open id"]}, "is not an OAuth scope"),
        ({"account": "{user}"}, "uses {user}; only {username}, {hub_username} may be used"),
        ({"account": "Bad Name"}, "is not a Rucio account name"),
        ({"grant": "password"}, "grant 'password' must be one of refresh_token, token_exchange"),
        ({"audience": ""}, "audience '' must be a non-empty string"),
        ({"groupz": ["iris"]}, "unknown key(s) 'groupz'"),
    ],
)
def test_bad_instances_are_refused_naming_the_option(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(ValueError, match=r"RucioTokens\.instances") as info:
        validate_instances([{**RAL, **change}])
    assert problem in str(info.value)
    assert "[0] ('" in str(info.value)


def test_duplicate_names_and_wrong_shapes() -> None:
    with pytest.raises(ValueError, match="name 'ral' is used twice"):
        validate_instances([RAL, {**CAM, "name": "ral"}])
    with pytest.raises(ValueError, match="must be a list of instances"):
        validate_instances(RAL)
    with pytest.raises(ValueError, match=r"\[0\] \(None\): must be a mapping"):
        validate_instances(["ral"])


def test_scopes_as_text_and_loopback_http() -> None:
    [instance] = validate_instances(
        [{**CAM, "rucio_host": "http://127.0.0.1:8080", "scopes": "openid profile storage.read:/"}]
    )
    assert instance.scopes == ("openid", "profile", "storage.read:/")


def test_instances_for_a_user_in_configuration_order() -> None:
    instances = validate_instances([RAL, CAM])
    assert [i.name for i in instances_for(instances, memberships("dune"))] == ["cam"]
    both = instances_for(instances, memberships("dune:role=production", "iris"))
    assert [i.name for i in both] == ["ral", "cam"]
    assert instances_for(instances, memberships("iris", "iris/lsst/desc")) == []


def test_account_rules() -> None:
    [ral, cam] = validate_instances([RAL, CAM])
    posix = {"posix": {"username": "ada"}}
    assert account_for(ral, posix, "aresearcher") == "ada"
    assert account_for(ral, {}, "aresearcher") == "aresearcher"
    assert account_for(cam, posix, "aresearcher") is None  # the identity's default
    [hub] = validate_instances([{**CAM, "account": "jh-{hub_username}"}])
    assert account_for(hub, posix, "aresearcher") == "jh-aresearcher"
    assert account_for(hub, posix, "a" * 30) is None  # longer than Rucio allows


def test_traits_are_validated_at_start_up() -> None:
    config = Config()
    config.RucioTokens.instances = [{**RAL, "grant": "implicit"}]
    with pytest.raises(ValueError, match=r"RucioTokens\.instances\[0\] \('ral'\): grant"):
        check_config(config)
    with pytest.raises(ValueError, match=r"RucioTokens\.renewal_margin must be 0\.\.3600"):
        RucioTokens(renewal_margin=-1)
    for bad in ("relative/dir", "/home", "/tmp/", "/run/{username}"):  # noqa: S108
        with pytest.raises(ValueError, match=r"RucioTokens\.notebook_dir must be an absolute"):
            RucioTokens(notebook_dir=bad)
    shared = ("/tmp/iris-rucio", "/var/tmp/rucio/", "/dev/shm/r", "/run/../tmp/r")  # noqa: S108
    for bad in shared:  # world-writable: anyone in the pod may create the directory first
        with pytest.raises(ValueError, match=r"RucioTokens\.notebook_dir must not be under /tmp"):
            RucioTokens(notebook_dir=bad)
    near = "/tmpfs/rucio"  # noqa: S108 - only a name that starts like /tmp
    assert RucioTokens(notebook_dir=near).notebook_dir == near
    settings = RucioTokens(instances=[RAL], notebook_dir="/run/rucio/")
    assert settings.notebook_dir == "/run/rucio"
    assert [i.name for i in settings.parsed_instances()] == ["ral"]
