"""Failures of the identity registry, each with a sentence for researchers and one for admins.

``str(error)`` is the admin-facing message written to the hub log: it names the option or
the database problem to look at. :attr:`RegistryError.user_message` is what a researcher
sees on the login page; it never contains claim values or database details.

Each class is a :class:`~iris_jupyterhub.errors.UserFacingError` whose
:attr:`~RegistryError.status` is the answer to a login that fails this way (the
authenticator turns it into the error page with
:meth:`~iris_jupyterhub.errors.UserFacingError.to_http_error`): 403 for an identity whose
records conflict or that cannot be a key, 503 with ``Retry-After: 60`` otherwise.
"""

from __future__ import annotations

from ..errors import UserFacingError

__all__ = [
    "IdentityConflictError",
    "InvalidIdentityError",
    "RangeExhaustedError",
    "RegistryError",
    "RegistryUnavailableError",
]


class RegistryError(UserFacingError):
    """Base class: the registry could not give this identity a POSIX account.

    ``RegistryError(message)``: ``message`` is the admin detail (``str(error)``).
    """

    user_message = (
        "Your account could not be set up on this service. "
        "Please contact the service administrators."
    )
    """Researcher-facing sentence, safe to show on an error page."""

    status = 503
    """HTTP status the authenticator answers with when a login fails this way."""

    retry_after: int | None = 60
    """Seconds to wait before trying again (``Retry-After``), or ``None``."""


class RangeExhaustedError(RegistryError):
    """Every id of ``IdentityRegistry.uid_range`` (or ``gid_range``) is taken."""

    user_message = (
        "New accounts cannot be created on this service at the moment. "
        "The administrators have been told; please try again later."
    )
    status = 503


class RegistryUnavailableError(RegistryError):
    """The registry database is down, unreachable, or locked for longer than allowed."""

    user_message = (
        "The account database is not responding at the moment, so you cannot be signed in. "
        "Nothing is wrong with your account: please try again in a minute or two."
    )
    status = 503


class IdentityConflictError(RegistryError):
    """The registry's records for this identity are inconsistent, so it is not used.

    Raised when another live or deleted identity (or a group) holds the same uid, gid or
    name. That can only happen if rows were changed outside the registry; refusing the
    login is safer than letting two people share files. ``iris-jupyterhub posix check``
    lists every such problem.
    """

    user_message = (
        "Your account needs attention from the service administrators before you can "
        "sign in. Please contact them and mention 'identity conflict'."
    )
    status = 403
    retry_after = None


class InvalidIdentityError(RegistryError, ValueError):
    """An issuer or subject that cannot be an identity key (empty or too long)."""

    user_message = (
        "Your identity provider sent an identifier this service cannot accept. "
        "Please contact the service administrators."
    )
    status = 403
    retry_after = None
