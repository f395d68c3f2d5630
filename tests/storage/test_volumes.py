"""Pod volumes, mounts and the ownership init container (its script run for real)."""

from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest

from devstack.kube_checks import validate_manifest
from iris_jupyterhub.storage.manifests import MountedShare
from iris_jupyterhub.storage.volumes import (
    GROUP_MODE,
    HOME_MODE,
    INIT_CONTAINER_NAME,
    INIT_MOUNT_ROOT,
    PodStorage,
    ownership_script,
    pod_storage,
)

from .test_manifests import group_share, home_share

INIT_IMAGE = "quay.io/jupyter/base-notebook:2025-01-01"


def readonly_share() -> MountedShare:
    return group_share(
        owner_key="group:vo.iris.ac.uk/desc",
        object_name="iris-group-jhub-vo-iris-ac-uk-desc-0123456789",
        mount_path="/shared/desc",
        gid=3000003,
        read_only=True,
    )


def pod(storage: PodStorage) -> dict[str, Any]:
    """A minimal researcher pod the way the spawner builds it, with ``storage`` in."""
    spec: dict[str, Any] = {
        "securityContext": {
            "runAsUser": 2000001,
            "runAsGroup": 2000001,
            "runAsNonRoot": True,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [
            {
                "name": "notebook",
                "image": INIT_IMAGE,
                "volumeMounts": storage.volume_mounts,
                "securityContext": {
                    "allowPrivilegeEscalation": False,
                    "capabilities": {"drop": ["ALL"]},
                },
            }
        ],
        "volumes": storage.volumes,
    }
    if storage.init_containers:
        spec["initContainers"] = storage.init_containers
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "jupyter-alice"}, "spec": spec}


@pytest.mark.parametrize("ownership_init", [True, False])
@pytest.mark.parametrize("pull", [None, "IfNotPresent"])
def test_pod_with_storage_is_valid_kubernetes(ownership_init: bool, pull: str | None) -> None:
    shares = [home_share(), group_share(), readonly_share()]
    storage = pod_storage(
        shares, init_image=INIT_IMAGE, image_pull_policy=pull, ownership_init=ownership_init
    )
    assert validate_manifest(pod(storage)) == []
    assert len(storage.init_containers) == (1 if ownership_init else 0)


