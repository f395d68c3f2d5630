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
labels, and passes Pod Security "baseline": tests/helm/pod_security.py), and stops; a
researcher outside the GPU group is refused that profile.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
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
from devstack.openstack import APP_CRED_ID, APP_CRED_SECRET, OpenStackServer
from devstack.postgres import find_pg_bin, postgres_server
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
from tests.helm.pod_security import baseline_violations

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(CHART_MISSING is not None, reason=str(CHART_MISSING)),
]

POD_ETC = "/usr/local/etc/jupyterhub"
GPU_GROUP = "iris/gpu"  # the GPU profile's allowed group in both values files


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
    objects: list[dict[str, Any]],
    services: dict[str, tuple[str, int]],
    cluster_secrets: dict[str, dict[str, str]],
) -> dict[str, str]:
    """The hub container's environment: its ``env`` with references resolved (from the
    rendered hub Secret and ``cluster_secrets``, those an admin creates), plus the
    ``<NAME>_SERVICE_HOST``/``_PORT`` variables of ``services`` (name -> address)."""
    secrets = {**cluster_secrets}
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


@dataclass
class LocalIdP:
    """The real IdP, with one redirect URI per hub port; ada is also in the GPU group."""

    process: IdPProcess
    ports: dict[str, int]
    keys: dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def idp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalIdP]:
    ports = {name: free_port() for name in VALUES_FILES}
    keys = {"iam": make_rsa_jwk("iam-key-1"), "checkin": make_rsa_jwk("checkin-key-1")}
    callbacks = [f"http://127.0.0.1:{port}/hub/oauth_callback" for port in ports.values()]
    process = IdPProcess(
        REPO_ROOT,
        tmp_path_factory.mktemp("idp"),
        clients=default_clients(callbacks),
        provider_jwks={name: {"keys": [jwk]} for name, jwk in keys.items()},
    )
    process.start()
    try:
        ada = json.loads(json.dumps(USERS[("iam", "ada")]))  # as an IAM admin would add her
        ada["userinfo"]["groups"].append(GPU_GROUP)
        ada["id_token"]["wlcg.groups"].append(f"/{GPU_GROUP}")
        process.upsert_user("iam", ada)
        yield LocalIdP(process, ports, keys)
    finally:
        process.stop()


@dataclass
class ChartHub:
    """A hub started from the chart's config: the rendered objects and the running stack."""

    objects: list[dict[str, Any]]
    stack: KubeStack


@contextmanager
def chart_hub(
    values_file: str,
    local: dict[str, Any],
    cluster_secrets: dict[str, dict[str, str]],
    idp: LocalIdP,
    workdir: Path,
) -> Iterator[ChartHub]:
    """``helm install -f <values_file> --set-file ...`` (as documented) plus ``--set`` of
    ``local`` (what points at this machine), laid out and started as the hub pod."""
    port = idp.ports[values_file]
    local = merge(
        {
            "custom": {
                "iris": {
                    "hubUrl": f"http://127.0.0.1:{port}",
                    "iam": {"issuer": idp.process.issuer("iam"), "clientId": "hub"},
                }
            }
        },
        local,
    )
    values = merge(install_values(VALUES_FILES[values_file]), local)
    with packaged_chart(workdir / "chart") as chart:
        chart.validate_schema(values)
        objects = render(chart, values)
    chart_config = lay_out_hub_pod(objects, workdir / "usr-local-etc-jupyterhub")
    hub_api, proxy_api = free_port(), free_port()
    services = {
        "hub": ("127.0.0.1", hub_api),
        "proxy-api": ("127.0.0.1", proxy_api),
        "proxy-public": ("127.0.0.1", port),
    }
    with KubeStandIn(workdir / "kube") as kube:
        env = hub_pod_env(objects, services, cluster_secrets)
        env.update(kube.env)  # KUBECONFIG: the stand-in instead of the in-cluster API
        # the pod has no JUPYTERHUB_CRYPT_KEY: the chart sets CryptKeeper.keys from its
        # Secret (HubProcess would otherwise invent one; an explicit empty value is kept)
        assert "JUPYTERHUB_CRYPT_KEY" not in env
        env["JUPYTERHUB_CRYPT_KEY"] = ""
        hub = HubProcess(workdir / "hub", port, "", env=env)
        hub.config = local_overrides(chart_config, hub, hub_api, proxy_api)
        hub.start()
        stack = Stack(idp=idp.process, hub=hub, provider="iam", keys=idp.keys)
        try:
            yield ChartHub(objects, KubeStack(stack=stack, kube=kube))
        finally:
            hub.stop()  # before the stand-in (KubeSpawner's reflectors); not the IdP


