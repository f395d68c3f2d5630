"""The stable identity of a person at a provider, and its binding to a hub username.

An identity is the pair (issuer, subject): the provider's issuer identifier without a
trailing ``/`` and the value of the first configured identity claim (``sub`` for INDIGO
IAM; ``voperson_id`` then ``sub`` for EGI Check-in). Display names and user names are never
part of it: they are not unique (Check-in) and they change (IAM renames).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from cryptography.fernet import InvalidToken
from jupyterhub import orm
from jupyterhub.crypto import EncryptionUnavailable, decrypt

from ..errors import http_error
from .tokens import MAX_SUBJECT_LENGTH, normalize_issuer

__all__ = ["check_identity_binding", "identity_from_claims", "same_identity"]


def identity_from_claims(
    issuer: str, claims: Mapping[str, Any], identity_claims: Sequence[str]
) -> dict[str, str] | None:
    """Return ``{"issuer", "subject", "subject_claim"}`` or None if no claim is usable."""
    for claim in identity_claims:
        value = claims.get(claim)
        if isinstance(value, str) and 0 < len(value) <= MAX_SUBJECT_LENGTH:
            return {
                "issuer": normalize_issuer(issuer),
                "subject": value,
                "subject_claim": claim,
            }
    return None


def same_identity(a: Mapping[str, Any] | None, b: Mapping[str, Any] | None) -> bool:
    """True when both identities exist and name the same (issuer, subject)."""
    if not a or not b:
        return False
    return (a.get("issuer"), a.get("subject")) == (b.get("issuer"), b.get("subject"))


async def stored_auth_state(db: Any, username: str) -> dict[str, Any] | None:
    """The auth_state stored for the hub user ``username``: ``None`` when there is no such
    user, none is stored, or it cannot be decrypted (as ``User.get_auth_state``).

    Reads the one column: ``handler.find_user`` loads the whole user (roles, groups,
    servers), which the hub then does again to log the user in; on a login that was the
    largest cost the IAM callback had over GenericOAuthenticator's.
    """
    query = db.query(orm.User.encrypted_auth_state).filter(orm.User.name == username)
    encrypted = query.scalar()
    if encrypted is None:
        return None
    try:
        state: dict[str, Any] | None = await decrypt(encrypted)
    except (ValueError, InvalidToken, EncryptionUnavailable):
        return None
    return state


def check_identity_binding(
    username: str,
    stored_state: Mapping[str, Any] | None,
    new_state: Mapping[str, Any],
    log: logging.Logger,
) -> None:
    """Refuse a login whose username already belongs to a different identity.

    A hub user with no stored identity (created by an admin, or before auth_state was
    enabled) is bound to the first identity that logs in as it.

    Raises:
        tornado.web.HTTPError: 403 when ``username`` is bound to another identity.
    """
    stored = (stored_state or {}).get("identity")
    if not stored:
        return
    new = new_state.get("identity")
    if same_identity(stored, new):
        return
    log.error(
        "Refusing login as %r: the name is bound to %s/%s, this login is %s/%s",
        username,
        stored.get("issuer"),
        stored.get("subject"),
        (new or {}).get("issuer"),
        (new or {}).get("subject"),
    )
    raise http_error(
        403,
        f"The hub username '{username}' already belongs to a different account, so you "
        "cannot be signed in as it. This happens when two people share a user name at "
        "their identity provider, or when your account there was created again. Please "
        "contact the hub administrators and mention 'username conflict'.",
    )
