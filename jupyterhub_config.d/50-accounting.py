# Session accounting (SessionAccounting) and its export service, from the environment or
# z2jh values.
#
# Works unchanged as a plain hub config file (`jupyterhub -f`, or `load_subconfig` from a
# hub's jupyterhub_config.py) and in Zero to JupyterHub, either mounted with
# `hub.extraFiles` at /usr/local/etc/jupyterhub/jupyterhub_config.d/50-accounting.py or
# pasted into `hub.extraConfig`. Needs 30-profiles.py (IRISSpawner records the sessions).
#
#   variable (values key under custom.iris)                     required  meaning
#   IRIS_ACCOUNTING_DB_URL (environment only)                    no  accounting database
#                                                                    (default: the registry's)
#   IRIS_SITE_NAME (accounting.siteName)                         no  APEL site name (GOC DB);
#                                                                    set: APEL records are written
#   IRIS_ACCOUNTING_CLOUD_SERVICE (accounting.cloudComputeService) no APEL CloudComputeService
#   IRIS_ACCOUNTING_XDMOD_RESOURCE (accounting.xdmodResource)    no  XDMoD resource name
#   IRIS_ACCOUNTING_XDMOD_DIR (accounting.xdmodDir)              no  XDMoD files go here
#   IRIS_ACCOUNTING_APEL_SPOOL_DIR (accounting.apelSpoolDir)     no  APEL dirq queue
#                                                             (default /var/spool/apel/outgoing)
#   IRIS_ACCOUNTING_EXPORT_INTERVAL (accounting.exportInterval)  no  seconds between exports (3600)
#   IRIS_ACCOUNTING_SERVICE (accounting.service)                 no  run the export service
#                                       (default: on when a site name or XDMoD dir is set)
#   IRIS_HUB_CONFIG_FILE (hubConfigFile)                         no  the hub's config file the
#                                                 service loads (default: found automatically)
#
# The export service (`python -m iris_jupyterhub.accounting.service`, named iris-accounting)
# reads the database directly: it needs no hub API scopes, so no role is granted to it. It
# loads the hub's configuration again, so it gets the hub's environment (JupyterHub gives
# services almost none), including the secrets from hub.extraEnv (only
# CONFIGPROXY_AUTH_TOKEN, JUPYTERHUB_CRYPT_KEY and JPY_COOKIE_SECRET are left out); under
# z2jh it also reads the chart's Secret, as the hub does (same container and uid). The
# directories must be writable by the hub (z2jh: hub.extraVolumes/extraVolumeMounts).
# Every setting: docs/admin/snippets.md; accounting: docs/admin/accounting.md.
import sys

from iris_jupyterhub.snippets import SnippetSettings, add_service, service_environment

s = SnippetSettings(globals(), "50-accounting.py")
c = s.config

if s.found("IRIS_ACCOUNTING_DB_URL", None):
    c.SessionAccounting.db_url = s.optional("IRIS_ACCOUNTING_DB_URL", None)
for trait, variable, key in (
    ("site_name", "IRIS_SITE_NAME", "accounting.siteName"),
    ("cloud_compute_service", "IRIS_ACCOUNTING_CLOUD_SERVICE", "accounting.cloudComputeService"),
    ("xdmod_resource", "IRIS_ACCOUNTING_XDMOD_RESOURCE", "accounting.xdmodResource"),
    ("xdmod_out_dir", "IRIS_ACCOUNTING_XDMOD_DIR", "accounting.xdmodDir"),
    ("apel_spool_dir", "IRIS_ACCOUNTING_APEL_SPOOL_DIR", "accounting.apelSpoolDir"),
):
    if s.found(variable, key):
        c.SessionAccounting[trait] = s.optional(variable, key)
if s.found("IRIS_ACCOUNTING_EXPORT_INTERVAL", "accounting.exportInterval"):
    c.SessionAccounting.export_interval = s.integer(
        "IRIS_ACCOUNTING_EXPORT_INTERVAL", "accounting.exportInterval", 3600, minimum=60
    )
exports = s.found("IRIS_SITE_NAME", "accounting.siteName") or s.found(
    "IRIS_ACCOUNTING_XDMOD_DIR", "accounting.xdmodDir"
)
if s.boolean("IRIS_ACCOUNTING_SERVICE", "accounting.service", exports):
    hub_config = s.hub_config_file()
    add_service(
        c,
        {
            "name": "iris-accounting",
            "command": [
                sys.executable,
                "-m",
                "iris_jupyterhub.accounting.service",
                "--config",
                hub_config,
            ],
            # the service loads this file again, where no hub runs to say which file it is
            "environment": {**service_environment(s.environ), "IRIS_HUB_CONFIG_FILE": hub_config},
        },
    )
