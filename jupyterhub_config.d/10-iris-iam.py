# IRIS IAM login for JupyterHub, configured from environment variables.
#
# Drop this file into a hub's `jupyterhub_config.d/` directory, or into Zero to JupyterHub
# with `hub.extraFiles` (mountPath /usr/local/etc/jupyterhub/jupyterhub_config.d/10-iris-iam.py)
# and set the variables with `hub.extraEnv`:
#
#   IRIS_IAM_CLIENT_ID       client id registered at IRIS IAM (required)
#   IRIS_IAM_CLIENT_SECRET   its secret (required; keep it in a Kubernetes Secret)
#   IRIS_IAM_ALLOWED_GROUPS  comma-separated groups that may log in, e.g. "iris,dune"
#                            (canonical syntax, see docs/admin/groups.md; empty: nobody
#                            is allowed by group)
#   IRIS_IAM_ADMIN_GROUPS    comma-separated groups whose members are hub admins (optional)
#   IRIS_HUB_URL             public URL of the hub, e.g. https://hub.example.ac.uk
#                            (the callback is <IRIS_HUB_URL>/hub/oauth_callback)
#   IRIS_IAM_ISSUER          another INDIGO IAM instance (optional; default IRIS IAM)
#
# JUPYTERHUB_CRYPT_KEY must also be set (`openssl rand -hex 32`): the tokens and groups are
# kept in encrypted auth_state, and the hub refuses to start without it.
import os

c = get_config()  # provided by JupyterHub when it loads config files


def _required(name):
    value = os.environ.get(name, "").strip()
    if not value:
        raise RuntimeError(f"{name} is not set: needed by jupyterhub_config.d/10-iris-iam.py")
    return value


def _groups(name):
    return {g.strip() for g in os.environ.get(name, "").split(",") if g.strip()}


c.JupyterHub.authenticator_class = "iris-iam"
c.IAMAuthenticator.client_id = _required("IRIS_IAM_CLIENT_ID")
c.IAMAuthenticator.client_secret = _required("IRIS_IAM_CLIENT_SECRET")
c.IAMAuthenticator.oauth_callback_url = (
    _required("IRIS_HUB_URL").rstrip("/") + "/hub/oauth_callback"
)
c.IAMAuthenticator.allowed_groups = _groups("IRIS_IAM_ALLOWED_GROUPS")
if _groups("IRIS_IAM_ADMIN_GROUPS"):
    c.IAMAuthenticator.admin_groups = _groups("IRIS_IAM_ADMIN_GROUPS")
if os.environ.get("IRIS_IAM_ISSUER"):
    c.IAMAuthenticator.issuer = os.environ["IRIS_IAM_ISSUER"]
