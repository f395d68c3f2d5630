# EGI Check-in login (EGICheckinAuthenticator), from the environment or z2jh values.
#
# Works unchanged as a plain hub config file (`jupyterhub -f`, or `load_subconfig` from a
# hub's jupyterhub_config.py) and in Zero to JupyterHub, either mounted with
# `hub.extraFiles` at /usr/local/etc/jupyterhub/jupyterhub_config.d/11-egi-checkin.py or
# pasted into `hub.extraConfig`. Mount this file or 10-iris-iam.py, not both.
#
#   variable (values key under custom.iris)             required  meaning
#   IRIS_HUB_URL (hubUrl)                                yes  public URL of the hub; the
#                                                             callback is <url>/hub/oauth_callback
#   IRIS_CHECKIN_CLIENT_ID (checkin.clientId)            yes  client id of the Check-in service
#   IRIS_CHECKIN_CLIENT_SECRET (environment only)        yes  its secret (from a Kubernetes Secret)
#   IRIS_CHECKIN_ALLOWED_GROUPS (checkin.allowedGroups)  no   groups that may log in
#   IRIS_CHECKIN_ADMIN_GROUPS (checkin.adminGroups)      no   groups whose members are hub admins
#   IRIS_CHECKIN_REQUIRED_GROUPS (checkin.requiredGroups) no  groups a user must ALL be in
#   IRIS_CHECKIN_INSTANCE (checkin.instance)             no   production (default)/demo/development
#   IRIS_CHECKIN_ISSUER (checkin.issuer)                 no   another issuer (wins over instance)
#
# Groups are the canonical names of Check-in's entitlements (docs/admin/groups.md), e.g.
# "vo.iris.ac.uk" or "vo.iris.ac.uk/lsst". JUPYTERHUB_CRYPT_KEY must be set too (outside
# z2jh; the chart sets CryptKeeper.keys). Every setting: docs/admin/snippets.md.
from iris_jupyterhub.snippets import SnippetSettings

s = SnippetSettings(globals(), "11-egi-checkin.py")
c = s.config

c.JupyterHub.authenticator_class = "egi-checkin"
c.EGICheckinAuthenticator.client_id = s.required(
    "IRIS_CHECKIN_CLIENT_ID", "checkin.clientId", "the client id of the Check-in service"
)
c.EGICheckinAuthenticator.client_secret = s.required(
    "IRIS_CHECKIN_CLIENT_SECRET", None, "the secret of the Check-in service"
)
c.EGICheckinAuthenticator.oauth_callback_url = (
    s.required("IRIS_HUB_URL", "hubUrl", "the hub's public URL").rstrip("/")
    + "/hub/oauth_callback"
)
# a setting not given leaves the option as it was (its default, or hub.config's)
if s.found("IRIS_CHECKIN_ALLOWED_GROUPS", "checkin.allowedGroups"):
    c.EGICheckinAuthenticator.allowed_groups = set(
        s.groups("IRIS_CHECKIN_ALLOWED_GROUPS", "checkin.allowedGroups")
    )
if s.found("IRIS_CHECKIN_ADMIN_GROUPS", "checkin.adminGroups"):
    c.EGICheckinAuthenticator.admin_groups = set(
        s.groups("IRIS_CHECKIN_ADMIN_GROUPS", "checkin.adminGroups")
    )
if s.found("IRIS_CHECKIN_REQUIRED_GROUPS", "checkin.requiredGroups"):
    c.EGICheckinAuthenticator.required_groups = set(
        s.groups("IRIS_CHECKIN_REQUIRED_GROUPS", "checkin.requiredGroups")
    )
if s.found("IRIS_CHECKIN_INSTANCE", "checkin.instance"):
    c.EGICheckinAuthenticator.checkin_instance = s.optional(
        "IRIS_CHECKIN_INSTANCE", "checkin.instance"
    )
if s.found("IRIS_CHECKIN_ISSUER", "checkin.issuer"):
    c.EGICheckinAuthenticator.issuer = s.optional("IRIS_CHECKIN_ISSUER", "checkin.issuer")
