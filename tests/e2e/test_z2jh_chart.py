"""A real hub started from the Zero to JupyterHub chart's OWN configuration and our values.

``helm/values-minimal.yaml`` is rendered with the real chart 4.4.0 exactly as its install
command documents (``-f`` plus the ``--set-file`` snippets, see ``tests/helm/chart.py``),
with ``--set`` of what must point at this machine: the hub's URL, the test IdP's issuer
and its client id. Then what the hub pod would see is laid out in a temporary directory
standing in for ``/usr/local/etc/jupyterhub``: each of the hub container's volume mounts
under that path, from the rendered ConfigMap (``jupyterhub_config.py``, ``z2jh.py``,
``config/``), the hub Secret (``secret/values.yaml`` ...) and the extra files
(``jupyterhub_config.d/<snippet>``), following the rendered Deployment's ``volumeMounts``.
The hub process gets the container's environment from the Deployment (Secret references
resolved from the rendered hub Secret and the Secret an admin would create), plus the
``<SERVICE>_SERVICE_HOST/PORT`` variables Kubernetes sets.

What is changed, and why (nothing else is):

* the chart's ``jupyterhub_config.py`` and ``z2jh.py`` name ``/usr/local/etc/jupyterhub``
  literally: that path constant is replaced by the temporary directory;
* ``tornado.curl_httpclient`` needs ``pycurl``, which the hub image has and the test
  environment may not: then (only then) the line selecting it is dropped;
* after the chart's config is loaded (with traitlets' ``load_subconfig``, as a second
  config file), the hub's and proxy's addresses are pointed at loopback ports, the proxy
  is started by the hub (there is no proxy pod), the chart's idle-culler service (its
  package is in the hub image, and it would call the pod's port 8081) is left out, and
  the tests' API service is added back; HubProcess's base config adds ``--allow-root``
  for its local spawner, which the chart does not, so ``Spawner.args`` is reset;
* KubeSpawner reaches the Kubernetes stand-in through ``KUBECONFIG`` instead of the
  in-cluster service account.

Then a researcher logs in through the real IdP, spawns the GPU profile on the stand-in
(the pod manifest carries the GPU limit, node selector and toleration, and the chart's
labels), and stops; a researcher outside the GPU group is refused that profile.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from devstack.hub import HubProcess
from devstack.idp import (
    DEFAULT_CLIENT_SECRET,
    IdPProcess,
    default_clients,
    free_port,
    make_rsa_jwk,
)
from devstack.kube import KubeStandIn
from devstack.stacks import USERS, KubeStack, Stack
from tests.helm.chart import (
    CHART_MISSING,
    NAMESPACE,
    REPO_ROOT,
    VALUES_FILES,
    find,
    install_values,
    merge,
    packaged_chart,
    render,
)

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CHART_MISSING is not None, reason=str(CHART_MISSING)),
]

POD_ETC = "/usr/local/etc/jupyterhub"
VALUES_FILE = VALUES_FILES["values-minimal.yaml"]
GPU_GROUP = "iris/gpu"  # the GPU profile's allowed group in values-minimal.yaml
#: The Kubernetes Secret an admin creates before installing (values-minimal.yaml's header).
CLUSTER_SECRETS = {"iris-hub-secrets": {"iam-client-secret": DEFAULT_CLIENT_SECRET}}


def _secret_data(secret: dict[str, Any]) -> dict[str, str]:
    """A rendered Secret's contents as the kubelet would write them to files."""
    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


def lay_out_hub_pod(objects: list[dict[str, Any]], root: Path) -> Path:
    """Write the hub container's mounts under ``/usr/local/etc/jupyterhub`` into ``root``.

    Follows the rendered Deployment: each volume mount below that path, from its
    ConfigMap or Secret volume, with ``subPath`` (one file) or without (every key, or the
    volume's ``items``). Returns the stand-in of the pod's ``jupyterhub_config.py``.
    """
    pod = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]
    container = next(c for c in pod["containers"] if c["name"] == "hub")
    volumes = {v["name"]: v for v in pod["volumes"]}
    for mount in container["volumeMounts"]:
        if not mount["mountPath"].startswith(POD_ETC):
            continue
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            content = find(objects, "ConfigMap", volume["configMap"]["name"])["data"]
            items = None
        else:
            content = _secret_data(find(objects, "Secret", volume["secret"]["secretName"]))
            items = volume["secret"].get("items")
        files = {item["path"]: content[item["key"]] for item in items} if items else content
        target = root / mount["mountPath"].removeprefix(POD_ETC).lstrip("/")
        if "subPath" in mount:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(files[mount["subPath"]])
        else:
            target.mkdir(parents=True, exist_ok=True)
            for name, text in files.items():
                (target / name).write_text(text)
    for name in ("jupyterhub_config.py", "z2jh.py"):  # the path constants, and only them
        path = root / name
        source = path.read_text().replace(POD_ETC, str(root))
        if name == "jupyterhub_config.py" and importlib.util.find_spec("pycurl") is None:
            curl = 'AsyncHTTPClient.configure("tornado.curl_httpclient.CurlAsyncHTTPClient")'
            assert curl in source
            source = source.replace(curl, "pass  # no pycurl here (the hub image has it)")
        path.write_text(source)
    return root / "jupyterhub_config.py"


