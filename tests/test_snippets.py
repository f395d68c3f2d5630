"""The ``jupyterhub_config.d/`` templates, loaded as a plain hub and inside z2jh.

Every template is loaded the ways a hub loads it (``plain``: the hub's ``-f`` file;
``subconfig``: ``load_subconfig`` from a hub's ``jupyterhub_config.py``; ``extraFiles`` and
``extraConfig``: the z2jh 4.4.0 chart's own ``jupyterhub_config.py``, see
:mod:`tests.snippets.loaders`), and the resulting configuration is checked.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from iris_jupyterhub.snippets import SnippetSettingError, default_profile_list
from iris_jupyterhub.startup import check_config
from tests.snippets.loaders import ROOT, SNIPPETS, load, load_z2jh

WAYS = ["plain", "subconfig", "extraFiles", "extraConfig"]
Z2JH = ["extraFiles", "extraConfig"]

HUB = {"IRIS_HUB_URL": "https://hub.example.ac.uk/"}
IAM = {
    **HUB,
    "IRIS_IAM_CLIENT_ID": "hub-client",
    "IRIS_IAM_CLIENT_SECRET": "s3cret",
    "IRIS_IAM_ALLOWED_GROUPS": "iris, iris/lsst",
}
CHECKIN = {
    **HUB,
    "IRIS_CHECKIN_CLIENT_ID": "checkin-client",
    "IRIS_CHECKIN_CLIENT_SECRET": "s3cret",
}
RUCIO = {
    "IRIS_RUCIO_INSTANCE_LIST": '[{name: ral, rucio_host: "https://r.example", groups: [iris]}]'
}
HUB_AND_SECRET = {**HUB, "IRIS_IAM_CLIENT_SECRET": "s3cret"}
OPENSTACK = {
    "OS_AUTH_URL": "https://keystone.example.ac.uk:5000/v3",
    "OS_APPLICATION_CREDENTIAL_ID": "app-id",
    "OS_APPLICATION_CREDENTIAL_SECRET": "app-secret",
    "OS_REGION_NAME": "RegionOne",
}


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No IRIS_* or OS_* variable of the machine leaks into a test."""
    for name in list(os.environ):
        if name.startswith(("IRIS_", "OS_")):
            monkeypatch.delenv(name)


def set_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)


def services_of(c: Config) -> list[dict[str, Any]]:
    services = c.JupyterHub.services
    return list(services if isinstance(services, list) else services.get_value([]))


# -- 10-iris-iam.py ------------------------------------------------------------------------


@pytest.mark.parametrize("how", WAYS)
def test_iam_loads_every_way(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, {**IAM, "IRIS_IAM_ADMIN_GROUPS": "iris/admins"})
    c = load("10-iris-iam.py", how, tmp_path, monkeypatch)
    assert c.JupyterHub.authenticator_class == "iris-iam"
    assert c.IAMAuthenticator.client_id == "hub-client"
    assert c.IAMAuthenticator.client_secret == "s3cret"
    assert c.IAMAuthenticator.oauth_callback_url == "https://hub.example.ac.uk/hub/oauth_callback"
    assert c.IAMAuthenticator.allowed_groups == {"iris", "iris/lsst"}
    assert c.IAMAuthenticator.admin_groups == {"iris/admins"}
    assert "issuer" not in c.IAMAuthenticator  # the class default: IRIS IAM


