"""helm/values*.yaml on the real Zero to JupyterHub chart 4.4.0, rendered offline.

Each values file is combined with the snippets exactly as its documented install command
does (``-f`` plus the ``--set-file`` arguments written in its header), then:

* the chart's schema accepts it, through Helm (``helm_python``) and through ``jsonschema``
  on ``values.schema.yaml``; a typo (``hub.extraConfigs``) is rejected by both;
* every rendered object, and every object of ``helm/storage-rbac.yaml``, passes
  ``kubernetes-validate`` in strict mode against Kubernetes 1.28 (the oldest release the
  chart supports: ``kubeVersion: >=1.28.0-0``) and 1.37 (the newest schema set
  kubernetes-validate 1.37.0 ships);
* the hub Deployment mounts each snippet at ``jupyterhub_config.d/<name>`` from the hub
  Secret, which holds the repository file unchanged;
* secrets reach the hub only as environment variables from Kubernetes Secrets.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.kube_checks import validate_manifest
from tests.helm.chart import (
    CHART_DIR,
    CHART_MISSING,
    CONFIG_D,
    NAMESPACE,
    REPO_ROOT,
    VALUES_FILES,
    documented_set_files,
    find,
    install_values,
    packaged_chart,
    render,
    schema,
)

pytestmark = pytest.mark.skipif(CHART_MISSING is not None, reason=str(CHART_MISSING))

#: The oldest Kubernetes z2jh 4.4.0 supports (Chart.yaml) and the newest schemas shipped.
KUBE_VERSIONS = ("1.28", "1.37")
STORAGE_RBAC = REPO_ROOT / "helm" / "storage-rbac.yaml"


@pytest.fixture(scope="module")
def chart(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    with packaged_chart(tmp_path_factory.mktemp("chart")) as loaded:
        yield loaded


@pytest.fixture(params=sorted(VALUES_FILES), scope="module")
def values_file(request: pytest.FixtureRequest) -> Path:
    path: Path = VALUES_FILES[request.param]
    return path


@pytest.fixture(scope="module")
def values(values_file: Path) -> dict[str, Any]:
    return install_values(values_file)


@pytest.fixture(scope="module")
def objects(chart: Any, values: dict[str, Any]) -> list[dict[str, Any]]:
    return render(chart, values)


def _jsonschema_errors(chart: Any, values: dict[str, Any]) -> list[str]:
    """``values.schema.yaml`` (draft 7) errors of the values Helm would use: the chart's
    defaults coalesced with ``values``, as Helm validates them."""
    import jsonschema

    validator = jsonschema.Draft7Validator(schema())
    merged = chart.merge_values(values)
    return [f"{e.json_path}: {e.message}" for e in validator.iter_errors(merged)]


def test_chart_supports_the_validated_kubernetes_versions() -> None:
    from packaging.specifiers import SpecifierSet

    kube_version = yaml.safe_load((CHART_DIR / "Chart.yaml").read_text())["kubeVersion"]
    assert kube_version == ">=1.28.0-0"
    for version in KUBE_VERSIONS:
        assert f"{version}.0" in SpecifierSet(kube_version.replace("-0", ""))


def test_each_extra_file_has_its_documented_set_file(values_file: Path) -> None:
    raw = yaml.safe_load(values_file.read_text())
    keys = set(raw["hub"]["extraFiles"])
    documented = {}
    for expression in documented_set_files(values_file):
        key, _, path = expression.partition("=")
        assert key.startswith("hub.extraFiles."), expression
        assert key.endswith(".stringData"), expression
        documented[key.removeprefix("hub.extraFiles.").removesuffix(".stringData")] = path
    assert set(documented) == keys
    for key, path in documented.items():
        assert (REPO_ROOT / path).is_file(), f"{values_file.name}: {path} does not exist"
        mount = raw["hub"]["extraFiles"][key]["mountPath"]
        assert mount == f"{CONFIG_D}/{Path(path).name}", f"{key} is mounted as another file"


def test_chart_schema_accepts_the_values(chart: Any, values: dict[str, Any]) -> None:
    chart.validate_schema(values)
    assert _jsonschema_errors(chart, values) == []


@pytest.mark.parametrize(
    ("path", "value"),
    [
        (("hub", "extraConfigs"), {"a": "c.JupyterHub.log_level = 'DEBUG'"}),
        (("hub", "extraFiles", "iris-iam", "mountpath"), "/etc/x.py"),
        (("singleuser", "storage", "type"), "manila"),
    ],
    ids=["hub.extraConfigs", "extraFiles.mountpath", "storage.type"],
)
def test_chart_schema_rejects_a_typo(
    chart: Any, values: dict[str, Any], path: tuple[str, ...], value: Any
) -> None:
    import helm_python as helm

    broken = copy.deepcopy(values)
    node = broken
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    with pytest.raises(helm.HelmValuesError, match=path[-1]):
        chart.validate_schema(broken)
    errors = _jsonschema_errors(chart, broken)
    assert errors, f"jsonschema accepted {'.'.join(path)}"
    assert any(path[-1] in e or str(value) in e for e in errors), errors


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_every_rendered_object_is_valid_kubernetes(
    objects: list[dict[str, Any]], kube_version: str
) -> None:
    assert len(objects) > 10
    problems = {
        f"{obj['kind']}/{obj['metadata']['name']}": errors
        for obj in objects
        if (errors := validate_manifest(obj, kube_version))
    }
    assert problems == {}


def test_hub_mounts_each_snippet_from_the_hub_secret(
    objects: list[dict[str, Any]], values_file: Path
) -> None:
    deployment = find(objects, "Deployment", "hub")
    pod = deployment["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "hub")
    files_volume = next(v for v in pod["volumes"] if v["name"] == "files")
    assert files_volume["secret"]["secretName"] == "hub"
    secret = find(objects, "Secret", "hub")
    stored = {**secret.get("stringData", {})}
    stored.update({k: base64.b64decode(v).decode() for k, v in secret.get("data", {}).items()})
    mounts = {m["mountPath"]: m for m in container["volumeMounts"]}
    snippets = documented_set_files(values_file)
    assert snippets
    for expression in snippets:
        key, _, path = expression.partition("=")
        file_key = key.split(".")[2]
        mount = mounts[f"{CONFIG_D}/{Path(path).name}"]
        assert (mount["name"], mount["subPath"]) == ("files", file_key)
        assert file_key in {item["key"] for item in files_volume["secret"]["items"]}
        # the chart strips one trailing newline and adds it back: the file is unchanged
        assert stored[file_key].rstrip("\n") == (REPO_ROOT / path).read_text().rstrip("\n")


def test_hub_runs_the_iris_image_and_classes(
    objects: list[dict[str, Any]], values: dict[str, Any]
) -> None:
    container = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0]
    image = values["hub"]["image"]
    assert container["image"] == f"{image['name']}:{image['tag']}"
    assert image["name"] != "quay.io/jupyterhub/k8s-hub"
    assert image["tag"].startswith("4.4.0")  # the hub image of the chart's own version
    secret = find(objects, "Secret", "hub")
    passed = yaml.safe_load(base64.b64decode(secret["data"]["values.yaml"]))
    assert passed["hub"]["config"]["JupyterHub"]["authenticator_class"] == "iris-iam"
    assert passed["hub"]["config"]["JupyterHub"]["spawner_class"] == "iris"
    gpu = [p for p in passed["custom"]["iris"]["profiles"] if p["resources"].get("gpu")]
    assert gpu, "no GPU profile"
    assert all(p.get("allowed_groups") for p in gpu), "a GPU profile open to everyone"


def test_secrets_come_only_from_kubernetes_secrets(
    objects: list[dict[str, Any]], values: dict[str, Any]
) -> None:
    env = {
        e["name"]: e
        for e in find(objects, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0][
            "env"
        ]
    }
    secret_names = [
        name for name in env if any(w in name for w in ("SECRET", "PASSWORD", "DB_URL"))
    ]
    assert "IRIS_IAM_CLIENT_SECRET" in secret_names
    for name in secret_names:
        ref = env[name].get("valueFrom", {}).get("secretKeyRef")
        assert ref, f"{name} is not from a Kubernetes Secret"
        assert ref["name"], name
        assert ref["key"], name
    assert values["hub"].get("db", {}).get("password") is None
    assert "clientSecret" not in values["custom"]["iris"]["iam"]


def test_complete_hub_uses_postgres_and_manila_homes(chart: Any) -> None:
    values = install_values(VALUES_FILES["values.yaml"])
    objects = render(chart, values)
    assert values["hub"]["db"]["type"] == "postgres"
    assert values["singleuser"]["storage"]["type"] == "none"
    kinds = {(o["kind"], o["metadata"]["name"]) for o in objects}
    assert ("PersistentVolumeClaim", "hub-db-dir") not in kinds  # no SQLite PVC
    assert ("Ingress", "jupyterhub") in kinds
    env = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0]["env"]
    names = {e["name"] for e in env}
    assert {"IRIS_REGISTRY_DB_URL", "PGPASSWORD", "OS_APPLICATION_CREDENTIAL_SECRET"} <= names


def test_a_missing_set_file_fails_the_install(chart: Any, values: dict[str, Any]) -> None:
    import helm_python as helm

    broken = copy.deepcopy(values)
    del broken["hub"]["extraFiles"]["iris-iam"]["stringData"]
    with pytest.raises(helm.HelmValuesError, match=r"/hub/extraFiles/iris-iam") as failed:
        chart.render(broken, name="jhub", namespace=NAMESPACE, is_install=True)
    assert "missing property 'stringData'" in str(failed.value)


def _storage_rbac() -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(STORAGE_RBAC.read_text()) if doc]


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_storage_rbac_is_valid_kubernetes(kube_version: str) -> None:
    objects = _storage_rbac()
    assert [o["kind"] for o in objects] == [
        "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding"
    ]  # fmt: skip
    problems = {
        f"{o['kind']}/{o['metadata']['name']}": errors
        for o in objects
        if (errors := validate_manifest(o, kube_version))
    }
    assert problems == {}


def test_storage_rbac_binds_the_hub_service_account(chart: Any) -> None:
    """The subjects are the chart's hub ServiceAccount in the release namespace; only
    create and read verbs, on what the chart's own hub Role lacks (PersistentVolumes)."""
    rendered = render(chart, install_values(VALUES_FILES["values.yaml"]))
    account = find(rendered, "ServiceAccount", "hub")["metadata"]["name"]
    hub_role = find(rendered, "Role", "hub")
    assert not any("persistentvolumes" in r["resources"] for r in hub_role["rules"])
    for obj in _storage_rbac():
        if obj["kind"].endswith("Binding"):
            assert obj["subjects"] == [
                {"kind": "ServiceAccount", "name": account, "namespace": NAMESPACE}
            ]
        else:
            for rule in obj["rules"]:
                assert set(rule["verbs"]) == {"get", "create"}  # what storage/kube.py uses
    cluster_role = next(o for o in _storage_rbac() if o["kind"] == "ClusterRole")
    assert cluster_role["rules"][0]["resources"] == ["persistentvolumes"]