def hub_pod_env(
    objects: list[dict[str, Any]], services: dict[str, tuple[str, int]]
) -> dict[str, str]:
    """The hub container's environment: its ``env`` with references resolved, plus the
    ``<NAME>_SERVICE_HOST``/``_PORT`` variables of ``services`` (name -> address)."""
    secrets = {**CLUSTER_SECRETS}
    secrets["hub"] = _secret_data(find(objects, "Secret", "hub"))
    container = find(objects, "Deployment", "hub")["spec"]["template"]["spec"]["containers"][0]
    env: dict[str, str] = {}
    for var in container["env"]:
        source = var.get("valueFrom", {})
        if "value" in var:
            env[var["name"]] = str(var["value"])
        elif source.get("fieldRef", {}).get("fieldPath") == "metadata.namespace":
            env[var["name"]] = NAMESPACE
        elif "secretKeyRef" in source:
            ref = source["secretKeyRef"]
            env[var["name"]] = secrets[ref["name"]][ref["key"]]
        else:
            raise AssertionError(f"cannot resolve the hub's env {var}")
    for name, (host, port) in services.items():
        prefix = name.upper().replace("-", "_")
        env[f"{prefix}_SERVICE_HOST"], env[f"{prefix}_SERVICE_PORT"] = host, str(port)
    return env


def local_overrides(chart_config: Path, hub: HubProcess, hub_api: int, proxy_api: int) -> str:
    """HubProcess config: the chart's own config, then only what must point at this machine."""
    return f"""
load_subconfig({str(chart_config)!r})  # the chart's jupyterhub_config.py, as the pod loads it

c.JupyterHub.hub_bind_url = "http://127.0.0.1:{hub_api}"  # the pod: http://:8081
c.JupyterHub.hub_connect_url = "http://127.0.0.1:{hub_api}"  # the pod: the hub Service
c.ConfigurableHTTPProxy.api_url = "http://127.0.0.1:{proxy_api}"  # the pod: proxy-api
c.ConfigurableHTTPProxy.should_start = True  # no proxy pod here
c.Spawner.args = []  # HubProcess's base config adds --allow-root; the chart sets none
c.JupyterHub.services = [
    s for s in c.JupyterHub.services if s["name"] != "jupyterhub-idle-culler"
] + [{{"name": "tests", "api_token": "{hub.api_token}"}}]
c.JupyterHub.load_roles = [
    r for r in c.JupyterHub.load_roles if r["name"] != "jupyterhub-idle-culler"
] + [{{"name": "tests", "services": ["tests"],
      "scopes": ["admin:users", "admin:servers", "admin:auth_state", "list:users",
                 "read:users", "tokens", "access:servers"]}}]
"""


@pytest.fixture(scope="module")
def kube(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeStandIn]:
    standin = KubeStandIn(tmp_path_factory.mktemp("kube"))
    standin.start()
    try:
        yield standin
    finally:
        standin.stop()


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[IdPProcess, int, dict]]:
    """The real IdP; ada is also in the GPU group (as an IAM admin would add her)."""
    hub_port = free_port()
    keys = {"iam": make_rsa_jwk("iam-key-1"), "checkin": make_rsa_jwk("checkin-key-1")}
    workdir = tmp_path_factory.mktemp("idp")
    process = IdPProcess(
        REPO_ROOT,
        workdir,
        clients=default_clients([f"http://127.0.0.1:{hub_port}/hub/oauth_callback"]),
        provider_jwks={name: {"keys": [jwk]} for name, jwk in keys.items()},
    )
    process.start()
    try:
        ada = json.loads(json.dumps(USERS[("iam", "ada")]))
        ada["userinfo"]["groups"].append(GPU_GROUP)
        ada["id_token"]["wlcg.groups"].append(f"/{GPU_GROUP}")
        process.upsert_user("iam", ada)
        yield process, hub_port, keys
    finally:
        process.stop()


@pytest.fixture(scope="module")
def rendered(
    idp: tuple[IdPProcess, int, dict], tmp_path_factory: pytest.TempPathFactory
) -> list[dict[str, Any]]:
    process, hub_port, _keys = idp
    # helm install -f helm/values-minimal.yaml --set-file ... (as documented), and --set:
    local = {
        "custom": {
            "iris": {
                "hubUrl": f"http://127.0.0.1:{hub_port}",
                "iam": {"issuer": process.issuer("iam"), "clientId": "hub"},
            }
        }
    }
    values = merge(install_values(VALUES_FILE), local)
    with packaged_chart(tmp_path_factory.mktemp("chart")) as chart:
        chart.validate_schema(values)
        return render(chart, values)


