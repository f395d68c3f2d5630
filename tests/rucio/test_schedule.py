"""The renewal schedule and the reading of the hub's answers, as pure functions on plain data."""

from __future__ import annotations

import json
from email.utils import formatdate

import pytest

from iris_jupyterhub.rucio.hubapi import (
    HubConnection,
    Outcome,
    TokenAnswer,
    interpret_answer,
    parse_retry_after,
)
from iris_jupyterhub.rucio.refresher import (
    Policy,
    State,
    backoff_delay,
    renew_delay,
    status_record,
    step,
)

NOW = 1_800_000_000.0
POLICY = Policy()


def token(expires_in: float, now: float = NOW) -> Outcome:
    answer = TokenAnswer("ral", "eyJ.a.b", now + expires_in, account="alice")
    return Outcome("token", token=answer, status=200)


RETRY = Outcome("retry", reason="unreachable", message="Connection refused", status=599)
LOGIN = Outcome("refused", reason="login_required", message="log in again", status=403)


# -- renewal --------------------------------------------------------------------------


@pytest.mark.parametrize(("lifetime", "renew_after"), [(20, 15), (3600, 2700), (600, 450)])
def test_a_token_is_renewed_with_a_quarter_of_its_life_to_spare(
    lifetime: float, renew_after: float
) -> None:
    assert renew_delay(NOW, NOW + lifetime, POLICY) == renew_after


def test_a_token_about_to_expire_is_not_asked_for_in_a_tight_loop() -> None:
    assert renew_delay(NOW, NOW + 0.2, POLICY) == POLICY.min_delay


def test_three_renewals_of_a_20_second_token_each_come_before_its_expiry() -> None:
    state, now = State(), NOW
    for _ in range(3):
        taken = step(state, token(20, now), now, 0.5, POLICY)
        assert taken.write is not None
        expires_at = taken.write.expires_at
        now += taken.delay
        assert now < expires_at, "renewed after the token expired"
        assert expires_at - now == pytest.approx(5)
        state = taken.state


def test_the_first_token_is_announced_and_renewals_are_not() -> None:
    first = step(State(), token(20), NOW, 0.5, POLICY)
    assert (first.event, first.remove) == ("obtained", False)
    again = step(first.state, token(20, NOW + 15), NOW + 15, 0.5, POLICY)
    assert again.event == "renewed"


# -- backoff --------------------------------------------------------------------------


def test_backoff_doubles_up_to_its_cap_and_jitter_spreads_the_upper_half() -> None:
    lowest = [backoff_delay(n, 0.0, POLICY) for n in range(1, 10)]
    highest = [backoff_delay(n, 1.0, POLICY) for n in range(1, 10)]
    assert highest[:6] == [2, 4, 8, 16, 32, 60]
    assert lowest[:6] == [1, 2, 4, 8, 16, 30]
    assert max(highest) == POLICY.backoff_cap
    assert all(lo < hi for lo, hi in zip(lowest, highest, strict=True))


def test_retry_after_is_honoured_up_to_the_recheck_interval() -> None:
    assert backoff_delay(1, 0.0, POLICY, retry_after=30) == 30
    assert backoff_delay(1, 0.0, POLICY, retry_after=86400) == POLICY.recheck_interval


def test_an_unreachable_hub_keeps_the_token_and_wakes_up_at_its_expiry() -> None:
    held = step(State(), token(20), NOW, 0.5, POLICY).state
    failures = Policy(backoff_base=30, backoff_cap=30)
    first = step(held, RETRY, NOW + 15, 1.0, failures)
    assert (first.event, first.remove, first.write) == ("unreachable", False, None)
    assert first.delay == 5, "wakes at the expiry, not after the full backoff"
    second = step(first.state, RETRY, NOW + 20, 1.0, failures)
    assert (second.event, second.remove) == ("expired", True)
    assert second.state.expires_at is None
    third = step(second.state, RETRY, NOW + 50, 1.0, failures)
    assert (third.event, third.remove) == ("", False), "the failure streak is logged once"
    back = step(third.state, token(20, NOW + 80), NOW + 80, 0.5, POLICY)
    assert back.event == "restored"
    assert back.state == State(expires_at=NOW + 100, fetched=True)