@pytest.fixture(scope="module")
def minimal(idp: LocalIdP, tmp_path_factory: pytest.TempPathFactory) -> Iterator[ChartHub]:
    secrets = {"iris-hub-secrets": {"iam-client-secret": DEFAULT_CLIENT_SECRET}}
    workdir = tmp_path_factory.mktemp("minimal")
    with chart_hub("values-minimal.yaml", {}, secrets, idp, workdir) as hub:
        yield hub


@pytest.fixture(scope="module")
def openstack() -> Iterator[OpenStackServer]:
    with OpenStackServer(share_ready_polls=1) as server:
        yield server


@pytest.fixture(scope="module")
def complete(
    idp: LocalIdP, openstack: OpenStackServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ChartHub]:
    """helm/values.yaml: PostgreSQL (hub database; registry and accounting in another
    database), Manila on the fake OpenStack, accounting exports into the workdir."""
    if find_pg_bin() is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    workdir = tmp_path_factory.mktemp("complete")
    with postgres_server("jupyterhub") as pg:
        iris_db = pg.create_database("iris")
        secrets = {
            "iris-hub-secrets": {
                "iam-client-secret": DEFAULT_CLIENT_SECRET,
                "hub-db-password": "unused-with-trust-authentication",
                "registry-db-url": iris_db,
                "accounting-db-url": iris_db,
            },
            "iris-openstack": {
                "application-credential-id": APP_CRED_ID,
                "application-credential-secret": APP_CRED_SECRET,
            },
        }
        local = {
            "hub": {"db": {"url": pg.url_for("jupyterhub")}},
            "custom": {
                "iris": {
                    "storage": {"authUrl": openstack.auth_url},
                    "accounting": {
                        "xdmodDir": str(workdir / "xdmod"),
                        "apelSpoolDir": str(workdir / "apel"),
                    },
                }
            },
        }
        with chart_hub("values.yaml", local, secrets, idp, workdir) as hub:
            yield hub


SNIPPETS = {
    "values-minimal.yaml": ["10-iris-iam.py", "30-profiles.py", "99-iris-check.py"],
    "values.yaml": [
        "10-iris-iam.py",
        "20-identity-registry.py",
        "30-profiles.py",
        "40-manila-storage.py",
        "50-accounting.py",
        "99-iris-check.py",
    ],
}
HUB_FIXTURES = {"values-minimal.yaml": "minimal", "values.yaml": "complete"}


@pytest.fixture(params=sorted(HUB_FIXTURES))
def hub(request: pytest.FixtureRequest) -> tuple[str, ChartHub]:
    """Each values file's hub (started once per module)."""
    name: str = request.param
    started: ChartHub = request.getfixturevalue(HUB_FIXTURES[name])
    return name, started


