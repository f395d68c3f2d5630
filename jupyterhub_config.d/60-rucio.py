# Rucio in notebooks (RucioTokens): short-lived Rucio tokens for users' servers, from the
# environment or z2jh values.
#
# Works unchanged as a plain hub config file (`jupyterhub -f`, or `load_subconfig` from a
# hub's jupyterhub_config.py) and in Zero to JupyterHub, either mounted with
# `hub.extraFiles` at /usr/local/etc/jupyterhub/jupyterhub_config.d/60-rucio.py or pasted
# into `hub.extraConfig`. Needs a login file (10-/11-: the tokens come from the user's
# refresh token at that provider) and, for the pod settings, 30-profiles.py (IRISSpawner).
#
#   variable (values key under custom.iris)        required  meaning
#   IRIS_RUCIO_INSTANCE_LIST (rucio.instances)      yes  YAML list of instances, e.g.
#        [{name: ral, rucio_host: "https://...", auth_host: "https://...", groups: [iris]}]
#   IRIS_RUCIO_RENEWAL_MARGIN (rucio.renewalMargin) no   seconds before expiry a cached
#                                                        token is replaced (default 120)
#   IRIS_RUCIO_NOTEBOOK_DIR (rucio.notebookDir)     no   token directory in the pod
#                                                        (default /run/iris-rucio)
#
# It defines the custom scope custom:iris-rucio-token, grants it to every user filtered to
# themselves (!user) and to their servers' tokens (Spawner.server_token_scopes); the IRIS
# authenticators then serve GET /hub/api/iris/rucio/<instance>/token. No token gets
# admin:auth_state. Every setting: docs/admin/snippets.md; Rucio: docs/admin/rucio.md.
from iris_jupyterhub.rucio import configure_hub
from iris_jupyterhub.snippets import SnippetSettings

s = SnippetSettings(globals(), "60-rucio.py")
c = s.config

instances = s.value("IRIS_RUCIO_INSTANCE_LIST", "rucio.instances", list, help="the instances")
if instances is None:
    s.required("IRIS_RUCIO_INSTANCE_LIST", "rucio.instances", "the Rucio instances offered")
configure_hub(c, instances)
if s.found("IRIS_RUCIO_RENEWAL_MARGIN", "rucio.renewalMargin"):
    c.RucioTokens.renewal_margin = s.integer(
        "IRIS_RUCIO_RENEWAL_MARGIN", "rucio.renewalMargin", 120, minimum=0
    )
if s.found("IRIS_RUCIO_NOTEBOOK_DIR", "rucio.notebookDir"):
    c.RucioTokens.notebook_dir = s.optional("IRIS_RUCIO_NOTEBOOK_DIR", "rucio.notebookDir")
