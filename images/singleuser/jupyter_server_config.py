"""Jupyter Server defaults of the IRIS singleuser image (copied to /usr/local/etc/jupyter).

IRISSpawner starts the server directly as the researcher's own uid and gid (never as
root, so docker-stacks' start.sh, which would switch users, does not run) and sets
``HOME`` to their home share's mount path (``ManilaStorage.home_mount_path``,
``/home/{username}`` by default). The image's working directory, /home/jovyan, belongs to
uid 1000 and is not writable by them: open the file browser in ``HOME`` instead.
``Spawner.notebook_dir`` (``JUPYTERHUB_ROOT_DIR``), when an admin sets it, still wins.
"""

import os

c = get_config()  # noqa: F821 - provided by the Jupyter config loader

_home = os.environ.get("HOME", "")
if _home and os.path.isdir(_home) and os.access(_home, os.W_OK | os.X_OK):
    c.ServerApp.root_dir = _home
