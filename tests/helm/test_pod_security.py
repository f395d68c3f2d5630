"""tests/helm/pod_security.py on plain data: what Pod Security baseline admits and refuses."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from tests.helm.chart import CHART_DIR, CHART_MISSING
from tests.helm.pod_security import baseline_violations

#: z2jh's ``singleuser.cloudMetadata.blockWithIptables: true`` init container, as the
#: chart's files/hub/jupyterhub_config.py builds it (checked against that file below).
BLOCK_CLOUD_METADATA = {
    "name": "block-cloud-metadata",
    "image": "quay.io/jupyterhub/k8s-network-tools:4.4.0",
    "command": ["iptables", "--append", "OUTPUT", "--protocol", "tcp", "--destination",
                "169.254.169.254", "--destination-port", "80", "--jump", "DROP"],
    "securityContext": {
        "privileged": True, "runAsUser": 0, "capabilities": {"add": ["NET_ADMIN"]}
    },
}  # fmt: skip

#: A researcher's pod as IRISSpawner sends it (trimmed): admitted by baseline.
RESEARCHER_POD: dict[str, Any] = {
    "apiVersion": "v1",
    "kind": "Pod",
    "metadata": {"name": "jupyter-ada"},
    "spec": {
        "securityContext": {"runAsUser": 10001, "runAsGroup": 10001, "fsGroup": 10001},
        "containers": [
            {
                "name": "notebook",
                "image": "registry.example.ac.uk/iris/iris-singleuser:0.1.0",
                "ports": [{"containerPort": 8888, "name": "notebook-port"}],
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"], "add": ["NET_BIND_SERVICE"]},
                },
            }
        ],
        "volumes": [{"name": "home", "emptyDir": {}}],
    },
}


def test_a_researcher_pod_is_admitted() -> None:
    assert baseline_violations(RESEARCHER_POD) == []
    assert baseline_violations(RESEARCHER_POD["spec"]) == []  # a bare pod spec too


def test_the_charts_block_cloud_metadata_container_is_refused() -> None:
    pod = copy.deepcopy(RESEARCHER_POD)
    pod["spec"]["initContainers"] = [BLOCK_CLOUD_METADATA]
    assert baseline_violations(pod) == [
        "initContainers 'block-cloud-metadata' is privileged",
        "initContainers 'block-cloud-metadata' adds capabilities ['NET_ADMIN']",
    ]


@pytest.mark.skipif(CHART_MISSING is not None, reason=str(CHART_MISSING))
def test_the_mirror_matches_the_charts_config() -> None:
    """BLOCK_CLOUD_METADATA is what the chart's config really adds."""
    source = (CHART_DIR / "files" / "hub" / "jupyterhub_config.py").read_text()
    assert 'name="block-cloud-metadata"' in source
    assert "privileged=True" in source
    assert 'capabilities=client.V1Capabilities(add=["NET_ADMIN"])' in source
    assert "c.KubeSpawner.init_containers.append(ip_block_container)" in source


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda s: s["volumes"].append({"name": "root", "hostPath": {"path": "/"}}),
            "volume 'root' is a hostPath",
        ),
        (lambda s: s.update(hostNetwork=True), "spec.hostNetwork is true"),
        (lambda s: s.update(hostPID=True), "spec.hostPID is true"),
        (
            lambda s: s["containers"][0]["ports"][0].update(hostPort=8888),
            "containers 'notebook' uses hostPort 8888",
        ),
        (
            lambda s: s["containers"][0]["securityContext"]["capabilities"].update(
                add=["CHOWN", "SYS_ADMIN"]
            ),
            "containers 'notebook' adds capabilities ['SYS_ADMIN']",
        ),
        (
            lambda s: s["containers"][0]["securityContext"].update(privileged=True),
            "containers 'notebook' is privileged",
        ),
    ],
    ids=["hostPath", "hostNetwork", "hostPID", "hostPort", "SYS_ADMIN", "privileged"],
)
def test_each_baseline_breach_is_named(change: Any, expected: str) -> None:
    pod = copy.deepcopy(RESEARCHER_POD)
    change(pod["spec"])
    assert baseline_violations(pod) == [expected]
