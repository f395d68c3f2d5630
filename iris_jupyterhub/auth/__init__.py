"""Authenticators for IRIS identity providers: INDIGO IAM and EGI Check-in.

Public API::

    from iris_jupyterhub.auth import IAMAuthenticator, EGICheckinAuthenticator

Entry points (``c.JupyterHub.authenticator_class``): ``iris-iam``, ``egi-checkin`` and
the generic ``iris-oidc``.
"""

from ..groups import GroupMembership, GroupRule, parse_group_rule
from .claims import GroupParseResult, canonical_groups
from .egi import EGICheckinAuthenticator
from .iam import IAMAuthenticator
from .oidc import OIDCAuthenticator
from .tokens import IDTokenError, verify_id_token
from .usernames import safe_username

__all__ = [
    "EGICheckinAuthenticator",
    "GroupMembership",
    "GroupParseResult",
    "GroupRule",
    "IAMAuthenticator",
    "IDTokenError",
    "OIDCAuthenticator",
    "canonical_groups",
    "parse_group_rule",
    "safe_username",
    "verify_id_token",
]
