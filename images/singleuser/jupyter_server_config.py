"""Jupyter Server defaults of the IRIS singleuser image (copied to /usr/local/etc/jupyter).

IRISSpawner starts the server as the researcher's own uid and gid and sets ``HOME`` to
their home share's mount path (``ManilaStorage.home_mount_path``, ``/home/{username}`` by
default). docker-stacks' start.sh (the image's entrypoint) still runs, but never as
root, so it cannot switch users or fix /etc/passwd. The image's working directory,
/home/jovyan, belongs to uid 1000 and is not writable by them: open the file browser in
``HOME`` instead. Without a home share (``helm/values-minimal.yaml`` mounts a scratch
emptyDir at /home), ``HOME`` does not exist yet: it is created (mode 0700) when its
parent is writable. When an admin sets ``Spawner.notebook_dir`` (``JUPYTERHUB_ROOT_DIR``),
this file steps aside.
"""

import contextlib
import os

c = get_config()  # noqa: F821 - provided by the Jupyter config loader

_home = os.environ.get("HOME", "")
if _home and not os.path.lexists(_home):
    _parent = os.path.dirname(os.path.abspath(_home))
    if os.path.isdir(_parent) and os.access(_parent, os.W_OK | os.X_OK):
        with contextlib.suppress(OSError):  # raced or refused: the check below decides
            os.mkdir(_home, 0o700)
_usable = bool(_home) and os.path.isdir(_home) and os.access(_home, os.W_OK | os.X_OK)
if _usable and not os.environ.get("JUPYTERHUB_ROOT_DIR"):
    c.ServerApp.root_dir = _home

# Rucio (iris_jupyterhub.rucio, installed by the Dockerfile): the extension keeps a fresh
# Rucio token file per instance the hub offers (a no-op, with one log line, when it offers
# none), and rucio-jupyterlab, when installed, reads those files. ``update`` keeps the
# extensions enabled elsewhere (jupyter_server_config.d) enabled.
c.ServerApp.jpserver_extensions.update({"iris_jupyterhub.rucio.extension": True})
try:
    from iris_jupyterhub.rucio import configure_rucio_jupyterlab
except ImportError:  # the library is not in this image
    pass
else:
    configure_rucio_jupyterlab(c)  # download mode; see docs/reference/rucio-notebook.md
