"""A new Rucio client per task, for the instance you name, with the token that is fresh now.

A ``rucio.client.Client`` reads its token once, when it is made. The server's Rucio
extension renews the token file before it expires, but a ``Client`` made an hour ago still
sends the old token, and on the resulting ``401`` it starts Rucio's interactive login and
waits for input. So make a new client for each task (a cell, a loop over datasets), with::

    from iris_jupyterhub.rucio import client
    rucio = client()           # the default instance (the one ``rucio.cfg`` is for)
    rucio.whoami()
    cam = client("cambridge")  # another instance offered to you

Making a client is cheap (it reads files; it does not call the server).

For the default instance ``rucio.client.Client()`` works as well (``RUCIO_CONFIG`` and
``BEARER_TOKEN_FILE`` point at its files). For any other instance it does not: the
client's bearer-token discovery reads ``BEARER_TOKEN_FILE`` (the default instance's token)
before the ``auth_token_file_path`` of any configuration, and the process's Rucio
configuration is the default instance's. :func:`client` sets the instance's host, auth
host, account, VO, CA and token explicitly.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import os
import threading
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .clientcfg import NotebookSettings, settings_from_env
from .refresher import advice_for

__all__ = ["RucioTokenUnavailableError", "client", "instances", "read_token", "token_file"]

# Serialises the short window in which BEARER_TOKEN_FILE names the chosen instance's file.
_ENVIRON_LOCK = threading.Lock()


class RucioTokenUnavailableError(RuntimeError):
    """There is no Rucio token for this instance now; the message says why and what to do."""


def _settings(environ: Mapping[str, str] | None = None) -> NotebookSettings:
    try:
        settings = settings_from_env(environ)
    except ValueError as error:
        raise RucioTokenUnavailableError(
            f"The Rucio set-up of this server is broken: {error}"
        ) from None
    if settings is None:
        raise RucioTokenUnavailableError(
            "Rucio is not set up in this server: the hub offers no Rucio instance to you or "
            "to the profile you started (IRIS_RUCIO_INSTANCES is not set)."
        )
    return settings


def instances(environ: Mapping[str, str] | None = None) -> list[str]:
    """The names of the Rucio instances this server has tokens for, the default first."""
    settings = _settings(environ)
    default = settings.default.name
    return [default, *(i.name for i in settings.instances if i.name != default)]


def token_file(instance: str | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """The token file of ``instance`` (the default one when None); it may not exist."""
    settings = _settings(environ)
    try:
        chosen = settings.find(instance)
    except KeyError:
        offered = ", ".join(i.name for i in settings.instances)
        raise RucioTokenUnavailableError(
            f"There is no Rucio instance called {instance!r} in this server; it has: {offered}."
        ) from None
    return settings.files(chosen).token


def _why_missing(name: str, status_path: Path) -> str:
    try:
        status = json.loads(status_path.read_text())
    except (OSError, ValueError):
        return (
            f"No Rucio token for {name}: the server's Rucio extension has not written one "
            "(it starts with the server; if it keeps missing, tell the hub administrators)."
        )
    message = status.get("message") or status.get("reason") or "no reason given"
    if status.get("state") == "refused":
        advice = status.get("advice") or advice_for(str(status.get("reason")))
        return f"No Rucio token for {name}: {message}. {advice}"
    return (
        f"No Rucio token for {name} at the moment ({message}). The server keeps asking the "
        "hub; try again in a minute."
    )


def read_token(instance: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """The current token of ``instance``; :class:`RucioTokenUnavailableError` says why not."""
    path = token_file(instance, environ)
    try:
        token = path.read_text().strip()
    except FileNotFoundError:
        token = ""
    if not token:
        name = path.name.removesuffix(".token")
        raise RucioTokenUnavailableError(_why_missing(name, path.with_name(f"{name}.status.json")))
    return token


@contextlib.contextmanager
def _bearer_token_file(path: Path) -> Iterator[None]:
    """``BEARER_TOKEN_FILE`` = ``path`` (and no ``BEARER_TOKEN``) while a client is made."""
    names = ("BEARER_TOKEN_FILE", "BEARER_TOKEN")
    with _ENVIRON_LOCK:
        saved = {name: os.environ.get(name) for name in names}
        os.environ["BEARER_TOKEN_FILE"] = str(path)
        os.environ.pop("BEARER_TOKEN", None)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


def client(instance: str | None = None, **options: Any) -> Any:
    """A new ``rucio.client.Client`` for ``instance`` (the default one when None).

    ``options`` go to ``Client`` (``account=``, ``timeout=``, ...); the instance's own
    account, VO and CA certificate are used unless given. Raises
    :class:`RucioTokenUnavailableError` when there is no token now (the message says why:
    for example that you must log out and in again), and :class:`ImportError` when the
    Rucio client is not installed.

    Make a new one per task: a client keeps the token it was made with.
    """
    settings = _settings()
    path = token_file(instance)
    chosen = settings.find(path.name.removesuffix(".token"))
    token = read_token(chosen.name)
    try:
        rucio_client = importlib.import_module("rucio.client")
    except ImportError as error:
        raise ImportError(
            f"The Rucio client is not installed here ({error}): pip install rucio-clients"
        ) from error
    account = options.pop("account", None) or chosen.account or None
    vo = options.pop("vo", None) or chosen.vo or None
    ca_cert = options.pop("ca_cert", None) or chosen.ca_cert or None
    with _bearer_token_file(path):
        made = rucio_client.Client(
            rucio_host=chosen.rucio_host,
            auth_host=chosen.auth_host,
            account=account,
            ca_cert=ca_cert,
            auth_type="oidc",
            vo=vo,
            **options,
        )
    # What the client may have taken from the process's configuration (the default
    # instance's rucio.cfg) or a BEARER_TOKEN in the environment is this instance's here.
    made.account = account or os.environ.get("RUCIO_ACCOUNT") or None
    made.vo = vo or os.environ.get("RUCIO_VO") or "def"
    if ca_cert is None and chosen != settings.default:
        made.ca_cert = os.environ.get("X509_CERT_DIR") or True
    made.auth_token = token
    made.headers["X-Rucio-Auth-Token"] = token
    return made