def _wait_gone(stack: KubeStack, name: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while stack.server_model(name) is not None:
        assert time.monotonic() < deadline, stack.hub.log_tail()
        time.sleep(0.2)


def test_the_chart_config_loaded_every_snippet(hub: tuple[str, ChartHub]) -> None:
    values_file, started = hub
    log = started.stack.hub.log_text()
    for name in SNIPPETS[values_file]:
        assert f"jupyterhub_config.d config: {name}" in log, log[-3000:]
    assert "Loading pass-through config section hub.config.JupyterHub" in log


def test_the_client_secret_came_only_from_the_kubernetes_secret(
    hub: tuple[str, ChartHub],
) -> None:
    _values_file, started = hub
    values = _secret_data(find(started.objects, "Secret", "hub"))["values.yaml"]
    assert DEFAULT_CLIENT_SECRET not in values
    assert started.stack.hub.env["IRIS_IAM_CLIENT_SECRET"] == DEFAULT_CLIENT_SECRET


def test_login_and_spawn_the_gpu_profile(hub: tuple[str, ChartHub]) -> None:
    values_file, started = hub
    ks = started.stack
    assert ks.login("ada").status == 302
    name = USERS[("iam", "ada")]["userinfo"]["preferred_username"]
    r = ks.start_server(name, {"profile": "gpu"})
    assert r.status_code in (201, 202), r.text
    try:
        ks.wait_ready(name, timeout=120)
        pod = ks.pod_manifests_of(name)[-1]
        container = pod["spec"]["containers"][0]
        assert container["resources"]["limits"]["nvidia.com/gpu"] == "1"
        assert container["resources"]["requests"]["nvidia.com/gpu"] == "1"
        assert pod["spec"]["nodeSelector"]["nvidia.com/gpu.present"] == "true"
        assert any(t.get("key") == "nvidia.com/gpu" for t in pod["spec"]["tolerations"])
        assert pod["spec"]["securityContext"]["runAsUser"] >= 1000
        # admitted by the namespace's Pod Security "baseline" (docs/admin/z2jh.md): no
        # privileged or NET_ADMIN init container (the chart's block-cloud-metadata), no
        # hostPath; and our singleuser image (its CUDA build for GPUs), not the chart's
        assert baseline_violations(pod) == [], pod["spec"].get("initContainers")
        init = [c["name"] for c in pod["spec"].get("initContainers") or []]
        assert "block-cloud-metadata" not in init, init  # (Manila: iris-storage-init)
        assert "/iris/iris-singleuser" in container["image"], container["image"]
        # what only the chart's own config sets: its labels, namespace and user scheduler
        labels = pod["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "jhub"
        assert labels["helm.sh/chart"] == "jupyterhub-4.4.0"
        assert [p["metadata"]["name"] for p in ks.pods_of(name, NAMESPACE)] == [
            pod["metadata"]["name"]
        ]  # POD_NAMESPACE, from the Deployment's fieldRef
        assert pod["spec"]["schedulerName"] == "jhub-user-scheduler"  # the ConfigMap's name
        volumes = {v["name"]: v for v in pod["spec"]["volumes"]}
        mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
        if values_file == "values-minimal.yaml":  # scratch /home: an emptyDir
            assert volumes["home"] == {"name": "home", "emptyDir": {}}
            assert mounts["/home"] == "home"
        else:  # Manila: a home share and the GPU group's share, as static PV claims
            claims = {
                v["persistentVolumeClaim"]["claimName"]
                for v in volumes.values()
                if "persistentVolumeClaim" in v
            }
            assert len(claims) == 2, volumes
            assert "/shared/iris-gpu" in mounts
            assert any(m.startswith("/home/") for m in mounts), mounts
        assert ks.kube.validation_errors() == {}
    finally:
        ks.stop_server(name)
    assert ks.server_model(name) is None


def test_gpu_profile_refused_outside_its_group(hub: tuple[str, ChartHub]) -> None:
    _values_file, started = hub
    ks = started.stack
    assert ks.login("bob").status == 302
    name = USERS[("iam", "bob")]["userinfo"]["preferred_username"]
    before = len(ks.kube.created_pods())
    r = ks.start_server(name, {"profile": "gpu"})
    # The chart sets slow_spawn_timeout to 0, so the POST answers 202 at once and the
    # refusal ends the pending spawn (a plain hub waits and answers 403 itself).
    assert r.status_code in (202, 403), r.text
    _wait_gone(ks, name)
    assert "'gpu' is not available to you; choose one of: standard." in ks.hub.log_text()
    assert len(ks.kube.created_pods()) == before


def test_complete_hub_keeps_its_state_in_postgres(
    complete: ChartHub, openstack: OpenStackServer
) -> None:
    """After the tests above (file order): the hub's users in the hub database
    (hub.db.url), the POSIX identities and ada's GPU session in the registry database
    (IRIS_REGISTRY_DB_URL / IRIS_ACCOUNTING_DB_URL from the Secret), her home and the GPU
    group's share in Manila at the sizes of the values."""
    import psycopg

    ada, bob = (USERS[("iam", who)]["userinfo"]["preferred_username"] for who in ("ada", "bob"))
    env = complete.stack.hub.env
    registry = env["IRIS_REGISTRY_DB_URL"].replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(registry) as conn:
        identities = [r[0] for r in conn.execute("SELECT username FROM posix_identities")]
        gpus = [r[0] for r in conn.execute("SELECT gpus FROM accounting_sessions")]
        tables = {r[0] for r in conn.execute("SELECT tablename FROM pg_tables")}
    assert sorted(identities) == sorted([ada, bob])  # both logged in
    assert gpus == [1]  # ada's GPU session; bob's refused spawn is no session
    assert "users" not in tables  # JupyterHub's own tables are in the hub's database
    with psycopg.connect(registry.rsplit("/", 1)[0] + "/jupyterhub") as conn:
        names = {r[0] for r in conn.execute("SELECT name FROM users")}
    assert ada in names
    sizes = sorted(share["size"] for share in openstack.shares())
    assert sizes == [20, 200]  # custom.iris.storage.shareSizeGb and groupShares


def test_complete_hub_runs_the_accounting_export_service(complete: ChartHub) -> None:
    """50-accounting.py's service (custom.iris.accounting.service) runs beside the hub and
    writes its first XDMoD file at start into the directory of the values (APEL messages
    follow only once there are sessions to report, so their timing is not tested here)."""
    values = yaml.safe_load(_secret_data(find(complete.objects, "Secret", "hub"))["values.yaml"])
    accounting = values["custom"]["iris"]["accounting"]
    assert accounting["service"] is True
    assert "Starting managed service iris-accounting" in complete.stack.hub.log_text()
    xdmod = Path(accounting["xdmodDir"])
    deadline = time.monotonic() + 60
    while not list(xdmod.glob("xdmod-*.log")):
        assert time.monotonic() < deadline, complete.stack.hub.log_tail()
        time.sleep(0.5)
    assert "Service iris-accounting exited" not in complete.stack.hub.log_text()
