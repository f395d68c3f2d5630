"""The one place where failures become HTTP errors with a message people can act on.

JupyterHub renders :class:`tornado.web.HTTPError` as its error page and shows the
``jupyterhub_message`` attribute verbatim, so researchers see a sentence that says what
happened and what to do next, while the hub log keeps the technical detail.
"""

from __future__ import annotations

from tornado import web

__all__ = ["http_error", "service_unavailable"]


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