def test_a_503_with_retry_after_waits_as_asked_while_the_token_lasts() -> None:
    held = step(State(), token(3600), NOW, 0.5, POLICY).state
    busy = Outcome("retry", reason="idp_unavailable", status=503, retry_after=30)
    taken = step(held, busy, NOW + 2700, 0.0, POLICY)
    assert taken.delay == 30
    assert not taken.remove


def test_an_answer_that_has_already_expired_is_a_failure_not_a_token() -> None:
    taken = step(State(), token(-1), NOW, 0.5, POLICY)
    assert taken.write is None
    assert taken.state.failures == 1


# -- refusals -------------------------------------------------------------------------


@pytest.mark.parametrize("reason", ["login_required", "not_in_group", "unknown_instance"])
def test_a_refusal_removes_the_token_says_so_once_and_rechecks_slowly(reason: str) -> None:
    refused = Outcome("refused", reason=reason, message="no", status=403)
    held = step(State(), token(20), NOW, 0.5, POLICY).state
    first = step(held, refused, NOW + 15, 0.5, POLICY)
    assert (first.event, first.remove, first.delay) == ("refused", True, POLICY.recheck_interval)
    assert first.state.expires_at is None
    repeats = [step(first.state, refused, NOW + 15 + 300 * n, 0.5, POLICY) for n in (1, 2, 3)]
    assert [r.event for r in repeats] == ["", "", ""]
    assert all(r.delay == POLICY.recheck_interval for r in repeats)
    back = step(repeats[-1].state, token(20, NOW + 1000), NOW + 1000, 0.5, POLICY)
    assert (back.event, back.write is not None) == ("restored", True)


def test_a_different_refusal_is_said_again() -> None:
    first = step(State(), LOGIN, NOW, 0.5, POLICY)
    group = Outcome("refused", reason="not_in_group", message="no", status=403)
    assert step(first.state, group, NOW + 300, 0.5, POLICY).event == "refused"


def test_a_403_without_a_reason_keeps_the_token_until_it_expires() -> None:
    # JupyterHub answers so when it cannot authenticate the request just now (its identity
    # provider or database failing): the still-valid token stays, the hub is asked again soon.
    no_reason = answer(403, {"status": 403, "message": "Action is not authorized"})
    held = step(State(), token(20), NOW, 0.5, POLICY).state
    first = step(held, no_reason, NOW + 15, 0.5, POLICY)
    assert (first.event, first.remove, first.state.expires_at) == ("unreachable", False, NOW + 20)
    assert first.delay < POLICY.recheck_interval
    again = step(first.state, no_reason, NOW + 15 + first.delay, 0.5, POLICY)
    assert (again.event, again.remove) == ("", False)
    gone = step(again.state, no_reason, NOW + 21, 0.5, POLICY)
    assert (gone.event, gone.remove, gone.state.expires_at) == ("expired", True, None)


def test_an_unknown_explicit_reason_is_a_refusal_with_its_message_and_advice() -> None:
    refused = answer(403, {"status": 403, "reason": "not_allowed", "message": "Not for you."})
    taken = step(step(State(), token(20), NOW, 0.5, POLICY).state, refused, NOW + 15, 0.5, POLICY)
    assert (taken.event, taken.remove) == ("refused", True)
    record = status_record("ral", taken.state, refused)
    assert (record["reason"], record["message"]) == ("not_allowed", "Not for you.")
    assert "hub administrators" in record["advice"]


def test_the_status_record_says_why_and_never_holds_the_token() -> None:
    refused = step(State(), LOGIN, NOW, 0.5, POLICY)
    record = status_record("ral", refused.state, LOGIN)
    assert record["state"] == "refused"
    assert record["reason"] == "login_required"
    assert "Log out" in record["advice"]
    held = step(State(), token(20), NOW, 0.5, POLICY)
    record = status_record("ral", held.state, token(20))
    assert record == {
        "instance": "ral",
        "state": "valid",
        "expires_at": NOW + 20,
        "reason": "",
        "message": "",
    }
    assert "eyJ" not in json.dumps(record)


