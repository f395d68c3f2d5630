"""helm/storage-pv-policy.yaml: the PersistentVolumes the hub may create.

Each CEL validation of the policy sits in :data:`RULES` beside the same rule in Python,
on a PersistentVolume as plain data (the API server evaluates the CEL; there is no CEL
evaluator here). The test that the policy's expressions are exactly these keeps the two
side by side; then every PersistentVolume the library builds
(``iris_jupyterhub.storage.manifests.persistent_volume_manifest``, both CSI drivers, home
and group shares) passes every rule, and what a compromised hub might create instead (a
hostPath volume, a claim or a CSI secret in another namespace, another driver, a foreign
name) fails one.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from hypothesis import given
from hypothesis import strategies as st

from devstack.kube_checks import validate_manifest
from iris_jupyterhub.storage.manifests import (
    CEPH_CSI,
    MANILA_CSI,
    object_name_for,
    persistent_volume_manifest,
)
from tests.helm.chart import REPO_ROOT
from tests.storage.test_manifests import DRIVERS, SHARES, group_share, home_share, settings

POLICY_YAML = REPO_ROOT / "helm" / "storage-pv-policy.yaml"
RBAC_YAML = REPO_ROOT / "helm" / "storage-rbac.yaml"
#: ValidatingAdmissionPolicy v1 is GA from 1.30; the newest schemas shipped.
KUBE_VERSIONS = ("1.30", "1.37")
SECRET_REFS = (
    "nodeStageSecretRef",
    "nodePublishSecretRef",
    "nodeExpandSecretRef",
    "controllerPublishSecretRef",
    "controllerExpandSecretRef",
)

PV = dict[str, Any]
Rule = Callable[[PV, str], bool]


def _in_namespace(ref: dict[str, Any] | None, namespace: str) -> bool:
    return ref is not None and ref.get("namespace") == namespace


def _secret_refs_in(pv: PV, namespace: str) -> bool:
    csi = pv["spec"].get("csi")
    return csi is None or all(
        ref not in csi or _in_namespace(csi[ref], namespace) for ref in SECRET_REFS
    )


#: (the policy's CEL, whitespace-normalised; the same rule in Python: pv, hub namespace).
#: A CEL expression that fails to evaluate (a missing field) refuses the request
#: (failurePolicy: Fail), so the Python side treats a missing field as "refused".
RULES: list[tuple[str, Rule]] = [
    (
        "object.metadata.name.startsWith('iris-')",
        lambda pv, ns: pv["metadata"]["name"].startswith("iris-"),
    ),
    (
        "has(object.spec.csi) && object.spec.csi.driver in "
        "['cephfs.manila.csi.openstack.org', 'cephfs.csi.ceph.com']",
        lambda pv, ns: (
            "csi" in pv["spec"] and pv["spec"]["csi"]["driver"] in (MANILA_CSI, CEPH_CSI)
        ),
    ),
    (
        "has(object.spec.claimRef) && has(object.spec.claimRef.__namespace__) && "
        "object.spec.claimRef.__namespace__ == variables.hubNamespace",
        lambda pv, ns: _in_namespace(pv["spec"].get("claimRef"), ns),
    ),
    (
        "!has(object.spec.csi) || ( "
        + " && ".join(
            f"(!has(object.spec.csi.{ref}) || "
            f"object.spec.csi.{ref}.__namespace__ == variables.hubNamespace)"
            for ref in SECRET_REFS
        )
        + ")",
        _secret_refs_in,
    ),
]


def _documents(text: str | None = None) -> dict[str, dict[str, Any]]:
    docs = yaml.safe_load_all(POLICY_YAML.read_text() if text is None else text)
    return {doc["kind"]: doc for doc in docs if doc}


def _hub_namespace(policy: dict[str, Any]) -> str:
    (variable,) = policy["spec"]["variables"]
    assert variable["name"] == "hubNamespace"
    match = re.fullmatch(r"'([a-z0-9-]+)'", variable["expression"])
    assert match, variable
    return match.group(1)


def refusals(pv: PV, namespace: str = "jhub") -> list[str]:
    """The CEL of each rule ``pv`` breaks (Python side); ``[]``: the policy admits it."""
    return [cel for cel, rule in RULES if not rule(pv, namespace)]


def test_the_policy_is_exactly_the_mirrored_rules() -> None:
    policy = _documents()["ValidatingAdmissionPolicy"]
    expressions = [" ".join(v["expression"].split()) for v in policy["spec"]["validations"]]
    assert expressions == [cel for cel, _ in RULES]
    assert all(v["reason"] == "Forbidden" and v["message"] for v in policy["spec"]["validations"])


def test_the_policy_binds_to_the_hubs_account_and_persistent_volumes() -> None:
    docs = _documents()
    policy, binding = docs["ValidatingAdmissionPolicy"], docs["ValidatingAdmissionPolicyBinding"]
    assert list(docs) == ["ValidatingAdmissionPolicy", "ValidatingAdmissionPolicyBinding"]
    assert binding["spec"] == {
        "policyName": policy["metadata"]["name"],
        "validationActions": ["Deny"],
    }
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert policy["spec"]["matchConstraints"]["resourceRules"] == [
        {
            "apiGroups": [""],
            "apiVersions": ["v1"],
            "operations": ["CREATE", "UPDATE"],
            "resources": ["persistentvolumes"],
        }
    ]
    # the same account storage-rbac.yaml grants "create" on persistentvolumes
    rbac = {d["kind"]: d for d in yaml.safe_load_all(RBAC_YAML.read_text()) if d}
    (subject,) = rbac["ClusterRoleBinding"]["subjects"]
    account = f"system:serviceaccount:{subject['namespace']}:{subject['name']}"
    (condition,) = policy["spec"]["matchConditions"]
    assert condition["expression"] == f"request.userInfo.username == '{account}'"
    assert _hub_namespace(policy) == subject["namespace"]


def test_the_documented_sed_moves_every_namespace_reference() -> None:
    """``sed 's/jhub/<namespace>/g'`` (the file's header) yields the policy of that hub."""
    assert "sed 's/jhub/<your namespace>/g' helm/storage-pv-policy.yaml" in POLICY_YAML.read_text()
    docs = _documents(POLICY_YAML.read_text().replace("jhub", "team-a"))
    policy = docs["ValidatingAdmissionPolicy"]
    assert _hub_namespace(policy) == "team-a"
    assert policy["spec"]["matchConditions"][0]["expression"].endswith(
        "== 'system:serviceaccount:team-a:hub'"
    )
    assert policy["metadata"]["name"].endswith("-team-a")
    assert (
        docs["ValidatingAdmissionPolicyBinding"]["spec"]["policyName"]
        == (policy["metadata"]["name"])
    )


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_the_policy_is_valid_kubernetes(kube_version: str) -> None:
    problems = {
        kind: errors
        for kind, doc in _documents().items()
        if (errors := validate_manifest(doc, kube_version))
    }
    assert problems == {}


@pytest.mark.parametrize("read_only", [False, True])
@pytest.mark.parametrize("kind", sorted(SHARES))
@pytest.mark.parametrize("driver", DRIVERS)
def test_every_volume_the_library_builds_is_admitted(
    driver: str, kind: str, read_only: bool
) -> None:
    pv = persistent_volume_manifest(SHARES[kind](read_only=read_only), settings(driver))
    assert refusals(pv) == []


def test_manila_share_access_ids_and_mounters_are_admitted() -> None:
    for mounter in ("", "kernel", "fuse"):
        for ids in (False, True):
            csi = settings("manila", mounter=mounter, manila_share_access_ids=ids)
            assert refusals(persistent_volume_manifest(group_share(), csi)) == []
    csi = settings("cephfs", mounter="kernel", ceph_fs_name="")
    assert refusals(persistent_volume_manifest(home_share(), csi)) == []


@given(
    kind=st.sampled_from(sorted(SHARES)),
    key=st.text(min_size=1, max_size=80),
    hint=st.text(max_size=40),
    driver=st.sampled_from(DRIVERS),
)
def test_any_share_name_is_admitted(kind: str, key: str, hint: str, driver: str) -> None:
    share = SHARES[kind](object_name=object_name_for(kind, key, hint))
    assert refusals(persistent_volume_manifest(share, settings(driver))) == []


def test_another_hubs_volumes_are_refused_by_this_hubs_policy() -> None:
    pv = persistent_volume_manifest(home_share(), settings("manila", namespace="team-a"))
    assert refusals(pv, "team-a") == []
    assert len(refusals(pv, "jhub")) == 2  # claimRef and the secret refs


def _library_pv(driver: str = "manila") -> PV:
    return persistent_volume_manifest(home_share(), settings(driver))


def _host_path(pv: PV) -> None:
    del pv["spec"]["csi"]
    pv["spec"]["hostPath"] = {"path": "/", "type": "Directory"}


@pytest.mark.parametrize(
    ("change", "broken"),
    [
        (_host_path, [1]),
        (lambda pv: pv["spec"]["claimRef"].update(namespace="kube-system"), [2]),
        (lambda pv: pv["spec"]["claimRef"].pop("namespace"), [2]),
        (lambda pv: pv["spec"].pop("claimRef"), [2]),
        (lambda pv: pv["spec"]["csi"]["nodeStageSecretRef"].update(namespace="kube-system"), [3]),
        (
            lambda pv: pv["spec"]["csi"].update(
                controllerExpandSecretRef={"name": "x", "namespace": "other"}
            ),
            [3],
        ),
        (lambda pv: pv["spec"]["csi"].update(driver="rbd.csi.ceph.com"), [1]),
        (lambda pv: pv["metadata"].update(name="pvc-0123"), [0]),
    ],
    ids=[
        "hostPath",
        "foreign-claimRef-namespace",
        "claimRef-without-namespace",
        "no-claimRef",
        "foreign-stage-secret",
        "foreign-expand-secret",
        "other-driver",
        "foreign-name",
    ],
)
def test_what_a_compromised_hub_might_create_is_refused(
    change: Callable[[PV], None], broken: list[int]
) -> None:
    pv = copy.deepcopy(_library_pv())
    change(pv)
    assert refusals(pv) == [RULES[i][0] for i in broken]


def test_on_1_28_only_v1beta1_exists() -> None:
    """The header's advice for 1.28/1.29: v1 is unknown there, v1beta1 takes the same
    objects (behind the ValidatingAdmissionPolicy feature gate)."""
    for doc in _documents().values():
        assert validate_manifest(doc, "1.28") == [
            f"$: no schema for {doc['kind']} admissionregistration.k8s.io/v1 in Kubernetes 1.28"
        ]
        beta = {**doc, "apiVersion": "admissionregistration.k8s.io/v1beta1"}
        assert validate_manifest(beta, "1.28") == []


def test_a_host_path_volume_is_otherwise_a_valid_object() -> None:
    """Without the policy nothing refuses it: it is a valid PersistentVolume, and RBAC
    "create" on persistentvolumes allows it."""
    pv = copy.deepcopy(_library_pv())
    _host_path(pv)
    assert validate_manifest(pv, "1.30") == []
    assert refusals(pv) == [RULES[1][0]]
