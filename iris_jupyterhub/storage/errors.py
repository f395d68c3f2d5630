"""Errors of the storage layer: an admin detail (``str(error)``) and a researcher message.

Every failure of OpenStack (Keystone, Manila) surfaces as a :class:`StorageError`
subclass, a :class:`~iris_jupyterhub.errors.UserFacingError`. ``str(error)`` is the
technical detail for the hub log (HTTP method, path, status, Manila's own message,
request id); :attr:`StorageError.user_message` is a sentence a researcher can read on the
spawn-failure page. Each class sets the HTTP status the spawn fails with: 503 with
``Retry-After: 120`` when the storage service did not answer, 507 when the cloud
project's quota is used up, 500 otherwise.
"""

from __future__ import annotations

from ..errors import UserFacingError

__all__ = [
    "StorageConfigError",
    "StorageConflictError",
    "StorageError",
    "StorageNotFoundError",
    "StorageQuotaError",
    "StorageStateError",
    "StorageUnavailableError",
    "StorageVersionError",
]

_CONTACT = "The hub administrators have been told; please contact them if this persists."


class StorageError(UserFacingError):
    """Base class: ``str()`` is the admin detail, ``user_message`` is for researchers."""

    status = 500
    user_message = (
        "Your home directory could not be prepared because of a problem with this hub's "
        f"storage service. {_CONTACT}"
    )

    def __init__(self, detail: str, *, user_message: str | None = None) -> None:
        super().__init__(detail, user_message=user_message or None)


class StorageUnavailableError(StorageError):
    """OpenStack did not answer usefully: network errors, timeouts, 5xx, rejected credentials.

    ``retryable`` is true for transient failures (connection errors, timeouts, 5xx) that
    a caller may retry later; false for e.g. credentials rejected after a re-authentication.
    """

    status = 503
    retry_after = 120
    user_message = (
        "Your home directory could not be prepared because this hub's storage service is not "
        "responding at the moment. Nothing is wrong with your account: please try again in a "
        "few minutes."
    )

    def __init__(
        self, detail: str, *, user_message: str | None = None, retryable: bool = False
    ) -> None:
        super().__init__(detail, user_message=user_message)
        self.retryable = retryable


class StorageQuotaError(StorageError):
    """Manila refused with 413 ``overLimit``: the cloud project's share quota is used up."""

    status = 507
    user_message = (
        "Your home directory could not be created because the storage quota of this hub's "
        "cloud project is used up. The hub administrators have been told; please contact them."
    )


class StorageStateError(StorageError):
    """A share or access rule ended in an ``error`` state (never retried, never deleted)."""

    user_message = (
        "Your home directory is in an error state on this hub's storage service and needs an "
        f"administrator's attention. {_CONTACT}"
    )


class StorageConflictError(StorageError):
    """Inconsistent state: e.g. an unparsable export location or a read-only rule for us."""


class StorageNotFoundError(StorageError):
    """Manila answered 404 ``itemNotFound`` for something that should exist."""


class StorageVersionError(StorageError):
    """The Manila server's maximum microversion is below what this library needs."""


class StorageConfigError(StorageError):
    """The OpenStack configuration does not match the cloud (e.g. no Manila in the catalog)."""