def test_spawned_pods_pass_pod_security_baseline(objects: list[dict[str, Any]]) -> None:
    """docs/admin/z2jh.md labels the namespace Pod Security "baseline". The chart's
    config (files/hub/jupyterhub_config.py) adds its privileged NET_ADMIN
    ``block-cloud-metadata`` init container to every user pod when the values it is
    given say ``singleuser.cloudMetadata.blockWithIptables: true`` (the chart's
    default), and baseline refuses that pod: every spawn would fail. The metadata server
    is blocked by the single-user NetworkPolicy instead. The pods themselves are checked
    against baseline in tests/e2e/test_z2jh_chart.py."""
    passed = yaml.safe_load(
        base64.b64decode(find(objects, "Secret", "hub")["data"]["values.yaml"])
    )
    singleuser = passed["singleuser"]
    assert singleuser["cloudMetadata"]["blockWithIptables"] is False
    assert singleuser["networkPolicy"]["enabled"] is True
    assert singleuser["networkPolicy"]["egressAllowRules"]["cloudMetadataServer"] is False
    assert singleuser["extraPodConfig"] == {}  # nothing else reaches the pod unchecked
    assert not any(
        c.get("securityContext", {}).get("privileged") for c in singleuser["initContainers"]
    )


def test_researchers_run_the_iris_singleuser_image(values: dict[str, Any]) -> None:
    """Not the chart's sample image: ours works under the researcher's uid with HOME on
    the mounted home (images/singleuser/Dockerfile); GPU profiles use its CUDA build."""
    passed = values["singleuser"]["image"]
    assert passed["name"].endswith("/iris/iris-singleuser"), passed
    for profile in values["custom"]["iris"]["profiles"]:
        image = profile.get("kubespawner_override", {}).get("image")
        if image is not None:
            assert image.split(":")[0].endswith("/iris/iris-singleuser-gpu"), image


