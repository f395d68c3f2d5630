"""The official Zero to JupyterHub chart with this project's values, rendered offline.

Shared by ``tests/helm`` (schema, rendered objects) and ``tests/e2e/test_z2jh_chart.py``
(a real hub started from the rendered Secret and ConfigMap).

* The chart is ``../shared/z2jh-4.4.0/jupyterhub`` (relative to the repository root);
  :data:`CHART_MISSING` says why tests skip without it.
* Values are composed as the documented ``helm upgrade`` command does: ``-f <values file>``,
  then every ``--set-file`` written in that file's header comment
  (:func:`documented_set_files`), parsed by Helm's own ``strvals`` parser
  (``helm_python.parse_set_file``) and merged over the file's values.
* The chart repository keeps its schema as ``values.schema.yaml``; z2jh's release tooling
  (``tools/generate-json-schema.py``) ships it in the packaged chart as
  ``values.schema.json``, which is what Helm validates against. :func:`packaged_chart`
  does the same to a copy of the chart, so ``Chart.validate_schema`` (and ``render``) check
  values exactly as ``helm install`` of the published chart does.
"""

from __future__ import annotations

import json
import re
import shutil
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT.parent / "shared" / "z2jh-4.4.0" / "jupyterhub"
CHART_MISSING = (
    None
    if (CHART_DIR / "Chart.yaml").is_file()
    else f"the Zero to JupyterHub chart 4.4.0 is not at {CHART_DIR} (../shared from the repo)"
)
VALUES_FILES = {
    "values.yaml": REPO_ROOT / "helm" / "values.yaml",
    "values-minimal.yaml": REPO_ROOT / "helm" / "values-minimal.yaml",
}
RELEASE = "jhub"
NAMESPACE = "jhub"
#: Where the chart's config loads snippets from (``files/hub/jupyterhub_config.py``).
CONFIG_D = "/usr/local/etc/jupyterhub/jupyterhub_config.d"

_SET_FILE = re.compile(r"^#.*--set-file\s+(\S+=\S+)", re.MULTILINE)


def documented_set_files(values_file: Path) -> list[str]:
    """The ``--set-file key=path`` arguments of the install command in the file's comments."""
    return _SET_FILE.findall(values_file.read_text())


def merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """``override`` deep-merged over ``base`` (Helm's order: ``--set*`` wins over ``-f``)."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def install_values(values_file: Path) -> dict[str, Any]:
    """The values of ``helm install -f values_file --set-file ...`` (as documented in it).

    Snippet paths are relative to the repository root, where the documented command runs.
    """
    import helm_python as helm

    values: dict[str, Any] = yaml.safe_load(values_file.read_text())
    for expression in documented_set_files(values_file):
        key, _, path = expression.partition("=")
        values = merge(values, helm.parse_set_file(f"{key}={REPO_ROOT / path}"))
    return values


def schema() -> dict[str, Any]:
    """The chart's values schema (``values.schema.yaml``) as a JSON schema document."""
    loaded: dict[str, Any] = yaml.safe_load((CHART_DIR / "values.schema.yaml").read_text())
    return loaded


@contextmanager
def packaged_chart(workdir: Path) -> Iterator[Any]:
    """A ``helm_python.Chart`` of a copy of the chart with ``values.schema.json`` added."""
    import helm_python as helm

    copy = workdir / "jupyterhub"
    if not copy.exists():
        shutil.copytree(CHART_DIR, copy)
        (copy / "values.schema.json").write_text(json.dumps(schema()))
    with helm.Chart.load(copy) as chart:
        if chart.schema is None:
            raise AssertionError("the packaged chart copy has no schema")
        yield chart


def render(chart: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    """Every object ``helm install`` of ``values`` would create (release ``jhub``)."""
    manifests = chart.render(values, name=RELEASE, namespace=NAMESPACE, is_install=True)
    objects: list[dict[str, Any]] = []
    for path, text in sorted(manifests.items()):
        if not path.endswith((".yaml", ".yml")):
            continue  # NOTES.txt
        objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def find(objects: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The rendered object of ``kind`` named ``name``."""
    for obj in objects:
        if obj["kind"] == kind and obj["metadata"]["name"] == name:
            return obj
    raise AssertionError(f"no {kind} {name!r} rendered")