@pytest.mark.parametrize("how", Z2JH)
def test_iam_from_chart_values(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Inside z2jh everything but the secret can come from custom.iris; env wins."""
    set_env(monkeypatch, {"IRIS_IAM_CLIENT_SECRET": "s3cret", "IRIS_IAM_ISSUER": ""})
    set_env(monkeypatch, {"IRIS_IAM_ADMIN_GROUPS": "from-env"})
    custom = {
        "hubUrl": "https://values.example.ac.uk",
        "iam": {
            "clientId": "values-client",
            "allowedGroups": ["iris", "dune"],
            "adminGroups": ["ignored"],
            "requiredGroups": "iris",
            "issuer": "https://iam.example.org/",
        },
    }
    c = load("10-iris-iam.py", how, tmp_path, monkeypatch, custom=custom)
    assert c.IAMAuthenticator.client_id == "values-client"
    assert c.IAMAuthenticator.oauth_callback_url == (
        "https://values.example.ac.uk/hub/oauth_callback"
    )
    assert c.IAMAuthenticator.allowed_groups == {"iris", "dune"}
    assert c.IAMAuthenticator.admin_groups == {"from-env"}  # the environment wins
    assert c.IAMAuthenticator.required_groups == {"iris"}
    assert c.IAMAuthenticator.issuer == "https://iam.example.org/"  # empty variable: unset


# -- 11-egi-checkin.py ---------------------------------------------------------------------


@pytest.mark.parametrize("how", WAYS)
def test_checkin_loads_every_way(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(
        monkeypatch,
        {
            **CHECKIN,
            "IRIS_CHECKIN_ALLOWED_GROUPS": "[vo.iris.ac.uk, vo.iris.ac.uk/lsst]",
            "IRIS_CHECKIN_INSTANCE": "demo",
        },
    )
    c = load("11-egi-checkin.py", how, tmp_path, monkeypatch)
    assert c.JupyterHub.authenticator_class == "egi-checkin"
    assert c.EGICheckinAuthenticator.client_id == "checkin-client"
    assert c.EGICheckinAuthenticator.client_secret == "s3cret"
    assert c.EGICheckinAuthenticator.allowed_groups == {"vo.iris.ac.uk", "vo.iris.ac.uk/lsst"}
    assert c.EGICheckinAuthenticator.checkin_instance == "demo"
    assert c.EGICheckinAuthenticator.oauth_callback_url.startswith("https://hub.example.ac.uk/")


# -- 20-identity-registry.py ---------------------------------------------------------------

DB_URL = "postgresql+psycopg://registry:pw@db.example.ac.uk/registry"


@pytest.mark.parametrize("how", WAYS)
def test_registry_loads_every_way(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(
        monkeypatch,
        {
            "IRIS_REGISTRY_DB_URL": DB_URL,
            "IRIS_REGISTRY_GROUP_ALIASES": '{"vo.iris.ac.uk": "iris"}',
        },
    )
    c = load("20-identity-registry.py", how, tmp_path, monkeypatch)
    assert c.IdentityRegistry.db_url == DB_URL
    assert c.IdentityRegistry.group_aliases == {"vo.iris.ac.uk": "iris"}


@pytest.mark.parametrize("how", Z2JH)
def test_registry_url_is_never_read_from_values(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    custom = {"registry": {"dbUrl": DB_URL}, "IRIS_REGISTRY_DB_URL": DB_URL}
    with pytest.raises(SnippetSettingError) as info:
        load("20-identity-registry.py", how, tmp_path, monkeypatch, custom=custom)
    message = str(info.value)
    assert "20-identity-registry.py: IRIS_REGISTRY_DB_URL is not set" in message
    assert "never read from values" in message


# -- 30-profiles.py ------------------------------------------------------------------------

PROFILES = [
    {"display_name": "Small", "slug": "small", "default": True, "resources": {"cpu": 1}},
    {
        "display_name": "A100",
        "slug": "a100",
        "allowed_groups": ["iris/gpu"],
        "resources": {"cpu": 8, "memory": "32G", "gpu": 1},
    },
]


@pytest.mark.parametrize("how", WAYS)
def test_profiles_default_list(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, {"IRIS_GPU_GROUPS": "iris/gpu,iris/lsst", "IRIS_GPU_IMAGE": "cuda:1"})
    c = load("30-profiles.py", how, tmp_path, monkeypatch)
    assert c.JupyterHub.spawner_class == "iris"
    profiles = c.IRISSpawner.profile_list
    assert profiles == default_profile_list(["iris/gpu", "iris/lsst"], "cuda:1")
    gpu = profiles[1]
    assert gpu["allowed_groups"] == ["iris/gpu", "iris/lsst"]
    assert gpu["resources"]["gpu"] == 1
    assert gpu["kubespawner_override"] == {"image": "cuda:1"}
    check_config(c)  # the default list passes the spawner's own validation


def test_default_list_without_gpu_groups_has_no_gpu_profile() -> None:
    assert [p["slug"] for p in default_profile_list([])] == ["standard"]
    assert [p["slug"] for p in default_profile_list(["iris"])] == ["standard", "gpu"]


@pytest.mark.parametrize("how", WAYS)
def test_profiles_from_a_file(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(json.dumps(PROFILES))  # JSON is YAML
    monkeypatch.setenv("IRIS_PROFILES_FILE", str(path))
    c = load("30-profiles.py", how, tmp_path, monkeypatch)
    assert c.IRISSpawner.profile_list == PROFILES


@pytest.mark.parametrize("how", Z2JH)
def test_profiles_from_values(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    c = load("30-profiles.py", how, tmp_path, monkeypatch, custom={"profiles": PROFILES})
    assert c.IRISSpawner.profile_list == PROFILES
    check_config(c)


@pytest.mark.parametrize("how", Z2JH)
def test_chart_profile_list_is_kept(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without IRIS settings, z2jh's singleuser.profileList is used, not the default."""
    c = load_z2jh(
        ["30-profiles.py"],
        tmp_path,
        monkeypatch,
        how=how,
        values={"singleuser": {"profileList": PROFILES}},
    )
    assert c.KubeSpawner.profile_list == PROFILES
    assert "profile_list" not in c.IRISSpawner


def test_profiles_file_and_list_together_are_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(json.dumps(PROFILES))
    set_env(monkeypatch, {"IRIS_PROFILES_FILE": str(path), "IRIS_PROFILES": json.dumps(PROFILES)})
    with pytest.raises(SnippetSettingError, match="both a profile file") as info:
        load("30-profiles.py", "plain", tmp_path, monkeypatch)
    for name in ("IRIS_PROFILES_FILE", "custom.iris.profilesFile", "(IRIS_PROFILES or"):
        assert name in str(info.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ("- a: [1\n", "is not valid YAML"),
        ("{standard: {}}", "must be a list \\(YAML\\), not dict"),
    ],
)
def test_malformed_profiles_file(
    content: str, expected: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "profiles.yaml"
    path.write_text(content)
    monkeypatch.setenv("IRIS_PROFILES_FILE", str(path))
    with pytest.raises(SnippetSettingError, match=expected) as info:
        load("30-profiles.py", "plain", tmp_path, monkeypatch)
    assert "custom.iris.profilesFile" in str(info.value)


def test_missing_profiles_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("IRIS_PROFILES_FILE", str(tmp_path / "nope.yaml"))
    with pytest.raises(SnippetSettingError, match=r"cannot read .*nope\.yaml"):
        load("30-profiles.py", "plain", tmp_path, monkeypatch)


# -- 40-manila-storage.py ------------------------------------------------------------------


@pytest.mark.parametrize("how", WAYS)
def test_storage_loads_every_way(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(
        monkeypatch,
        {
            **OPENSTACK,
            "IRIS_MANILA_SHARE_TYPE": "cephfs",
            "IRIS_MANILA_SHARE_SIZE_GB": "20",
            "IRIS_MANILA_GROUP_SHARES": "iris/lsst: {size_gb: 500}",
        },
    )
    c = load("40-manila-storage.py", how, tmp_path, monkeypatch)
    assert c.ManilaStorage.enabled is True
    assert c.ManilaStorage.auth_url == OPENSTACK["OS_AUTH_URL"]
    assert c.ManilaStorage.region_name == "RegionOne"
    assert c.ManilaStorage.share_type == "cephfs"
    assert c.ManilaStorage.share_size_gb == 20
    assert c.ManilaStorage.group_shares == {"iris/lsst": {"size_gb": 500}}
    assert "application_credential_secret" not in c.ManilaStorage  # read from OS_* itself
    check_config(c)  # ManilaStorage accepts them (credentials from the environment)


@pytest.mark.parametrize("how", Z2JH)
def test_storage_from_values(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(monkeypatch, {k: v for k, v in OPENSTACK.items() if "CREDENTIAL" in k})
    custom = {
        "storage": {
            "authUrl": "https://keystone.example.ac.uk:5000/v3",
            "regionName": "RegionTwo",
            "shareSizeGb": 50,
            "csiDriver": "cephfs",
            "cephClusterId": "ceph-1",
            "groupShares": {"dune": {"size_gb": 200, "mount_path": "/shared/dune"}},
        }
    }
    c = load("40-manila-storage.py", how, tmp_path, monkeypatch, custom=custom)
    assert c.ManilaStorage.region_name == "RegionTwo"
    assert c.ManilaStorage.share_size_gb == 50
    assert c.ManilaStorage.csi_driver == "cephfs"
    assert c.ManilaStorage.ceph_cluster_id == "ceph-1"
    assert c.ManilaStorage.group_shares["dune"]["mount_path"] == "/shared/dune"
    check_config(c)


def test_storage_password_authentication(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(
        monkeypatch,
        {"OS_AUTH_URL": OPENSTACK["OS_AUTH_URL"], "OS_USERNAME": "hub", "OS_PASSWORD": "pw"},
    )
    with pytest.raises(SnippetSettingError, match="OS_PROJECT_NAME is not set"):
        load("40-manila-storage.py", "plain", tmp_path, monkeypatch)
    monkeypatch.setenv("OS_PROJECT_NAME", "jupyter")
    c = load("40-manila-storage.py", "plain", tmp_path, monkeypatch)
    assert c.ManilaStorage.enabled is True


# -- 50-accounting.py ----------------------------------------------------------------------


@pytest.mark.parametrize("how", WAYS)
def test_accounting_loads_every_way(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(
        monkeypatch,
        {
            "IRIS_SITE_NAME": "UKI-SOUTHGRID-RALPP",
            "IRIS_ACCOUNTING_XDMOD_DIR": "/srv/xdmod",
            "IRIS_ACCOUNTING_EXPORT_INTERVAL": "600",
            "IRIS_ACCOUNTING_DB_URL": DB_URL,
            "CONFIGPROXY_AUTH_TOKEN": "proxy-secret",
        },
    )
    if how in ("plain", "subconfig"):  # no running JupyterHub to ask
        monkeypatch.setenv("IRIS_HUB_CONFIG_FILE", "/etc/jupyterhub/jupyterhub_config.py")
    c = load("50-accounting.py", how, tmp_path, monkeypatch)
    assert c.SessionAccounting.site_name == "UKI-SOUTHGRID-RALPP"
    assert c.SessionAccounting.xdmod_out_dir == "/srv/xdmod"
    assert c.SessionAccounting.export_interval == 600
    assert c.SessionAccounting.db_url == DB_URL
    (service,) = [s for s in services_of(c) if s["name"] == "iris-accounting"]
    command = service["command"]
    assert command[:4] == [sys.executable, "-m", "iris_jupyterhub.accounting.service", "--config"]
    if how in Z2JH:  # the chart's own jupyterhub_config.py
        assert command[4] == str(tmp_path / "pod" / "jupyterhub_config.py")
    else:
        assert command[4] == "/etc/jupyterhub/jupyterhub_config.py"
    assert service["environment"]["IRIS_SITE_NAME"] == "UKI-SOUTHGRID-RALPP"
    assert "CONFIGPROXY_AUTH_TOKEN" not in service["environment"]
    assert "roles" not in service  # it reads the database, not the hub API


@pytest.mark.parametrize("how", ["plain", "extraFiles"])
def test_accounting_without_exports_has_no_service(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = load("50-accounting.py", how, tmp_path, monkeypatch)
    assert not [s for s in services_of(c) if s["name"] == "iris-accounting"]


def test_accounting_service_in_plain_hub_needs_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("IRIS_ACCOUNTING_SERVICE", "yes")
    with pytest.raises(SnippetSettingError, match=r"IRIS_HUB_CONFIG_FILE.*custom\.iris\.hub"):
        load("50-accounting.py", "plain", tmp_path, monkeypatch)


def test_accounting_service_runs_from_the_chart_config(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The registered service, started as JupyterHub starts it (only its ``environment``),
    loads the chart's jupyterhub_config.py with every template and exports."""
    xdmod = tmp_path / "xdmod"
    set_env(
        monkeypatch,
        {
            **IAM,
            **OPENSTACK,
            **RUCIO,
            "IRIS_REGISTRY_DB_URL": f"sqlite:///{tmp_path}/registry.sqlite",
            "IRIS_ACCOUNTING_XDMOD_DIR": str(xdmod),
        },
    )
    names = sorted(p.name for p in SNIPPETS.glob("[0-9]*.py") if p.name != "11-egi-checkin.py")
    c = load_z2jh(names, tmp_path, monkeypatch, how="extraFiles")
    (service,) = [s for s in services_of(c) if s["name"] == "iris-accounting"]
    done = subprocess.run(
        [*service["command"], "--once"],
        env=service["environment"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert "Accounting export xdmod" in done.stderr
    assert [p.name for p in xdmod.iterdir()]  # the XDMoD file of (no) ended sessions


# -- every template together; the start-up check ---------------------------------------------


@pytest.mark.parametrize("how", WAYS)
def test_all_templates_together(how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    set_env(
        monkeypatch,
        {
            **IAM,
            **OPENSTACK,
            "IRIS_REGISTRY_DB_URL": DB_URL,
            "IRIS_GPU_GROUPS": "iris/gpu",
            "IRIS_SITE_NAME": "UKI-SOUTHGRID-RALPP",
            "IRIS_HUB_CONFIG_FILE": "/etc/jupyterhub/jupyterhub_config.py",
            **RUCIO,
        },
    )
    names = sorted(p.name for p in SNIPPETS.glob("[0-9]*.py") if p.name != "11-egi-checkin.py")
    if how in Z2JH:
        c = load_z2jh(names, tmp_path, monkeypatch, how=how)
    else:
        conf_d = tmp_path / "jupyterhub_config.d"
        conf_d.mkdir()
        lines = ["c = get_config()  # noqa"]
        for name in names:
            (conf_d / name).write_text((SNIPPETS / name).read_text())
            lines.append(f"load_subconfig('jupyterhub_config.d/{name}')")
        main = tmp_path / "jupyterhub_config.py"
        main.write_text("\n".join(lines) + "\n")
        c = PyFileConfigLoader(main.name, path=str(tmp_path)).load_config()
    assert c.JupyterHub.authenticator_class == "iris-iam"
    assert c.JupyterHub.spawner_class == "iris"
    assert c.IdentityRegistry.db_url == DB_URL
    assert c.ManilaStorage.enabled is True
    names_of = [s["name"] for s in services_of(c)]
    expected = ["jupyterhub-idle-culler"] if how in Z2JH else []  # the chart's own is kept
    assert names_of == [*expected, "iris-accounting"]
    assert c.RucioTokens.instances[0]["name"] == "ral"


@pytest.mark.parametrize("how", Z2JH)
def test_check_stops_a_bad_profile(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """99-iris-check.py runs check_config: a typo in a profile stops the hub naming it."""
    bad = [{"display_name": "Typo", "slug": "typo", "allowed_group": ["iris"]}]
    monkeypatch.setenv("IRIS_PROFILES", json.dumps(bad))
    with pytest.raises(ValueError, match=r"IRISSpawner\.profile_list") as info:
        load_z2jh(["30-profiles.py", "99-iris-check.py"], tmp_path, monkeypatch, how=how)
    assert "allowed_group" in str(info.value)


def test_check_as_the_hub_file_stops_a_bad_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Plain ``-f``: the hub's file ends with 99-iris-check.py's text."""
    main = tmp_path / "jupyterhub_config.py"
    main.write_text(
        "c.ManilaStorage.enabled = True\n"
        "c.ManilaStorage.auth_url = 'https://keystone.example.ac.uk/v3'\n"
        "c.ManilaStorage.share_size_gb = -1\n" + (SNIPPETS / "99-iris-check.py").read_text()
    )
    set_env(monkeypatch, OPENSTACK)
    with pytest.raises(ValueError, match=r"ManilaStorage\.share_size_gb"):
        PyFileConfigLoader(main.name, path=str(tmp_path)).load_config()


def test_check_through_load_subconfig_says_what_to_do(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """With load_subconfig the check sees only its own file: the running hub is told so."""
    from jupyterhub.app import JupyterHub

    app = JupyterHub.instance()
    try:
        (tmp_path / "jupyterhub_config.py").write_text("")  # the hub's file must exist
        app.config_file = str(tmp_path / "jupyterhub_config.py")
        app.log = logging.getLogger("test-snippets-hub")  # the hub's own does not propagate
        with caplog.at_level("WARNING"):
            load("99-iris-check.py", "subconfig", tmp_path, monkeypatch)
    finally:
        JupyterHub.clear_instance()
    assert "99-iris-check.py was loaded with load_subconfig" in caplog.text
    assert "check_config(c)" in caplog.text


def test_check_passes_a_good_configuration(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    c = load("99-iris-check.py", "extraFiles", tmp_path, monkeypatch)
    assert "IRISSpawner" not in c or not c.IRISSpawner  # nothing configured, nothing refused


# -- every required setting, missing; malformed settings --------------------------------------

REQUIRED = [
    ("10-iris-iam.py", IAM, "IRIS_IAM_CLIENT_ID", "custom.iris.iam.clientId"),
    ("10-iris-iam.py", IAM, "IRIS_IAM_CLIENT_SECRET", None),
    ("10-iris-iam.py", IAM, "IRIS_HUB_URL", "custom.iris.hubUrl"),
    ("11-egi-checkin.py", CHECKIN, "IRIS_CHECKIN_CLIENT_ID", "custom.iris.checkin.clientId"),
    ("11-egi-checkin.py", CHECKIN, "IRIS_CHECKIN_CLIENT_SECRET", None),
    ("11-egi-checkin.py", CHECKIN, "IRIS_HUB_URL", "custom.iris.hubUrl"),
    ("20-identity-registry.py", {"IRIS_REGISTRY_DB_URL": DB_URL}, "IRIS_REGISTRY_DB_URL", None),
    ("40-manila-storage.py", OPENSTACK, "OS_AUTH_URL", "custom.iris.storage.authUrl"),
    ("40-manila-storage.py", OPENSTACK, "OS_APPLICATION_CREDENTIAL_ID", None),
    ("40-manila-storage.py", OPENSTACK, "OS_APPLICATION_CREDENTIAL_SECRET", None),
    ("60-rucio.py", {}, "IRIS_RUCIO_INSTANCE_LIST", "custom.iris.rucio.instances"),
]


@pytest.mark.parametrize("how", ["plain", "extraFiles", "extraConfig"])
@pytest.mark.parametrize(("name", "env", "variable", "key"), REQUIRED)
def test_missing_required_setting_names_it(
    *,
    name: str,
    env: dict[str, str],
    variable: str,
    key: str | None,
    how: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_env(monkeypatch, {k: v for k, v in env.items() if k != variable})
    with pytest.raises(SnippetSettingError) as info:
        load(name, how, tmp_path, monkeypatch)
    message = str(info.value)
    assert message.startswith(f"{name}: {variable} is not set: ")
    assert f"environment variable {variable}" in message
    if key is None:
        assert "never read from values" in message
    else:
        assert f"{key} in the chart's values" in message


MALFORMED = [
    (
        "10-iris-iam.py",
        HUB_AND_SECRET,
        {"iam": {"clientId": "x", "allowedGroups": {"iris": 1}}},
        "iam.allowedGroups",
        "must be a list of group names",
    ),
    (
        "10-iris-iam.py",
        HUB_AND_SECRET,
        {"iam": {"clientId": "x", "adminGroups": ["iris", 7]}},
        "iam.adminGroups",
        "must be a list of group names",
    ),
    (
        "10-iris-iam.py",
        {**IAM, "IRIS_IAM_CLIENT_ID": ""},
        {"iam": {"clientId": ["a"]}},
        "iam.clientId",
        "must be text, not list",
    ),
    (
        "20-identity-registry.py",
        {"IRIS_REGISTRY_DB_URL": DB_URL},
        {"registry": {"groupAliases": ["iris"]}},
        "registry.groupAliases",
        "must be a mapping",
    ),
    ("30-profiles.py", {}, {"profiles": {"standard": {}}}, "profiles", "must be a list"),
    (
        "40-manila-storage.py",
        OPENSTACK,
        {"storage": {"shareSizeGb": "big"}},
        "storage.shareSizeGb",
        "must be a whole number, not 'big'",
    ),
    (
        "40-manila-storage.py",
        OPENSTACK,
        {"storage": {"shareSizeGb": 0}},
        "storage.shareSizeGb",
        "must be at least 1",
    ),
    (
        "50-accounting.py",
        {},
        {"accounting": {"service": "maybe"}},
        "accounting.service",
        "must be true or false",
    ),
]


@pytest.mark.parametrize("how", Z2JH)
@pytest.mark.parametrize(("name", "env", "custom", "key", "problem"), MALFORMED)
def test_malformed_values_fail_clearly(
    *,
    name: str,
    env: dict[str, str],
    custom: dict[str, Any],
    key: str,
    problem: str,
    how: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_env(monkeypatch, env)
    with pytest.raises(SnippetSettingError) as info:
        load(name, how, tmp_path, monkeypatch, custom=custom)
    message = str(info.value)
    assert message.startswith(f"{name}: custom.iris.{key} = ")
    assert problem in message


@pytest.mark.parametrize(
    ("env", "problem"),
    [
        (
            {"IRIS_MANILA_SHARE_SIZE_GB": "20GB"},
            "IRIS_MANILA_SHARE_SIZE_GB = '20GB' must be a whole",
        ),
        (
            {"IRIS_MANILA_GROUP_SHARES": "iris: [1"},
            "IRIS_MANILA_GROUP_SHARES = 'iris: [1' is not valid YAML",
        ),
    ],
)
def test_malformed_variables_fail_clearly(
    env: dict[str, str], problem: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, {**OPENSTACK, **env})
    with pytest.raises(SnippetSettingError, match=re.escape(problem)) as info:
        load("40-manila-storage.py", "plain", tmp_path, monkeypatch)
    assert "custom.iris.storage." in str(info.value)


# -- the documentation lists every setting --------------------------------------------------

READ = re.compile(
    r"""\b(?:required|optional|groups|integer|boolean|value|found|yaml_file)\(\s*"""
    r"""["']([A-Z_]+)["'],\s*(None|["']([\w.]+)["'])"""
)
LOOPED = re.compile(r"""\(\s*["'](\w+)["'],\s*["']([A-Z_]+)["'],\s*["']([\w.]+)["']\s*\)""")


def settings_read() -> set[tuple[str, str | None]]:
    found: set[tuple[str, str | None]] = set()
    for path in sorted(SNIPPETS.glob("*.py")):
        text = path.read_text()
        found |= {(m[1], m[3]) for m in READ.finditer(text)}
        found |= {(m[2], m[3]) for m in LOOPED.finditer(text)}
    return found


#: In the table, read elsewhere: by JupyterHub itself, by SnippetSettings.hub_config_file.
NOT_IN_TEMPLATES = {"JUPYTERHUB_CRYPT_KEY", "IRIS_HUB_CONFIG_FILE"}


def test_docs_table_lists_every_setting() -> None:
    table = (ROOT / "docs" / "admin" / "snippets.md").read_text()
    read = settings_read()
    assert ("IRIS_HUB_URL", "hubUrl") in read
    assert ("OS_REGION_NAME", "storage.regionName") in read
    for variable, key in sorted(read, key=str):
        cell = "env only" if key is None else f"`{key}`"
        assert f"| `{variable}` | {cell} |" in table, f"{variable} ({key}) is not in the table"
    for variable, _ in re.findall(r"^\| `([A-Z_]+)` \| ([^|]+) \|", table, re.M):
        assert any(variable == v for v, _ in read) or variable in NOT_IN_TEMPLATES, (
            f"the table lists {variable}, which no template reads"
        )


@pytest.mark.parametrize("how", Z2JH)
def test_hub_config_kept_when_the_setting_is_not_given(
    how: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    set_env(monkeypatch, {k: v for k, v in IAM.items() if k != "IRIS_IAM_ALLOWED_GROUPS"})
    values = {"hub": {"config": {"IAMAuthenticator": {"allowed_groups": ["dune"]}}}}
    c = load_z2jh(["10-iris-iam.py"], tmp_path, monkeypatch, how=how, values=values)
    assert c.IAMAuthenticator.allowed_groups == ["dune"]  # hub.config's, untouched
