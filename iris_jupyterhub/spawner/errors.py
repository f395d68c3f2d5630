"""Why a spawn request was refused: an HTTP status and a sentence researchers can act on.

Everything in :mod:`iris_jupyterhub.spawner` that judges a request (a profile choice, a
custom image, a POSIX group) raises :class:`SpawnRequestError`; nothing else escapes for
bad input. Mistakes in the administrator's configuration are :class:`ValueError` at
start-up instead, because no researcher can fix them.
"""

from __future__ import annotations

from ..errors import UserFacingError

__all__ = ["SpawnRequestError", "bad_request", "forbidden"]


class SpawnRequestError(UserFacingError):
    """A spawn request that cannot be honoured: a :class:`~iris_jupyterhub.errors.UserFacingError`.

    Attributes:
        status: The HTTP status to answer with: 400 for a request that makes no sense
            (unknown profile, malformed value), 403 for one the user is not allowed to make.
        message: The researcher-facing sentence (also :attr:`user_message`), safe to show
            on the spawn page: it quotes only what the researcher sent (shortened) and
            names of things they may see.
        detail: Extra context for the hub log (``str(error)`` includes it), or ``""``.
    """

    def __init__(self, status: int, message: str, detail: str = "") -> None:
        super().__init__(detail, user_message=message, status=status)

    def __str__(self) -> str:
        return f"{self.message} ({self.detail})" if self.detail else self.message


def bad_request(message: str, detail: str = "") -> SpawnRequestError:
    """A 400: the request names something that does not exist or is malformed."""
    return SpawnRequestError(400, message, detail)


def forbidden(message: str, detail: str = "") -> SpawnRequestError:
    """A 403: the request is well formed, but this user may not make it."""
    return SpawnRequestError(403, message, detail)
