"""Load the ``jupyterhub_config.d/`` snippets the three ways a hub loads them.

* :func:`load_plain`: as JupyterHub loads config files (traitlets' ``PyFileConfigLoader``),
  either the snippet itself as the hub's ``-f`` file, or a ``jupyterhub_config.py`` that
  pulls it in with ``load_subconfig``;
* :func:`load_z2jh` with ``how="extraFiles"`` or ``how="extraConfig"``: the Zero to
  JupyterHub chart's own ``files/hub/jupyterhub_config.py`` and ``z2jh.py`` (from
  ``../shared/z2jh-4.4.0``), run exactly as the hub pod runs them, with
  ``/usr/local/etc/jupyterhub`` pointed at a temporary directory laid out as the pod's:
  ``secret/values.yaml`` (the chart's default values merged with the test's), ``config/``
  (resource names), the seeded secrets, and ``jupyterhub_config.d/`` for extraFiles.

Two lines of the chart's file are changed, and the change is asserted so a new chart
version that moves them is noticed: the path prefix, and the curl HTTP client (pycurl is
in the hub image, not in this test environment; it plays no part in configuration).
"""

from __future__ import annotations

import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from traitlets.config import Config
from traitlets.config.loader import PyFileConfigLoader

from tests.helm.chart import merge

ROOT = Path(__file__).resolve().parents[2]
SNIPPETS = ROOT / "jupyterhub_config.d"
CHART = ROOT.parent / "shared" / "z2jh-4.4.0" / "jupyterhub"
POD_PREFIX = "/usr/local/etc/jupyterhub"
CURL = 'AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")'

#: Environment a z2jh hub pod has (Kubernetes service links, the namespace).
POD_ENV = {
    "HUB_SERVICE_HOST": "10.0.0.2",
    "HUB_SERVICE_PORT": "8081",
    "PROXY_API_SERVICE_HOST": "10.0.0.3",
    "PROXY_API_SERVICE_PORT": "8001",
    "POD_NAMESPACE": "jhub",
}


def chart_or_skip() -> Path:
    """The chart's directory, or skip the test (the shared reference copy is absent)."""
    if not (CHART / "files" / "hub" / "jupyterhub_config.py").is_file():
        pytest.skip(f"the z2jh 4.4.0 chart is not at {CHART} (../shared is absent)")
    return CHART


def snippet_text(name: str) -> str:
    return (SNIPPETS / name).read_text()


def load_plain(name: str, tmp_path: Path, *, subconfig: bool) -> Config:
    """Load snippet ``name`` as the hub's ``-f`` file, or through ``load_subconfig``."""
    if not subconfig:
        return PyFileConfigLoader(name, path=str(SNIPPETS)).load_config()
    conf_d = tmp_path / "jupyterhub_config.d"
    conf_d.mkdir(exist_ok=True)
    (conf_d / name).write_text(snippet_text(name))
    main = tmp_path / "jupyterhub_config.py"
    main.write_text(
        "c = get_config()  # noqa\n"
        "c.JupyterHub.log_level = 'DEBUG'\n"
        f"load_subconfig('jupyterhub_config.d/{name}')\n"
    )
    return PyFileConfigLoader(main.name, path=str(tmp_path)).load_config()


def _pod_dir(tmp_path: Path, values: Mapping[str, Any]) -> Path:
    """Lay out ``/usr/local/etc/jupyterhub`` of a hub pod under ``tmp_path``."""
    chart = chart_or_skip()
    pod = tmp_path / "pod"
    for sub in ("secret", "config", "jupyterhub_config.d"):
        (pod / sub).mkdir(parents=True, exist_ok=True)
    defaults = yaml.safe_load((chart / "values.yaml").read_text())
    merged = merge(defaults, values)
    (pod / "secret" / "values.yaml").write_text(yaml.safe_dump(merged))
    (pod / "secret" / "hub.config.JupyterHub.cookie_secret").write_text("ab" * 32)
    (pod / "secret" / "hub.config.CryptKeeper.keys").write_text("cd" * 32)
    for name in ("hub", "proxy-api", "proxy-public", "user-scheduler", "priority"):
        (pod / "config" / name).write_text(name)
    hub_files = chart / "files" / "hub"
    for source in ("jupyterhub_config.py", "z2jh.py"):
        text = (hub_files / source).read_text()
        assert POD_PREFIX in text, f"{source} no longer names {POD_PREFIX}"
        text = text.replace(POD_PREFIX, str(pod))
        if source == "jupyterhub_config.py":
            assert CURL in text, "the chart no longer configures the curl client this way"
            text = text.replace(CURL, "pass  # test: no pycurl here")
        (pod / source).write_text(text)
    return pod


@contextmanager
def _fresh_z2jh() -> Iterator[None]:
    """Import the pod's ``z2jh`` afresh (its values are cached per process)."""
    saved = sys.modules.pop("z2jh", None)
    saved_path = list(sys.path)
    try:
        yield
    finally:
        sys.modules.pop("z2jh", None)
        if saved is not None:
            sys.modules["z2jh"] = saved
        sys.path[:] = saved_path


def load_z2jh(
    names: list[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    how: str,
    custom: Mapping[str, Any] | None = None,
    values: Mapping[str, Any] | None = None,
) -> Config:
    """Run the chart's ``jupyterhub_config.py`` with snippets ``names`` as ``how`` says.

    ``how``: ``"extraFiles"`` (files in ``jupyterhub_config.d/``) or ``"extraConfig"``
    (the text in ``hub.extraConfig``). ``custom`` becomes ``custom.iris`` in the values;
    ``values`` is merged into the chart's values as well.
    """
    assert how in ("extraFiles", "extraConfig")
    all_values: dict[str, Any] = merge({"custom": {"iris": dict(custom or {})}}, values or {})
    if how == "extraConfig":
        extra = {f"{i:02d}-{n}": snippet_text(n) for i, n in enumerate(names)}
        all_values = merge(all_values, {"hub": {"extraConfig": extra}})
    pod = _pod_dir(tmp_path, all_values)
    if how == "extraFiles":
        for name in names:
            (pod / "jupyterhub_config.d" / name).write_text(snippet_text(name))
    for key, value in POD_ENV.items():
        monkeypatch.setenv(key, value)
    with _fresh_z2jh():
        return PyFileConfigLoader("jupyterhub_config.py", path=str(pod)).load_config()


def load(
    name: str,
    how: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    custom: Mapping[str, Any] | None = None,
) -> Config:
    """Load one snippet: ``how`` is ``plain``, ``subconfig``, ``extraFiles`` or ``extraConfig``.

    ``custom`` (``custom.iris`` values) is only seen inside z2jh.
    """
    if how in ("plain", "subconfig"):
        return load_plain(name, tmp_path, subconfig=how == "subconfig")
    return load_z2jh([name], tmp_path, monkeypatch, how=how, custom=custom)
