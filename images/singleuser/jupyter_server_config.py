"""Jupyter Server defaults of the IRIS singleuser image (copied to /usr/local/etc/jupyter).

IRISSpawner starts the server directly as the researcher's own uid and gid (never as
root, so docker-stacks' start.sh, which would switch users, does not run) and sets
``HOME`` to their home share's mount path (``ManilaStorage.home_mount_path``,
``/home/{username}`` by default). The image's working directory, /home/jovyan, belongs to
uid 1000 and is not writable by them: open the file browser in ``HOME`` instead.
When an admin sets ``Spawner.notebook_dir`` (``JUPYTERHUB_ROOT_DIR``), this file steps aside.
"""

import os

c = get_config()  # noqa: F821 - provided by the Jupyter config loader

_home = os.environ.get("HOME", "")
_usable = bool(_home) and os.path.isdir(_home) and os.access(_home, os.W_OK | os.X_OK)
if _usable and not os.environ.get("JUPYTERHUB_ROOT_DIR"):
    c.ServerApp.root_dir = _home
