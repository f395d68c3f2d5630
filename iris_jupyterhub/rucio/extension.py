"""The Jupyter Server extension that keeps the Rucio token files fresh in a researcher's server.

Enable it explicitly (the IRIS singleuser image does, in ``jupyter_server_config.py``)::

    c.ServerApp.jpserver_extensions = {"iris_jupyterhub.rucio.extension": True}

or ``--ServerApp.jpserver_extensions=iris_jupyterhub.rucio.extension=True``.
Without ``IRIS_RUCIO_INSTANCES`` in the environment it logs one line and does nothing.
Otherwise, at start-up, it makes ``IRIS_RUCIO_DIR`` private (``0700``), writes each
instance's client configuration ``<name>.cfg`` and the default instance's ``rucio.cfg``,
and then, for as long as the server runs, keeps ``<name>.token`` fresh by asking the hub
(:mod:`~iris_jupyterhub.rucio.hubapi`) on the schedule of
:mod:`~iris_jupyterhub.rucio.refresher`. ``<name>.status.json`` says why a token is
missing, for :func:`iris_jupyterhub.rucio.client` to tell the researcher. The token files
are removed when the server exits.

Its timing is configurable as ``c.RucioTokenFiles.<option>``.
"""

from __future__ import annotations

import asyncio
import atexit
import json
import logging
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import partial
from typing import Any

from traitlets import Float, TraitError, validate
from traitlets.config import LoggingConfigurable

from .clientcfg import NotebookInstance, NotebookSettings, render_rucio_cfg, settings_from_env
from .files import ensure_private_directory, remove_file, write_private, write_token
from .hubapi import HubConnection, Outcome, fetch_token
from .refresher import (
    Clock,
    Policy,
    Step,
    SystemClock,
    TokenRefresher,
    advice_for,
    status_record,
)

__all__ = ["RucioTokenFiles", "TokenFiles"]

_SETTINGS_KEY = "iris_rucio_token_files"


