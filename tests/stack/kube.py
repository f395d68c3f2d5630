"""The Kubernetes API stand-in, now in :mod:`iris_jupyterhub.demo.kube` (re-exported)."""

from __future__ import annotations

from iris_jupyterhub.demo.kube import (
    DEFAULT_NAMESPACE,
    KUBE_VERSION,
    KUBELET_AGENT,
    REPO_ROOT,
    RESOURCES,
    CreatedObject,
    KubeStandIn,
    field_selector_matches,
    label_selector_matches,
    main,
    validate_manifest,
)

__all__ = [
    "DEFAULT_NAMESPACE",
    "KUBELET_AGENT",
    "KUBE_VERSION",
    "REPO_ROOT",
    "RESOURCES",
    "CreatedObject",
    "KubeStandIn",
    "field_selector_matches",
    "label_selector_matches",
    "main",
    "validate_manifest",
]

if __name__ == "__main__":
    main()