@pytest.fixture(scope="module")
def chart_hub(
    rendered: list[dict[str, Any]],
    idp: tuple[IdPProcess, int, dict],
    kube: KubeStandIn,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[KubeStack]:
    process, hub_port, keys = idp
    etc = tmp_path_factory.mktemp("usr-local-etc-jupyterhub")
    chart_config = lay_out_hub_pod(rendered, etc)
    hub_api, proxy_api = free_port(), free_port()
    env = hub_pod_env(
        rendered,
        {
            "hub": ("127.0.0.1", hub_api),
            "proxy-api": ("127.0.0.1", proxy_api),
            "proxy-public": ("127.0.0.1", hub_port),
        },
    )
    env.update(kube.env)  # KUBECONFIG: the stand-in instead of the in-cluster API
    hub = HubProcess(tmp_path_factory.mktemp("hub"), hub_port, "", env=env)
    hub.config = local_overrides(chart_config, hub, hub_api, proxy_api)
    hub.start()
    stack = KubeStack(stack=Stack(idp=process, hub=hub, provider="iam", keys=keys), kube=kube)
    try:
        yield stack
    finally:
        hub.stop()  # the IdP and the stand-in are stopped by their own fixtures


def test_the_chart_config_loaded_every_snippet(chart_hub: KubeStack) -> None:
    log = chart_hub.hub.log_text()
    for name in ("10-iris-iam.py", "30-profiles.py", "99-iris-check.py"):
        assert f"jupyterhub_config.d config: {name}" in log, log[-3000:]
    assert "Loading pass-through config section hub.config.JupyterHub" in log


def test_login_and_spawn_the_gpu_profile(chart_hub: KubeStack) -> None:
    assert chart_hub.login("ada").status == 302
    name = USERS[("iam", "ada")]["userinfo"]["preferred_username"]
    r = chart_hub.start_server(name, {"profile": "gpu"})
    assert r.status_code in (201, 202), r.text
    try:
        chart_hub.wait_ready(name)
        pod = chart_hub.pod_manifests_of(name)[-1]
        container = pod["spec"]["containers"][0]
        limits = container["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == "1"
        assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
        assert pod["spec"]["nodeSelector"]["nvidia.com/gpu.present"] == "true"
        assert any(t.get("key") == "nvidia.com/gpu" for t in pod["spec"]["tolerations"])
        # what only the chart's own config sets: its labels, namespace and user scheduler
        labels = pod["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "jhub"
        assert labels["helm.sh/chart"] == "jupyterhub-4.4.0"
        assert [p["metadata"]["name"] for p in chart_hub.pods_of(name, NAMESPACE)] == [
            pod["metadata"]["name"]
        ]  # POD_NAMESPACE, from the Deployment's fieldRef
        assert pod["spec"]["schedulerName"] == "jhub-user-scheduler"  # get_name("user-scheduler")
        # values-minimal.yaml's scratch /home (storage.type: none plus an emptyDir)
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        assert volumes["home"] == {"name": "home", "emptyDir": {}}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        assert mounts["/home"] == "home"
        assert pod["spec"]["securityContext"]["runAsUser"] >= 1000
        assert chart_hub.kube.validation_errors() == {}
    finally:
        chart_hub.stop_server(name)
    assert chart_hub.server_model(name) is None


def test_gpu_profile_refused_outside_its_group(chart_hub: KubeStack) -> None:
    assert chart_hub.login("bob").status == 302
    name = USERS[("iam", "bob")]["userinfo"]["preferred_username"]
    before = len(chart_hub.kube.created_pods())
    r = chart_hub.start_server(name, {"profile": "gpu"})
    # The chart sets slow_spawn_timeout to 0, so the POST answers 202 at once and the
    # refusal ends the pending spawn (a plain hub waits and answers 403 itself).
    assert r.status_code in (202, 403), r.text
    deadline = time.monotonic() + 30
    while chart_hub.server_model(name) is not None:
        assert time.monotonic() < deadline, chart_hub.hub.log_tail()
        time.sleep(0.2)
    assert "'gpu' is not available to you; choose one of: standard." in chart_hub.hub.log_text()
    assert len(chart_hub.kube.created_pods()) == before


def test_values_reached_the_hub_through_the_chart(
    rendered: list[dict[str, Any]], chart_hub: KubeStack
) -> None:
    """The IAM client secret came from the (stand-in) Kubernetes Secret, by env only."""
    passed = yaml.safe_load(_secret_data(find(rendered, "Secret", "hub"))["values.yaml"])
    assert DEFAULT_CLIENT_SECRET not in json.dumps(passed)
    assert chart_hub.hub.env["IRIS_IAM_CLIENT_SECRET"] == DEFAULT_CLIENT_SECRET