class RucioTokenFiles(LoggingConfigurable):
    """Timing of the Rucio token renewals in a researcher's server (``c.RucioTokenFiles``)."""

    renew_fraction = Float(
        0.75,
        help="Renew a token after this fraction of its remaining lifetime (0 < f < 1): "
        "0.75 renews a 20 s token with 5 s to spare and an hour-long one with 15 minutes.",
    ).tag(config=True)
    min_delay = Float(1.0, help="Never ask the hub twice within this many seconds.").tag(
        config=True
    )
    backoff_base = Float(
        2.0, help="First wait, in seconds, after the hub could not answer; doubled per failure."
    ).tag(config=True)
    backoff_cap = Float(
        60.0, help="Longest wait, in seconds, between two attempts while the hub cannot answer."
    ).tag(config=True)
    recheck_interval = Float(
        300.0,
        help="After the hub refused a token (log-in expired, not in the group), ask again "
        "this often, in seconds, so that logging in again brings it back.",
    ).tag(config=True)
    request_timeout = Float(
        20.0, help="Seconds to wait for the hub's answer before counting it as unreachable."
    ).tag(config=True)

    @validate("renew_fraction")
    def _check_fraction(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not 0 < value < 1:
            raise TraitError(
                f"RucioTokenFiles.renew_fraction must be between 0 and 1, not {value}"
            )
        return value

    @validate("min_delay", "backoff_base", "backoff_cap", "recheck_interval", "request_timeout")
    def _check_positive(self, proposal: dict[str, Any]) -> float:
        value = float(proposal["value"])
        if not value > 0:
            name = proposal["trait"].name
            raise TraitError(f"RucioTokenFiles.{name} must be a positive number of seconds")
        return value

    def policy(self) -> Policy:
        """The schedule these options describe."""
        return Policy(
            renew_fraction=self.renew_fraction,
            min_delay=self.min_delay,
            backoff_base=self.backoff_base,
            backoff_cap=max(self.backoff_cap, self.backoff_base),
            recheck_interval=self.recheck_interval,
        )


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%S UTC")


def describe(outcome: Outcome) -> str:
    """Why a call to the hub gave no token, in words (never a token)."""
    if outcome.reason == "unreachable":
        return f"no answer from the hub ({outcome.message})"
    if outcome.status in (401, 403) and outcome.kind == "retry":
        return (
            f"the hub answered HTTP {outcome.status} without a reason ({outcome.message or '-'}):"
            " it could not authenticate this server just now (its identity provider or"
            " database failing), or the server's API token lacks the custom:iris-rucio-token"
            " scope"
        )
    detail = f": {outcome.message}" if outcome.message else ""
    return f"the hub answered HTTP {outcome.status} {outcome.reason}{detail}"


@dataclass
class TokenFiles:
    """The token directory of one server and a :class:`TokenRefresher` per instance."""

    settings: NotebookSettings
    connection: HubConnection
    options: RucioTokenFiles
    log: logging.Logger | logging.LoggerAdapter[Any]
    clock: Clock = field(default_factory=SystemClock)
    refreshers: dict[str, TokenRefresher] = field(default_factory=dict)
    tasks: list[asyncio.Task[None]] = field(default_factory=list)
    _status: dict[str, dict[str, Any]] = field(default_factory=dict)

    def prepare(self) -> None:
        """Make the directory private, write the client configurations, drop stale tokens.

        :class:`PermissionError` (nothing written) when the directory is a symbolic link
        or owned by a user other than this server's or root.
        """
        state = ensure_private_directory(self.settings.directory)
        if not state.private:
            self.log.info(
                "Rucio: %s is mode %o and owned by uid %d, so it stays as it is; "
                "the token files in it are 0600",
                state.path,
                state.mode,
                state.owner,
            )
        for instance in self.settings.instances:
            files = self.settings.files(instance)
            remove_file(files.token)  # from an earlier run of this server: may be stale
            write_private(files.config, render_rucio_cfg(instance, files.token))
            if instance == self.settings.default:
                write_private(self.settings.rucio_cfg, render_rucio_cfg(instance, files.token))
            self.refreshers[instance.name] = TokenRefresher(
                name=instance.name,
                fetch=partial(self._fetch, instance),
                apply=partial(self._apply, instance),
                policy=self.options.policy(),
                clock=self.clock,
                log=self.log,
            )

    async def _fetch(self, instance: NotebookInstance, now: float) -> Outcome:
        timeout = self.options.request_timeout
        return await fetch_token(self.connection, instance.name, timeout=timeout, now=now)

    def start(self) -> None:
        """Start renewing (on the running event loop); the files go when the process exits."""
        self.tasks = []
        for name, refresher in self.refreshers.items():
            task = asyncio.ensure_future(refresher.run())
            task.add_done_callback(partial(self._renewals_ended, name))
            self.tasks.append(task)
        atexit.register(self.remove_tokens)

    def _renewals_ended(self, name: str, task: asyncio.Task[None]) -> None:
        """Say so when a renewal loop ends other than by :meth:`stop` (a bug)."""
        if task.cancelled():
            return
        self.log.error(
            "Rucio: the %s token renewals stopped unexpectedly; the token file is no longer "
            "renewed (restart the server)",
            name,
            exc_info=task.exception(),
        )

    async def stop(self) -> None:
        """Stop renewing and remove the token files."""
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.tasks = []
        self.remove_tokens()

    def remove_tokens(self) -> None:
        """Remove every instance's token file (at exit: no token outlives the server)."""
        for instance in self.settings.instances:
            remove_file(self.settings.files(instance).token)

    def _apply(self, instance: NotebookInstance, taken: Step, outcome: Outcome) -> None:
        files = self.settings.files(instance)
        if taken.write is not None:
            try:
                write_token(files.token, taken.write.access_token)
            except (OSError, ValueError) as error:
                self.log.error("Rucio: could not write %s: %s", files.token, error)
        if taken.remove:
            remove_file(files.token)
        record = status_record(instance.name, taken.state, outcome)
        if record != self._status.get(instance.name):
            self._status[instance.name] = record
            try:
                write_private(files.status, json.dumps(record, indent=1))
            except OSError as error:
                self.log.error("Rucio: could not write %s: %s", files.status, error)
        self._log_event(instance, taken, outcome)

    def _log_event(self, instance: NotebookInstance, taken: Step, outcome: Outcome) -> None:
        name, path, state = instance.name, self.settings.files(instance).token, taken.state
        if taken.event == "obtained":
            self.log.info(
                "Rucio: %s token written to %s, valid until %s",
                name,
                path,
                _when(state.expires_at),
            )
        elif taken.event == "renewed":
            self.log.debug(
                "Rucio: %s token renewed, valid until %s", name, _when(state.expires_at)
            )
        elif taken.event == "restored":
            self.log.info(
                "Rucio: %s token is back in %s, valid until %s",
                name,
                path,
                _when(state.expires_at),
            )
        elif taken.event == "unreachable" and state.expires_at is not None:
            self.log.warning(
                "Rucio: could not renew the %s token: %s. Retrying with backoff; "
                "the current token stays in %s until it expires at %s",
                name,
                describe(outcome),
                path,
                _when(state.expires_at),
            )
        elif taken.event == "unreachable":
            self.log.warning(
                "Rucio: could not get the %s token: %s. Retrying with backoff",
                name,
                describe(outcome),
            )
        elif taken.event == "expired":
            self.log.warning(
                "Rucio: the %s token expired while the hub could not be reached (%s), so %s "
                "was removed; Rucio commands fail until the hub answers again (still retrying)",
                name,
                describe(outcome),
                path,
            )
        elif taken.event == "refused":
            self._log_refusal(instance, outcome)

    def _log_refusal(self, instance: NotebookInstance, outcome: Outcome) -> None:
        path, advice = self.settings.files(instance).token, advice_for(outcome.reason)
        every = self.options.recheck_interval
        if outcome.reason in ("login_required", "not_in_group"):
            self.log.warning(
                "Rucio: no %s token (%s: %s), so %s was removed. %s (Asking again every %d s.)",
                instance.name,
                outcome.reason,
                outcome.message,
                path,
                advice,
                every,
            )
        else:
            self.log.error(
                "Rucio: no %s token: %s, so %s was removed. %s (Asking again every %d s.)",
                instance.name,
                describe(outcome),
                path,
                advice,
                every,
            )


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "iris_jupyterhub.rucio.extension"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    log = serverapp.log
    try:
        settings = settings_from_env()
        if settings is None:
            log.info("Rucio: IRIS_RUCIO_INSTANCES is not set, so no Rucio token files are kept")
            return
        connection = HubConnection.from_env()
    except ValueError as error:
        log.error("Rucio: no token files, the server's environment is not usable: %s", error)
        return
    service = TokenFiles(settings, connection, RucioTokenFiles(parent=serverapp), log)
    try:
        service.prepare()
    except OSError as error:
        log.error("Rucio: no token files, %s is not usable: %s", settings.directory, error)
        return
    serverapp.web_app.settings[_SETTINGS_KEY] = service
    names = ", ".join(i.name for i in settings.instances)
    log.info("Rucio: keeping token files for %s in %s", names, settings.directory)


async def _start_jupyter_server_extension(serverapp: Any) -> None:
    service = serverapp.web_app.settings.get(_SETTINGS_KEY)
    if isinstance(service, TokenFiles):
        service.start()
