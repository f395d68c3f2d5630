# POSIX identity registry (IdentityRegistry) on PostgreSQL, from the environment or z2jh values.
#
# Works unchanged as a plain hub config file (`jupyterhub -f`, or `load_subconfig` from a
# hub's jupyterhub_config.py) and in Zero to JupyterHub, either mounted with
# `hub.extraFiles` at /usr/local/etc/jupyterhub/jupyterhub_config.d/20-identity-registry.py
# or pasted into `hub.extraConfig`. Used with 10-iris-iam.py or 11-egi-checkin.py.
#
#   variable (values key under custom.iris)                 required  meaning
#   IRIS_REGISTRY_DB_URL (environment only)                 yes  the registry's database, e.g.
#                              postgresql+psycopg://registry:<password>@db.example.ac.uk/registry
#   IRIS_REGISTRY_GROUP_ALIASES (registry.groupAliases)     no   groups that are the same
#                              community, YAML/JSON mapping: {"vo.iris.ac.uk": "iris"}
#
# The URL holds a password, so it is only read from the environment (in z2jh: hub.extraEnv
# from a Kubernetes Secret). The schema is created and upgraded by the registry at first
# use. The `iris-jupyterhub posix` commands read the same variable. Every setting:
# docs/admin/snippets.md; the registry: docs/admin/posix.md.
from iris_jupyterhub.snippets import SnippetSettings

s = SnippetSettings(globals(), "20-identity-registry.py")
c = s.config

c.IdentityRegistry.db_url = s.required(
    "IRIS_REGISTRY_DB_URL",
    None,
    "the registry's database, postgresql+psycopg://user:password@host/database",
)
aliases = s.value("IRIS_REGISTRY_GROUP_ALIASES", "registry.groupAliases", dict)
if aliases is not None:
    c.IdentityRegistry.group_aliases = aliases
