# IRIS IAM login (IAMAuthenticator), configured from the environment or z2jh values.
#
# Works unchanged as a plain hub config file (`jupyterhub -f`, or `load_subconfig` from a
# hub's jupyterhub_config.py) and in Zero to JupyterHub, either mounted with
# `hub.extraFiles` at /usr/local/etc/jupyterhub/jupyterhub_config.d/10-iris-iam.py or
# pasted into `hub.extraConfig`. Mount this file or 11-egi-checkin.py, not both.
#
#   variable (values key under custom.iris)     required  meaning
#   IRIS_HUB_URL (hubUrl)                        yes  public URL of the hub; the
#                                                     callback is <url>/hub/oauth_callback
#   IRIS_IAM_CLIENT_ID (iam.clientId)            yes  client id registered at IAM
#   IRIS_IAM_CLIENT_SECRET (environment only)    yes  its secret (from a Kubernetes Secret)
#   IRIS_IAM_ALLOWED_GROUPS (iam.allowedGroups)  no   groups that may log in: "iris,dune"
#   IRIS_IAM_ADMIN_GROUPS (iam.adminGroups)      no   groups whose members are hub admins
#   IRIS_IAM_REQUIRED_GROUPS (iam.requiredGroups) no  groups a user must ALL be in
#   IRIS_IAM_ISSUER (iam.issuer)                 no   another INDIGO IAM (default: IRIS IAM)
#
# The environment wins over values. Group syntax: docs/admin/groups.md. JUPYTERHUB_CRYPT_KEY
# must be set too (`openssl rand -hex 32`) outside z2jh (the chart sets CryptKeeper.keys):
# tokens and groups are kept in encrypted auth_state. Every setting: docs/admin/snippets.md.
from iris_jupyterhub.snippets import SnippetSettings

s = SnippetSettings(globals(), "10-iris-iam.py")
c = s.config

c.JupyterHub.authenticator_class = "iris-iam"
c.IAMAuthenticator.client_id = s.required(
    "IRIS_IAM_CLIENT_ID", "iam.clientId", "the client id registered at IRIS IAM"
)
c.IAMAuthenticator.client_secret = s.required(
    "IRIS_IAM_CLIENT_SECRET", None, "the secret of the client registered at IRIS IAM"
)
c.IAMAuthenticator.oauth_callback_url = (
    s.required("IRIS_HUB_URL", "hubUrl", "the hub's public URL").rstrip("/")
    + "/hub/oauth_callback"
)
# a setting not given leaves the option as it was (its default, or hub.config's)
if s.found("IRIS_IAM_ALLOWED_GROUPS", "iam.allowedGroups"):
    c.IAMAuthenticator.allowed_groups = set(
        s.groups("IRIS_IAM_ALLOWED_GROUPS", "iam.allowedGroups")
    )
if s.found("IRIS_IAM_ADMIN_GROUPS", "iam.adminGroups"):
    c.IAMAuthenticator.admin_groups = set(s.groups("IRIS_IAM_ADMIN_GROUPS", "iam.adminGroups"))
if s.found("IRIS_IAM_REQUIRED_GROUPS", "iam.requiredGroups"):
    c.IAMAuthenticator.required_groups = set(
        s.groups("IRIS_IAM_REQUIRED_GROUPS", "iam.requiredGroups")
    )
if s.found("IRIS_IAM_ISSUER", "iam.issuer"):
    c.IAMAuthenticator.issuer = s.optional("IRIS_IAM_ISSUER", "iam.issuer")
