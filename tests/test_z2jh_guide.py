"""The deployment guide (docs/admin/z2jh.md) says what the values files need.

The guide's ``helm upgrade --install`` commands must be the ones the values files document
(tests/helm renders the chart with exactly those), each ``--set-file`` must mount a real
``jupyterhub_config.d`` file under its own name, and the Secrets it tells an admin to
create must hold every key the values files read. Its recipe for EGI Check-in instead of
IAM is applied to helm/values.yaml as written: the chart accepts and renders it, and the
chart's own ``jupyterhub_config.py`` then configures the Check-in login.
"""

from __future__ import annotations

import copy
import os
import re
import shlex
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.helm.chart import (
    CHART_DIR,
    CHART_MISSING,
    documented_set_files,
    find,
    merge,
    packaged_chart,
    render,
)
from tests.snippets.loaders import load_z2jh

REPO_ROOT = Path(__file__).resolve().parent.parent
GUIDE = REPO_ROOT / "docs" / "admin" / "z2jh.md"
VALUES = [REPO_ROOT / "helm" / "values.yaml", REPO_ROOT / "helm" / "values-minimal.yaml"]
_FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```", re.MULTILINE | re.DOTALL)


def _blocks(language: str) -> list[str]:
    """The guide's fenced blocks of ``language`` (also those indented in a list), dedented."""
    return [
        textwrap.dedent(body)
        for _, lang, body in _FENCE.findall(GUIDE.read_text())
        if lang == language
    ]


def _commands(program: str) -> list[list[str]]:
    """Every command of the guide's ``sh`` blocks that starts with ``program``."""
    commands = []
    for body in _blocks("sh"):
        for line in body.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if words[: len(program.split())] == program.split():
                commands.append(words)
    return commands


def _options(words: list[str], name: str) -> list[str]:
    return [words[i + 1] for i, word in enumerate(words) if word == name]


def _installs() -> dict[str, list[str]]:
    """The guide's install commands by the values file they use."""
    installs: dict[str, list[str]] = {}
    for words in _commands("helm upgrade --install"):
        (values_file,) = _options(words, "-f")
        installs[values_file] = words
    return installs


def _secret_refs(values: dict[str, Any]) -> dict[str, tuple[str, str]]:
    """``hub.extraEnv`` variables read from Secrets: variable -> (Secret, key)."""
    refs = {}
    for variable, spec in values["hub"].get("extraEnv", {}).items():
        if isinstance(spec, dict) and "secretKeyRef" in spec.get("valueFrom", {}):
            ref = spec["valueFrom"]["secretKeyRef"]
            refs[variable] = (ref["name"], ref["key"])
    return refs


def test_the_guide_installs_each_values_file() -> None:
    assert set(_installs()) == {str(v.relative_to(REPO_ROOT)) for v in VALUES}


@pytest.mark.parametrize("values_file", VALUES, ids=lambda p: p.name)
def test_install_command_is_the_one_the_chart_tests_render(values_file: Path) -> None:
    words = _installs()[str(values_file.relative_to(REPO_ROOT))]
    assert words[3:5] == ["jhub", "jupyterhub/jupyterhub"], words
    chart = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())
    assert _options(words, "--version") == [chart["version"]]
    assert sorted(_options(words, "--set-file")) == sorted(documented_set_files(values_file))


@pytest.mark.parametrize("values_file", VALUES, ids=lambda p: p.name)
def test_each_set_file_mounts_its_snippet_under_its_own_name(values_file: Path) -> None:
    extra_files = yaml.safe_load(values_file.read_text())["hub"]["extraFiles"]
    install = _installs()[str(values_file.relative_to(REPO_ROOT))]
    set_files: dict[str, str] = {}
    for expression in _options(install, "--set-file"):
        key, _, path = expression.partition("=")
        match = re.fullmatch(r"hub\.extraFiles\.([\w-]+)\.stringData", key)
        assert match, f"--set-file {expression}: not a hub.extraFiles entry's stringData"
        set_files[match[1]] = path
    assert set(set_files) == set(extra_files), "one --set-file per hub.extraFiles entry"
    for name, path in set_files.items():
        assert (REPO_ROOT / path).is_file(), path
        assert Path(path).parent == Path("jupyterhub_config.d"), path
        mount = extra_files[name]["mountPath"]
        assert mount == f"/usr/local/etc/jupyterhub/jupyterhub_config.d/{Path(path).name}"


@pytest.mark.parametrize("values_file", VALUES, ids=lambda p: p.name)
def test_the_guide_creates_every_secret_key_the_values_read(values_file: Path) -> None:
    created: set[tuple[str, str]] = set()
    for words in _commands("kubectl"):
        if "secret" in words and "generic" in words:
            name = words[words.index("generic") + 1]
            literals = [w.split("=", 1)[1] for w in words if w.startswith("--from-literal=")]
            created.update((name, literal.split("=", 1)[0]) for literal in literals)
    guide = GUIDE.read_text()
    for variable, (secret, key) in _secret_refs(yaml.safe_load(values_file.read_text())).items():
        assert (secret, key) in created, f"the guide never creates {secret}/{key} ({variable})"
        row = re.search(rf"^\| `{secret}` \| `{key}` \| `{variable}` \|", guide, re.MULTILINE)
        assert row, f"the guide's Secrets table lacks {secret} / {key} / {variable}"


# -- EGI Check-in instead of IAM, as the guide says ---------------------------------------


def _checkin_install() -> tuple[dict[str, Any], list[str]]:
    """values.yaml and its --set-file flags, changed to Check-in exactly as the guide says."""
    guide = GUIDE.read_text()
    (block,) = [body for body in _blocks("yaml") if "11-egi-checkin.py" in body]
    (checkin_flag,) = re.findall(r"`--set-file (hub\.extraFiles\.[^`]+11-egi-checkin\.py)`", guide)
    values_file = REPO_ROOT / "helm" / "values.yaml"
    values = copy.deepcopy(yaml.safe_load(values_file.read_text()))
    # "replace the iris-iam entry of hub.extraFiles ... remove custom.iris.iam and
    # IRIS_IAM_CLIENT_SECRET"
    del values["hub"]["extraFiles"]["iris-iam"]
    del values["custom"]["iris"]["iam"]
    del values["hub"]["extraEnv"]["IRIS_IAM_CLIENT_SECRET"]
    values = merge(values, yaml.safe_load(block))
    flags = [f for f in documented_set_files(values_file) if "extraFiles.iris-iam." not in f]
    return values, [*flags, checkin_flag]


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    if CHART_MISSING:
        pytest.skip(CHART_MISSING)
    with packaged_chart(tmp_path_factory.mktemp("chart")) as loaded:
        yield loaded


def test_checkin_variant_installs(chart: Any) -> None:
    """The chart accepts the Check-in values and mounts 11-egi-checkin.py with its secret."""
    import helm_python as helm

    values, flags = _checkin_install()
    for expression in flags:
        key, _, path = expression.partition("=")
        values = merge(values, helm.parse_set_file(f"{key}={REPO_ROOT / path}"))
    chart.validate_schema(values)
    objects = render(chart, values)
    container = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0]
    mounts = {m["mountPath"] for m in container["volumeMounts"]}
    assert "/usr/local/etc/jupyterhub/jupyterhub_config.d/11-egi-checkin.py" in mounts
    assert not any(m.endswith("10-iris-iam.py") for m in mounts)
    env = {e["name"]: e for e in container["env"]}
    assert env["IRIS_CHECKIN_CLIENT_SECRET"]["valueFrom"]["secretKeyRef"] == {
        "name": "iris-hub-secrets",
        "key": "checkin-client-secret",
    }
    assert "IRIS_IAM_CLIENT_SECRET" not in env


def test_checkin_variant_configures_the_checkin_login(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The chart's own jupyterhub_config.py, given those values, logs in with Check-in."""
    values, _ = _checkin_install()
    monkeypatch.setenv("IRIS_CHECKIN_CLIENT_SECRET", "from-the-secret")
    for name in [n for n in os.environ if n.startswith("IRIS_")]:
        if name != "IRIS_CHECKIN_CLIENT_SECRET":
            monkeypatch.delenv(name)
    config = load_z2jh(
        ["11-egi-checkin.py"], tmp_path, monkeypatch, how="extraFiles", values=values
    )
    assert config.JupyterHub.authenticator_class == "egi-checkin"
    checkin = values["custom"]["iris"]["checkin"]
    authenticator = config.EGICheckinAuthenticator
    assert authenticator.client_id == checkin["clientId"]
    assert authenticator.client_secret == "from-the-secret"
    assert set(authenticator.allowed_groups) == set(checkin["allowedGroups"])
    assert authenticator.checkin_instance == checkin["instance"]
    hub_url = values["custom"]["iris"]["hubUrl"]
    assert authenticator.oauth_callback_url == f"{hub_url}/hub/oauth_callback"
