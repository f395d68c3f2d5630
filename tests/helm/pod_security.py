"""Kubernetes Pod Security "baseline" for a pod manifest, as plain data.

docs/admin/z2jh.md labels the hub's namespace ``pod-security.kubernetes.io/enforce:
baseline``; the API server then refuses any pod that breaks the baseline controls
(https://kubernetes.io/docs/concepts/security/pod-security-standards/#baseline). A values
file whose spawned pods break it makes every spawn fail, so the tests check the pods the
hub really sends with :func:`baseline_violations`.

Checked here (the controls a JupyterHub pod can plausibly trip): privileged containers,
capabilities added beyond the baseline list, hostPath volumes, host namespaces
(hostNetwork, hostPID, hostIPC) and host ports. Every container list counts: containers,
initContainers and ephemeralContainers.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

#: The capabilities baseline allows a container to add (and nothing else).
BASELINE_CAPABILITIES = frozenset(
    {
        "AUDIT_WRITE",
        "CHOWN",
        "DAC_OVERRIDE",
        "FOWNER",
        "FSETID",
        "KILL",
        "MKNOD",
        "NET_BIND_SERVICE",
        "SETFCAP",
        "SETGID",
        "SETPCAP",
        "SETUID",
        "SYS_CHROOT",
    }
)
_CONTAINER_LISTS = ("containers", "initContainers", "ephemeralContainers")
_HOST_NAMESPACES = ("hostNetwork", "hostPID", "hostIPC")


def _pod_spec(pod: Mapping[str, Any]) -> Mapping[str, Any]:
    """The pod spec of a Pod manifest (or of a bare spec)."""
    spec: Mapping[str, Any] = pod.get("spec", pod)
    return spec


def baseline_violations(pod: Mapping[str, Any]) -> list[str]:
    """What in ``pod`` (a Pod manifest, camelCase as sent to the API) Pod Security
    baseline refuses, one sentence each; ``[]`` when the pod is admitted."""
    spec = _pod_spec(pod)
    problems = [f"spec.{field} is true" for field in _HOST_NAMESPACES if spec.get(field)]
    for volume in spec.get("volumes") or []:
        if "hostPath" in volume:
            problems.append(f"volume {volume.get('name')!r} is a hostPath")
    for kind in _CONTAINER_LISTS:
        for container in spec.get(kind) or []:
            where = f"{kind} {container.get('name')!r}"
            security = container.get("securityContext") or {}
            if security.get("privileged"):
                problems.append(f"{where} is privileged")
            added = set((security.get("capabilities") or {}).get("add") or [])
            if extra := sorted(added - BASELINE_CAPABILITIES):
                problems.append(f"{where} adds capabilities {extra}")
            for port in container.get("ports") or []:
                if port.get("hostPort"):
                    problems.append(f"{where} uses hostPort {port['hostPort']}")
    return problems
