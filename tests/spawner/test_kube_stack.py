"""The Kubernetes stand-in harness, proven with the real stack: IdP login, a real hub with
KubeSpawner, the proxy, the fake kubelet's single-user server, and a clean shutdown."""

from __future__ import annotations

import signal
import time

import httpx
import pytest

from devstack.configs import KUBE_IMAGE, KUBE_NAMESPACE
from devstack.kube import KubeStandIn, field_selector_matches, label_selector_matches
from devstack.stacks import KubeStack

USER = "aresearcher"  # IdP login "ada"


def test_validate_manifest_strict() -> None:
    from devstack.kube import validate_manifest

    good = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "p"},
        "spec": {"containers": [{"name": "c", "image": KUBE_IMAGE}]},
    }
    assert validate_manifest(good) == []
    bad = {**good, "spec": {"containers": [{"name": "c", "image": 1, "imagePullPolcy": "x"}]}}
    errors = validate_manifest(bad)
    assert any("imagePullPolcy" in e for e in errors), errors  # unknown field: strict
    assert any("$.spec.containers[0].image" in e for e in errors), errors
    assert validate_manifest({"kind": "Pod"}) == ["$: kind and apiVersion are required"]


def test_selectors() -> None:
    labels = {"component": "singleuser-server", "hub.jupyter.org/username": "ada"}
    assert label_selector_matches(labels, "component=singleuser-server")
    assert label_selector_matches(labels, "component==singleuser-server,hub.jupyter.org/username")
    assert not label_selector_matches(labels, "component!=singleuser-server")
    assert label_selector_matches(labels, "component in (a, singleuser-server),!missing")
    assert not label_selector_matches(labels, "component notin (singleuser-server)")
    event = {"involvedObject": {"kind": "Pod", "name": "p"}}
    assert field_selector_matches(event, "involvedObject.kind=Pod")
    assert not field_selector_matches(event, "involvedObject.kind!=Pod")


@pytest.mark.e2e
def test_spawn_and_stop_through_the_hub(kube_stack: KubeStack, kube: KubeStandIn) -> None:
    attempt = kube_stack.login("ada")
    assert attempt.status == 302, attempt.text  # logged in; not following (no auto-spawn)

    r = kube_stack.start_server(USER)
    assert r.status_code in (201, 202), r.text
    model = kube_stack.wait_ready(USER, timeout=45)
    assert model["ready"] is True

    # the pod exists in the stand-in, Running, with the image asked for
    pods = kube_stack.pods_of(USER)
    assert len(pods) == 1, pods
    pod = pods[0]
    name = pod["metadata"]["name"]
    assert pod["metadata"]["namespace"] == KUBE_NAMESPACE
    assert pod["status"]["phase"] == "Running"
    assert pod["spec"]["containers"][0]["image"] == KUBE_IMAGE
    assert pod["metadata"]["labels"]["component"] == "singleuser-server"
    assert kube.get_pod(KUBE_NAMESPACE, name) is not None

    # what the spawner sent validates against the Kubernetes schemas (strict)
    sent = kube_stack.pod_manifests_of(USER)
    assert len(sent) == 1
    assert sent[0]["spec"]["containers"][0]["image"] == KUBE_IMAGE
    assert kube.validation_errors(actor=None) == {}
    assert all(r.status in (200, 201) for r in kube.created())

    # the hub talked the Kubernetes API the way KubeSpawner does (reflectors' watches)
    watched = [q for q in kube.requests() if q["query"].get("watch") == "true"]
    assert any(q["path"].endswith(f"/namespaces/{KUBE_NAMESPACE}/pods") for q in watched)

    # the single-user server run by the fake kubelet answers through the proxy
    [run] = [p for p in kube.kubelet_pods() if p["name"] == name]
    assert run["ip"] == pod["status"]["podIP"]
    status = kube_stack.user_request(USER, "GET", f"/user/{USER}/api/status")
    assert status.status_code == 200, status.text
    assert "last_activity" in status.json()
    # and with the browser session from the IdP login (server-side OAuth handshake)
    page = attempt.client.get(f"{kube_stack.hub.url}/user/{USER}/", follow_redirects=True)
    assert page.status_code == 200, page.text  # OAuth between the pod's server and the hub
    assert page.url.path.startswith(f"/user/{USER}/")

    # stop: the pod is deleted and its process ends
    kube_stack.stop_server(USER)
    kube.wait_pod_gone(KUBE_NAMESPACE, name)
    assert any(d["kind"] == "Pod" and d["name"] == name for d in kube.deleted())
    kube.wait_for(lambda: not [p for p in kube.kubelet_pods() if p["name"] == name], 10)
    with pytest.raises(httpx.HTTPError):
        httpx.get(f"http://{run['ip']}:{run['port']}/", timeout=2)


@pytest.mark.e2e
def test_hub_shutdown_is_clean(kube_stack: KubeStack, kube: KubeStandIn) -> None:
    """With a server running, SIGTERM: the hub deletes the pod and exits promptly and cleanly
    (KubeSpawner's reflectors do not hang it); the stand-in is still up meanwhile."""
    kube_stack.start_server(USER)
    kube_stack.wait_ready(USER, timeout=45)
    [pod] = kube_stack.pods_of(USER)

    hub = kube_stack.hub
    proc = hub.proc
    assert proc is not None
    started = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    code = proc.wait(timeout=20)
    elapsed = time.monotonic() - started
    hub.stop()  # the proxy (same process group) too
    assert code == 0, hub.log_tail()
    assert elapsed < 10, f"hub took {elapsed:.1f}s to stop\n{hub.log_tail()}"
    kube.wait_pod_gone(KUBE_NAMESPACE, pod["metadata"]["name"])
    log = hub.log_text()  # no errors from KubeSpawner or its reflectors, before or at exit
    assert "Traceback" not in log, hub.log_tail(80)
    assert "Task was destroyed" not in log, hub.log_tail(80)
