"""The refresher and the token files against a real HTTP server speaking the hub's contract.

Each test drives :class:`~iris_jupyterhub.rucio.extension.TokenFiles` one call at a time
(``run_once``) and moves a manual clock, shared with the stand-in hub, by the delay each
step asked for: hours of schedule in milliseconds, with real HTTP, real files and the
real log lines.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import os
import stat
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from iris_jupyterhub.rucio.clientcfg import NotebookInstance, NotebookSettings
from iris_jupyterhub.rucio.extension import RucioTokenFiles, TokenFiles
from iris_jupyterhub.rucio.hubapi import HubConnection
from iris_jupyterhub.rucio.refresher import Step

from .support import API_TOKEN, ManualClock, TokenHub

INSTANCES = (
    NotebookInstance(
        "ral", "RAL", "https://rucio.ral.example", "https://auth.ral.example", default=True
    ),
    NotebookInstance("cam", "Cambridge", "https://rucio.cam.example", "https://rucio.cam.example"),
)


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


@pytest.fixture
async def hub(clock: ManualClock) -> AsyncIterator[TokenHub]:
    hub = TokenHub(lifetime=20, now=clock.time).start()
    yield hub
    await hub.stop()


class Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    def lines(self, level: int = logging.INFO) -> list[str]:
        return [r.getMessage() for r in self.records if r.levelno >= level]


@pytest.fixture
def records() -> Records:
    return Records()


def make_files(
    tmp_path: Path, hub: TokenHub, clock: ManualClock, records: Records, **options: float
) -> TokenFiles:
    log = logging.getLogger(f"test-rucio-{id(records)}")
    log.setLevel(logging.DEBUG)
    log.addHandler(records)
    log.propagate = False
    files = TokenFiles(
        NotebookSettings(tmp_path / "rucio", INSTANCES),
        HubConnection(hub.api_url, API_TOKEN),
        RucioTokenFiles(**options),
        log,
        clock=clock,
    )
    files.prepare()
    for refresher in files.refreshers.values():
        refresher.jitter = lambda: 1.0  # the longest wait of each backoff step
    return files


async def turn(files: TokenFiles, clock: ManualClock, name: str = "ral") -> Step:
    """One call to the hub for ``name``; the clock then moves on by the delay asked for."""
    taken = await files.refreshers[name].run_once()
    clock.advance(taken.delay)
    return taken


def token_of(files: TokenFiles, name: str = "ral") -> str | None:
    path = files.settings.files(name).token
    return path.read_text() if path.exists() else None


def status_of(files: TokenFiles, name: str = "ral") -> dict[str, object]:
    return json.loads(files.settings.files(name).status.read_text())  # type: ignore[no-any-return]


async def test_each_token_is_renewed_before_it_expires(
    tmp_path: Path, hub: TokenHub, clock: ManualClock, records: Records
) -> None:
    files = make_files(tmp_path, hub, clock, records)
    for _ in range(4):
        await turn(files, clock)
        latest = hub.latest("ral")
        assert token_of(files) == latest.token
        assert clock.now < latest.expires_at, "the next call comes before this token expires"
    assert len(hub.issued) == 4
    for earlier, later in itertools.pairwise(hub.issued):
        assert later.at < earlier.expires_at
    path = files.settings.files("ral").token
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert not path.read_bytes().endswith(b"\n")
    assert status_of(files)["state"] == "valid"
    info = records.lines()
    assert len(info) == 1, info
    assert info[0].startswith("Rucio: ral token written to")
    assert not any(i.token in line for i in hub.issued for line in records.lines(logging.DEBUG))


async def test_instances_are_renewed_independently(
    tmp_path: Path, hub: TokenHub, clock: ManualClock, records: Records
) -> None:
    files = make_files(tmp_path, hub, clock, records)
    await files.refreshers["ral"].run_once()
    await files.refreshers["cam"].run_once()
    assert token_of(files, "ral") == hub.latest("ral").token
    assert token_of(files, "cam") == hub.latest("cam").token
    assert token_of(files, "ral") != token_of(files, "cam")


async def test_a_hub_that_disappears_and_comes_back(
    tmp_path: Path, hub: TokenHub, clock: ManualClock, records: Records
) -> None:
    files = make_files(tmp_path, hub, clock, records, backoff_base=2, backoff_cap=60)
    await turn(files, clock)
    held = hub.latest("ral")
    await hub.disappear()
    # Unreachable: retries with backoff, the old token stays until it expires.
    delays = []
    while clock.now < held.expires_at:
        assert token_of(files) == held.token
        delays.append((await turn(files, clock)).delay)
    assert len(delays) >= 2, "retried before the token expired"
    taken = await turn(files, clock)
    assert (taken.event, token_of(files)) == ("expired", None)
    assert status_of(files)["state"] == "unavailable"
    later = [await turn(files, clock) for _ in range(6)]
    assert [t.event for t in later] == [""] * 6
    waits = [t.delay for t in later]
    assert waits == sorted(waits), "backoff grows while the hub stays away"
    assert waits[-3:] == [60] * 3, "backoff capped at backoff_cap"
    warnings = records.lines(logging.WARNING)
    assert len(warnings) == 2, warnings
    assert warnings[0].startswith("Rucio: could not renew the ral token: no answer from the hub")
    assert "stays in" in warnings[0]
    assert warnings[1].startswith(
        "Rucio: the ral token expired while the hub could not be reached"
    )
    hub.come_back()
    taken = await turn(files, clock)
    assert (taken.event, token_of(files)) == ("restored", hub.latest("ral").token)
    assert records.lines()[-1].startswith("Rucio: ral token is back in")


async def test_backoff_grows_while_the_hub_is_away(
    tmp_path: Path, hub: TokenHub, clock: ManualClock, records: Records
) -> None:
    files = make_files(tmp_path, hub, clock, records, backoff_base=2, backoff_cap=60)
    await hub.disappear()
    delays = [(await turn(files, clock)).delay for _ in range(8)]
    assert delays == [2, 4, 8, 16, 32, 60, 60, 60]
    assert len(hub.requests) == 0, "nothing listened"
    assert len(records.lines(logging.WARNING)) == 1
    assert records.lines(logging.WARNING)[0].startswith("Rucio: could not get the ral token")


@pytest.mark.parametrize("mode", ["login_required", "not_in_group"])
async def test_a_refusal_removes_the_token_and_says_why_once(
    mode: str, tmp_path: Path, hub: TokenHub, clock: ManualClock, records: Records
) -> None:
    files = make_files(tmp_path, hub, clock, records, recheck_interval=120)
    await turn(files, clock)
    assert token_of(files) is not None
    hub.mode = mode
    taken = await turn(files, clock)
    assert (taken.event, taken.delay, token_of(files)) == ("refused", 120, None)
    for _ in range(5):
        assert (await turn(files, clock)).delay == 120
    assert len([r for r in hub.requests if r.status == 403]) == 6, "re-checked slowly, no loop"
    warnings = records.lines(logging.WARNING)
    assert len(warnings) == 1, warnings
    assert warnings[0].startswith(f"Rucio: no ral token ({mode}: ")
    assert "removed" in warnings[0]
    advice = {"login_required": "Log out of the hub", "not_in_group": "Ask your VO manager"}
    assert advice[mode] in warnings[0]
    status = status_of(files)
    assert (status["state"], status["reason"]) == ("refused", mode)
    hub.mode = "ok"  # logged in again / joined the group
    taken = await turn(files, clock)
    assert (taken.event, token_of(files)) == ("restored", hub.latest("ral").token)
    assert status_of(files)["state"] == "valid"


async def test_a_503_keeps_the_token_and_waits_as_asked(
    tmp_path: Path, hub: TokenHub, clock: ManualClock, records: Records
) -> None:
    hub.lifetime = 3600
    files = make_files(tmp_path, hub, clock, records)
    await turn(files, clock)
    held = hub.latest("ral")
    hub.mode = "idp_unavailable"
    taken = await turn(files, clock)
    assert taken.delay == 30, "Retry-After: 30"
    assert token_of(files) == held.token
    warning = records.lines(logging.WARNING)[0]
    assert "the hub answered HTTP 503 idp_unavailable: IRIS IAM is not responding" in warning


async def test_an_unknown_instance_and_an_unknown_reason_are_errors_said_once(
    tmp_path: Path, hub: TokenHub, clock: ManualClock, records: Records
) -> None:
    hub.instances = ("cam",)
    files = make_files(tmp_path, hub, clock, records)
    for _ in range(3):
        await turn(files, clock)
    errors = records.lines(logging.ERROR)
    assert len(errors) == 1
    assert errors[0].startswith("Rucio: no ral token: the hub answered HTTP 404 unknown_instance")
    await turn(files, clock, "cam")
    assert token_of(files, "cam") is not None
    hub.mode = "not_allowed"  # a reason this server does not know: a refusal, said as is
    for _ in range(3):
        assert (await turn(files, clock, "cam")).delay == files.options.recheck_interval
    errors = records.lines(logging.ERROR)
    assert len(errors) == 2
    assert "HTTP 403 not_allowed: Only a user's own servers get Rucio tokens." in errors[1]
    assert "Tell the hub administrators" in errors[1]
    assert token_of(files, "cam") is None


async def test_a_403_without_a_reason_keeps_the_token_until_it_expires(
    tmp_path: Path, hub: TokenHub, clock: ManualClock, records: Records
) -> None:
    hub.lifetime = 600
    files = make_files(tmp_path, hub, clock, records)
    await turn(files, clock)
    held = hub.latest("ral")
    hub.mode = "auth_failed"  # the hub cannot authenticate the server just now
    taken = await turn(files, clock)
    assert (taken.event, token_of(files)) == ("unreachable", held.token)
    assert taken.delay < files.options.recheck_interval, "backoff, not the slow re-check"
    while clock.time() <= held.expires_at:
        assert token_of(files) == held.token, "kept while it is valid"
        await turn(files, clock)
    assert token_of(files) is None, "removed once it expired"
    warnings = records.lines(logging.WARNING)
    assert len(warnings) == 2, warnings
    assert "HTTP 403 without a reason (Action is not authorized)" in warnings[0]
    assert f"the current token stays in {files.settings.files('ral').token}" in warnings[0]
    assert warnings[1].startswith("Rucio: the ral token expired")
    assert not records.lines(logging.ERROR)
    assert status_of(files)["state"] == "unavailable"
    hub.mode = "ok"
    taken = await turn(files, clock)
    assert (taken.event, token_of(files)) == ("restored", hub.latest("ral").token)


async def test_the_configurations_are_written_and_stale_tokens_dropped(
    tmp_path: Path, hub: TokenHub, clock: ManualClock, records: Records
) -> None:
    directory = tmp_path / "rucio"
    directory.mkdir()
    os.chmod(directory, 0o750)  # noqa: S103 - a directory too open, to be tightened
    (directory / "ral.token").write_text("stale-token-from-the-last-run")
    files = make_files(tmp_path, hub, clock, records)
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    assert not (directory / "ral.token").exists()
    for name in ("ral.cfg", "cam.cfg", "rucio.cfg"):
        assert stat.S_IMODE((directory / name).stat().st_mode) == 0o600
    assert (directory / "rucio.cfg").read_text() == (directory / "ral.cfg").read_text()
    assert f"auth_token_file_path = {directory}/cam.token" in (directory / "cam.cfg").read_text()
    await files.stop()


async def test_a_failure_to_act_on_the_files_is_logged_and_the_renewals_go_on(
    tmp_path: Path, hub: TokenHub, clock: ManualClock, records: Records
) -> None:
    files = make_files(tmp_path, hub, clock, records)
    await turn(files, clock)
    token = files.settings.files("ral").token
    token.unlink()
    token.mkdir()  # remove_file now raises IsADirectoryError
    hub.mode = "login_required"
    failed = [await turn(files, clock) for _ in range(3)]
    assert all(t.delay < files.options.recheck_interval for t in failed), "backoff"
    errors = [r for r in records.records if r.levelno >= logging.ERROR]
    assert len(errors) == 1, "said once while it keeps failing"
    assert errors[0].getMessage() == "Rucio: acting on the ral token files failed"
    assert errors[0].exc_info is not None, "with its traceback"
    token.rmdir()
    hub.mode = "ok"
    taken = await turn(files, clock)
    assert (taken.event, token_of(files)) == ("restored", hub.latest("ral").token)


class BrokenClock(ManualClock):
    async def sleep(self, seconds: float) -> None:
        raise RuntimeError("a bug in the loop")


async def test_renewals_that_end_unexpectedly_are_logged(
    tmp_path: Path, hub: TokenHub, records: Records
) -> None:
    files = make_files(tmp_path, hub, BrokenClock(), records)
    files.start()
    await asyncio.gather(*files.tasks, return_exceptions=True)
    await asyncio.sleep(0)  # the done callbacks
    errors = [r for r in records.records if r.levelno >= logging.ERROR]
    assert sorted(r.getMessage() for r in errors) == [
        f"Rucio: the {name} token renewals stopped unexpectedly; the token file is no longer "
        "renewed (restart the server)"
        for name in ("cam", "ral")
    ]
    assert all(r.exc_info is not None for r in errors)
    await files.stop()
    assert not [r for r in records.records if r.levelno >= logging.ERROR][2:], "not on stop"