def test_volumes_and_mounts() -> None:
    shares = [home_share(), group_share(), readonly_share()]
    storage = pod_storage(shares, init_image=INIT_IMAGE)
    assert storage.volumes == [
        {"name": s.object_name, "persistentVolumeClaim": {"claimName": s.object_name}}
        for s in shares[:2]
    ] + [
        {
            "name": shares[2].object_name,
            "persistentVolumeClaim": {"claimName": shares[2].object_name, "readOnly": True},
        }
    ]
    assert storage.volume_mounts == [
        {"name": shares[0].object_name, "mountPath": "/home/jovyan"},
        {"name": shares[1].object_name, "mountPath": "/shared/lsst"},
        {"name": shares[2].object_name, "mountPath": "/shared/desc", "readOnly": True},
    ]
    assert storage.home == "/home/jovyan"  # the pod's HOME
    assert pod_storage(shares[1:], init_image=INIT_IMAGE).home is None
    names = [v["name"] for v in storage.volumes]
    assert len(set(names)) == len(names)
    assert all(re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", n) and len(n) <= 63 for n in names)


def test_init_container_touches_writable_shares_as_root_with_three_capabilities() -> None:
    shares = [home_share(), readonly_share(), group_share()]
    (init,) = pod_storage(shares, init_image=INIT_IMAGE).init_containers
    assert init["name"] == INIT_CONTAINER_NAME
    assert init["image"] == INIT_IMAGE
    assert "imagePullPolicy" not in init
    assert init["securityContext"] == {
        "runAsUser": 0,
        "runAsGroup": 0,
        "runAsNonRoot": False,
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "capabilities": {"drop": ["ALL"], "add": ["CHOWN", "FOWNER", "FSETID"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    assert init["resources"]["limits"] == {"cpu": "100m", "memory": "64Mi"}
    # The read-only share (index 1) is neither mounted nor changed.
    assert init["volumeMounts"] == [
        {"name": shares[0].object_name, "mountPath": f"{INIT_MOUNT_ROOT}/0"},
        {"name": shares[2].object_name, "mountPath": f"{INIT_MOUNT_ROOT}/2"},
    ]
    assert init["command"][:2] == ["/bin/sh", "-c"]
    assert init["command"][2] == ownership_script(
        [(0, 2000001, 2000001, HOME_MODE), (2, 0, 3000002, GROUP_MODE)]
    )


def test_script_has_only_integers_and_is_never_recursive() -> None:
    shares = [home_share(), group_share()]
    script = pod_storage(shares, init_image=INIT_IMAGE).init_containers[0]["command"][2]
    head = ownership_script([])
    assert script.startswith(head)
    calls = script[len(head) :].splitlines()
    assert calls == [
        f"own_home {INIT_MOUNT_ROOT}/0 2000001 2000001 0700",
        f"own_group {INIT_MOUNT_ROOT}/1 0 3000002 2770",
    ]
    for call in calls:  # nothing but integers after the function and the mount point
        assert re.fullmatch(r"own_(home|group) /iris-storage/[0-9]+ [0-9]+ [0-9]+ [0-7]{4}", call)
    assert "-R" not in script
    assert "--recursive" not in script
    for share in shares:
        for text in (share.owner_key, share.object_name, share.mount_path, share.share_id):
            assert text not in script
    for bad in [
        (0, 1, 1, -1),
        (0, "1; rm -rf /", 1, 0o700),
        (0, True, 1, 0o700),
        (0, 1, 1, 0o17777),
    ]:
        with pytest.raises(ValueError, match=r"integers|file mode"):
            ownership_script([bad])  # type: ignore[list-item]


def test_nothing_to_own_means_no_init_container() -> None:
    assert pod_storage([readonly_share()], init_image=INIT_IMAGE).init_containers == []
    assert pod_storage([], init_image=INIT_IMAGE) == PodStorage([], [], [])
    assert pod_storage([home_share()], init_image="", ownership_init=False).init_containers == []


@pytest.mark.parametrize(
    ("shares", "kwargs", "message"),
    [
        ([home_share(), home_share()], {}, "mounted twice"),
        ([home_share(), group_share(mount_path="/home/jovyan")], {}, "one mount path"),
        ([home_share()], {"image_pull_policy": "Sometimes"}, "image_pull_policy"),
        ([home_share()], {"init_image": ""}, "init image"),
    ],
)
def test_refused(shares: list[MountedShare], kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        pod_storage(shares, **{"init_image": INIT_IMAGE, **kwargs})


# --------------------------------------------------------------------------------------
# The script itself, run as root with exactly the init container's capabilities
# --------------------------------------------------------------------------------------

SETPRIV = shutil.which("setpriv")
needs_root = pytest.mark.skipif(
    os.geteuid() != 0 or SETPRIV is None,
    reason="running the ownership script needs root (chown) and util-linux setpriv",
)


def run_script(script: str, root: Path, caps: str = "+chown,+fowner,+fsetid") -> int:
    """Run ``script`` with ``root`` in place of the init container's mount root."""
    assert SETPRIV is not None
    script = script.replace(f"{INIT_MOUNT_ROOT}/", f"{root}/")
    command = [SETPRIV, f"--bounding-set=-all,{caps}", "--inh-caps=-all"]
    return subprocess.run([*command, "/bin/sh", "-c", script], check=False).returncode


def owner(path: Path) -> tuple[int, int, str]:
    info = path.stat()
    return info.st_uid, info.st_gid, f"{stat.S_IMODE(info.st_mode):04o}"


@pytest.fixture
def share_roots(tmp_path: Path) -> Path:
    for index in range(2):
        root = tmp_path / str(index)
        root.mkdir()
        (root / "existing-data").write_text("kept as it is")
        os.chown(root, 0, 0)
        root.chmod(0o755)
    return tmp_path


@needs_root
def test_script_makes_new_roots_usable_once_and_only_the_root(share_roots: Path) -> None:
    shares = [home_share(), group_share()]
    script = pod_storage(shares, init_image=INIT_IMAGE).init_containers[0]["command"][2]
    home, group = share_roots / "0", share_roots / "1"
    assert run_script(script, share_roots) == 0
    assert owner(home) == (2000001, 2000001, "0700")
    assert owner(group) == (0, 3000002, "2770")
    for root in (home, group):  # never recursive
        assert owner(root / "existing-data")[:2] == (0, 0)

    home.chmod(0o750)  # the researcher's own choice survives later starts
    assert run_script(script, share_roots) == 0
    assert owner(home) == (2000001, 2000001, "0750")
    assert owner(group) == (0, 3000002, "2770")


@needs_root
def test_a_home_already_given_the_pod_fs_group_is_still_made_private(share_roots: Path) -> None:
    # What kubelet leaves behind when a driver with fsGroupPolicy File mounted it first.
    home = share_roots / "0"
    os.chown(home, 0, 2000001)
    home.chmod(0o2775)
    assert run_script(ownership_script([(0, 2000001, 2000001, HOME_MODE)]), share_roots) == 0
    uid, gid, mode = owner(home)
    assert (uid, gid) == (2000001, 2000001)
    assert int(mode, 8) & 0o777 == 0o700  # GNU chmod keeps a directory's setgid bit


@needs_root
def test_capabilities_are_the_minimum(share_roots: Path) -> None:
    script = ownership_script([(0, 2000001, 2000001, HOME_MODE), (1, 0, 3000002, GROUP_MODE)])
    # Without FSETID the setgid bit of the group share is silently lost.
    assert run_script(script, share_roots, "+chown,+fowner") == 0
    assert owner(share_roots / "1") == (0, 3000002, "0770")
    # Without FOWNER the second chmod of the home (no longer root's) fails, visibly.
    os.chown(share_roots / "0", 0, 0)
    assert run_script(script, share_roots, "+chown,+fsetid") != 0
    assert owner(share_roots / "0") == (2000001, 2000001, "0700")  # the first chmod held


@needs_root
def test_a_failed_chown_leaves_the_root_for_the_next_start(share_roots: Path) -> None:
    script = ownership_script([(0, 2000001, 2000001, HOME_MODE)])
    assert run_script(script, share_roots, "+fowner,+fsetid") != 0
    assert owner(share_roots / "0") == (0, 0, "0700")  # private, and still root's: retried
    assert run_script(script, share_roots) == 0
    assert owner(share_roots / "0") == (2000001, 2000001, "0700")