def test_complete_hub_cannot_reach_the_cloud_metadata_server(chart: Any) -> None:
    """hub.networkPolicy.egressAllowRules.cloudMetadataServer is false in values.yaml: no
    egress rule of the hub's rendered NetworkPolicy lets 169.254.169.254 through (z2jh's
    default allows it to the hub; the single-user policy already excludes it). DNS (port
    53 only) stays allowed there, as z2jh's dnsPortsCloudMetadataServer does for clouds
    whose resolver lives at that address; the metadata service itself is HTTP."""
    import ipaddress

    metadata = ipaddress.ip_address("169.254.169.254")
    objects = render(chart, install_values(VALUES_FILES["values.yaml"]))
    for name in ("hub", "singleuser"):
        policy = find(objects, "NetworkPolicy", name)
        blocks = [
            peer["ipBlock"]
            for rule in policy["spec"]["egress"]
            if {p.get("port") for p in rule.get("ports", [{}])} != {53}
            for peer in rule.get("to", [])
            if "ipBlock" in peer
        ]
        assert blocks, name
        for block in blocks:
            if metadata in ipaddress.ip_network(block["cidr"]):
                excepted = [ipaddress.ip_network(e) for e in block.get("except", [])]
                assert any(metadata in net for net in excepted), (name, block)