# -- the hub's answers ----------------------------------------------------------------


def answer(status: int, body: object, headers: dict[str, str] | None = None) -> Outcome:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return interpret_answer(status, headers or {}, raw, "ral", now=NOW)


GOOD = {"instance": "ral", "access_token": "eyJhbGciOi.eyJzdWIi.c2ln", "expires_at": NOW + 20}


def test_a_good_answer_is_a_token() -> None:
    outcome = answer(200, {**GOOD, "account": "alice", "vo": "", "rucio_host": "https://r"})
    assert outcome.kind == "token"
    assert outcome.token == TokenAnswer(
        "ral", GOOD["access_token"], NOW + 20, "alice", "https://r"
    )
    assert GOOD["access_token"] not in repr(outcome), "a repr never shows the token"


@pytest.mark.parametrize(
    "body",
    [
        {**GOOD, "access_token": "eyJ.a.b\n"},
        {**GOOD, "access_token": "two words"},
        {**GOOD, "instance": "cam"},
        {**GOOD, "expires_at": "soon"},
        {**GOOD, "expires_at": True},
        {k: v for k, v in GOOD.items() if k != "access_token"},
        b"<html>not json</html>",
        [1, 2],
    ],
)
def test_an_unusable_200_answer_is_retried_not_written(body: object) -> None:
    outcome = answer(200, body)
    assert (outcome.kind, outcome.reason) == ("retry", "bad_answer")


@pytest.mark.parametrize(
    ("status", "body", "kind", "reason"),
    [
        (
            403,
            {"status": 403, "reason": "login_required", "message": "m"},
            "refused",
            "login_required",
        ),
        (
            403,
            {"status": 403, "reason": "not_in_group", "message": "m"},
            "refused",
            "not_in_group",
        ),
        (
            404,
            {"status": 404, "reason": "unknown_instance", "message": "m"},
            "refused",
            "unknown_instance",
        ),
        (404, b"<html>404: Not Found</html>", "refused", "unknown_instance"),
        (403, {"status": 403, "message": "Action is not authorized"}, "retry", "http_403"),
        (401, b"", "retry", "http_401"),
        (
            403,
            {"status": 403, "reason": "not_allowed", "message": "m"},
            "refused",
            "not_allowed",
        ),
        (
            503,
            {"status": 503, "reason": "idp_unavailable", "message": "m"},
            "retry",
            "idp_unavailable",
        ),
        (502, b"Bad Gateway", "retry", "http_502"),
        (500, {"status": 500, "message": "oops"}, "retry", "http_500"),
        (599, b"Connection refused", "retry", "unreachable"),
    ],
)
def test_errors_are_refusals_or_retries(status: int, body: object, kind: str, reason: str) -> None:
    outcome = answer(status, body)
    assert (outcome.kind, outcome.reason, outcome.status) == (kind, reason, status)


def test_retry_after_is_read_in_seconds_or_as_a_date() -> None:
    outcome = answer(503, {"reason": "idp_unavailable"}, {"Retry-After": "30"})
    assert outcome.retry_after == 30
    assert parse_retry_after(formatdate(NOW + 30, usegmt=True), NOW) == 30
    assert parse_retry_after(formatdate(NOW - 30, usegmt=True), NOW) == 0
    assert parse_retry_after("soon", NOW) is None
    assert parse_retry_after(None, NOW) is None


def test_the_connection_comes_from_jupyterhub_s_environment() -> None:
    connection = HubConnection.from_env(
        {"JUPYTERHUB_API_URL": "http://hub:8081/hub/api/", "JUPYTERHUB_API_TOKEN": "secret"}
    )
    assert connection.token_url("ral") == "http://hub:8081/hub/api/iris/rucio/ral/token"
    assert connection.token_url("a/b") == "http://hub:8081/hub/api/iris/rucio/a%2Fb/token"
    assert "secret" not in repr(connection)
    with pytest.raises(ValueError, match="JUPYTERHUB_API_TOKEN"):
        HubConnection.from_env({"JUPYTERHUB_API_URL": "http://hub:8081/hub/api"})
