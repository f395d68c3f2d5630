# The start-up check: every iris-jupyterhub option configured so far, checked now.
#
# JupyterHub builds spawners only when a server starts, so a mistake in c.IRISSpawner
# (profiles), c.ManilaStorage or c.SessionAccounting would otherwise show first when a
# researcher spawns. This file runs iris_jupyterhub.startup.check_config on the hub's
# configuration, and a bad setting stops the hub with a message naming the option.
#
# Load it LAST. In Zero to JupyterHub mount it with `hub.extraFiles` at
# /usr/local/etc/jupyterhub/jupyterhub_config.d/99-iris-check.py (it then runs after the
# other mounted files, before hub.extraConfig), or paste it into `hub.extraConfig` under a
# key that sorts after every other key (e.g. "99-iris-check"). A plain hub that execs the
# files into its own configuration (as z2jh does), or is started with `-f` on a file that
# ends with this one's content, is checked whole; with traitlets' `load_subconfig` each
# file has a configuration of its own, so end the hub's jupyterhub_config.py with
# `from iris_jupyterhub.startup import check_config; check_config(c)` instead (the hub log
# says so). It has no settings of its own.
from iris_jupyterhub.snippets import SnippetSettings, check_hub_config

check_hub_config(globals(), SnippetSettings(globals(), "99-iris-check.py").config)
