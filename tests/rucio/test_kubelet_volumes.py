"""The fake kubelet gives each pod's ``emptyDir`` mounts a directory of its own and moves
environment paths under them there (the Rucio token directory ``/run/iris-rucio`` of two
researchers' servers on one machine must not be shared), as plain data."""

from __future__ import annotations

from pathlib import Path

from devstack.kubelet import empty_dir_mounts, local_paths, singleuser_command

POD = {
    "spec": {
        "volumes": [
            {"name": "iris-rucio", "emptyDir": {"medium": "Memory"}},
            {"name": "home", "persistentVolumeClaim": {"claimName": "home-ada"}},
        ],
        "containers": [
            {
                "volumeMounts": [
                    {"name": "iris-rucio", "mountPath": "/run/iris-rucio"},
                    {"name": "home", "mountPath": "/home/jovyan"},
                ]
            }
        ],
    }
}


def test_only_empty_dir_mounts_get_a_local_directory(tmp_path: Path) -> None:
    assert empty_dir_mounts(POD, tmp_path) == {
        "/run/iris-rucio": tmp_path / "volumes" / "iris-rucio"
    }


def test_paths_under_a_mount_move_and_nothing_else(tmp_path: Path) -> None:
    mounts = {"/run/iris-rucio": tmp_path / "rucio"}
    env = {
        "IRIS_RUCIO_DIR": "/run/iris-rucio",
        "BEARER_TOKEN_FILE": "/run/iris-rucio/ral.token",
        "OTHER": "/run/iris-rucio-not-this",
        "IRIS_RUCIO_INSTANCES": '[{"name": "ral"}]',
        "HOME": "/home/jovyan",
    }
    assert local_paths(env, mounts) == {
        **env,
        "IRIS_RUCIO_DIR": str(tmp_path / "rucio"),
        "BEARER_TOKEN_FILE": str(tmp_path / "rucio" / "ral.token"),
    }


def test_servers_can_run_with_another_interpreter() -> None:
    container = {"command": ["jupyterhub-singleuser"], "args": ["--debug"]}
    cmd = singleuser_command(container, "/opt/notebook/bin/python")
    assert cmd[:3] == ["/opt/notebook/bin/python", "-m", "jupyterhub.singleuser"]
    assert "--debug" in cmd
