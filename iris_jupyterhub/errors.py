"""The one error model: failures carry the sentence a researcher reads and become HTTP errors here.

JupyterHub renders :class:`tornado.web.HTTPError` as its error page and shows the
``jupyterhub_message`` attribute verbatim, so researchers see a sentence that says what
happened and what to do next, while the hub log keeps the technical detail.

Every failure a researcher may see is a :class:`UserFacingError`: a spawn request that
cannot be honoured (:class:`~iris_jupyterhub.spawner.SpawnRequestError`), a storage
failure (:class:`~iris_jupyterhub.storage.StorageError`) and an identity registry failure
(:class:`~iris_jupyterhub.posix.RegistryError`). Each class says which HTTP status it
answers with (and a ``Retry-After`` when trying again later may help);
:meth:`UserFacingError.to_http_error` is the only place where one becomes an
:class:`~tornado.web.HTTPError`, and the hooks JupyterHub calls convert with
:func:`as_http_error` (the spawner's form and ``load_user_options``) or, for the
authenticator's POSIX mapping, that method directly.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from tornado import web

__all__ = ["UserFacingError", "as_http_error", "http_error", "service_unavailable"]


def http_error(
    status: int, message: str, *, headers: dict[str, str] | None = None
) -> web.HTTPError:
    """Build an :class:`~tornado.web.HTTPError` whose page shows ``message``.

    ``message`` is passed through ``%s`` so that a ``%`` in user-controlled text
    can never break the formatting of the log line or the page.
    """
    error = web.HTTPError(status, "%s", message)
    error.jupyterhub_message = message  # type: ignore[attr-defined]
    if headers:
        error.headers = headers  # type: ignore[attr-defined]
    return error


def service_unavailable(what: str, retry_after: int = 30) -> web.HTTPError:
    """A 503 for an outside service that did not answer, with a retry hint."""
    return http_error(
        503,
        f"{what} is not responding at the moment, so you cannot be signed in. "
        f"Nothing is wrong with your account: please try again in a minute or two.",
        headers={"Retry-After": str(retry_after)},
    )


class UserFacingError(Exception):
    """A failure with a sentence for the researcher and a detail for the hub log.

    Subclasses set the class attributes :attr:`status`, :attr:`user_message` and
    :attr:`retry_after`; an instance may override the first two.

    Attributes:
        status: The HTTP status the hub answers with.
        user_message: The researcher-facing sentence, safe to show on an error page: it
            never contains claim values, database or cloud details.
        detail: The technical detail for the hub log; ``str(error)`` shows it.
        retry_after: Seconds after which trying again may help (sent as
            ``Retry-After``), or ``None``.
    """

    status: int = 500
    user_message: str = (
        "Something went wrong on this hub. The hub administrators have been told; "
        "please contact them if this persists."
    )
    retry_after: int | None = None

    def __init__(
        self, detail: str = "", *, user_message: str | None = None, status: int | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        if user_message is not None:
            self.user_message = user_message
        if status is not None:
            self.status = status

    @property
    def message(self) -> str:
        """The researcher-facing sentence (the same as :attr:`user_message`)."""
        return self.user_message

    @property
    def headers(self) -> dict[str, str]:
        """HTTP headers of the answer: ``Retry-After`` when :attr:`retry_after` is set."""
        return {} if self.retry_after is None else {"Retry-After": str(self.retry_after)}

    def to_http_error(self) -> web.HTTPError:
        """The :class:`~tornado.web.HTTPError` JupyterHub renders with :attr:`user_message`."""
        return http_error(self.status, self.user_message, headers=self.headers or None)


@contextlib.contextmanager
def as_http_error(log: Callable[[UserFacingError], None] | None = None) -> Iterator[None]:
    """Turn a :class:`UserFacingError` raised in the block into the HTTP error JupyterHub shows.

    For the body of a hook JupyterHub calls (``with as_http_error(): ...``, also in a
    coroutine): the error becomes :meth:`UserFacingError.to_http_error`, chained to it;
    anything else passes through unchanged. ``log``, when given, is called with the error
    first.
    """
    try:
        yield
    except UserFacingError as e:
        if log is not None:
            log(e)
        raise e.to_http_error() from e
