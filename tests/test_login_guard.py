"""Password guessing on a shared link: failed logins slowed, then refused for a while, per client address
(server.login_attempts, login_window_s, lockout_s, login_delay_s)."""

from __future__ import annotations

import logging
import time

import httpx
import pytest

from chatbot.login_guard import LoginPolicy, LoginThrottle, lockout_message
from tests.test_app_http import running_app

POLICY = LoginPolicy(attempts=3, window_s=60.0, lockout_s=600.0, delay_s=1.0)


def fail(throttle: LoginThrottle, address: str, now: float) -> float:
    """One wrong password from `address` at `now`: the delay it was given."""
    verdict = throttle.attempt(address, now)
    assert verdict.locked_for_s == 0, f"attempt at {now} refused"
    throttle.settle(address, succeeded=False, now=now)
    return verdict.delay_s


def test_each_failure_makes_the_next_attempt_wait_longer_then_the_address_is_refused():
    throttle = LoginThrottle(POLICY)
    assert [fail(throttle, "10.0.0.1", now) for now in (0.0, 1.0, 2.0)] == [0.0, 1.0, 2.0]
    refused = throttle.attempt("10.0.0.1", 3.0)
    assert refused.locked_for_s == pytest.approx(600.0 - 1.0)  # locked at the third failure, at 2.0
    assert throttle.attempt("10.0.0.2", 3.0).delay_s == 0  # another address is not affected


def test_after_the_lock_out_the_address_starts_afresh():
    throttle = LoginThrottle(POLICY)
    for now in (0.0, 1.0, 2.0):
        fail(throttle, "10.0.0.1", now)
    assert throttle.attempt("10.0.0.1", 601.0).locked_for_s > 0
    after = throttle.attempt("10.0.0.1", 603.0)
    assert after.locked_for_s == 0 and after.delay_s == 0
    throttle.settle("10.0.0.1", succeeded=True, now=603.0)
    assert throttle.tracked() == 0  # a right password clears the address


def test_a_right_password_clears_earlier_failures():
    throttle = LoginThrottle(POLICY)
    fail(throttle, "10.0.0.1", 0.0)
    fail(throttle, "10.0.0.1", 1.0)
    throttle.attempt("10.0.0.1", 2.0)
    throttle.settle("10.0.0.1", succeeded=True, now=2.0)
    assert [fail(throttle, "10.0.0.1", now) for now in (3.0, 4.0, 5.0)] == [0.0, 1.0, 2.0]


def test_failures_older_than_the_window_are_forgotten():
    throttle = LoginThrottle(POLICY)
    fail(throttle, "10.0.0.1", 0.0)
    fail(throttle, "10.0.0.1", 1.0)
    assert fail(throttle, "10.0.0.1", 62.0) == 0.0  # both earlier ones left the 60 s window
    assert throttle.attempt("10.0.0.1", 63.0).locked_for_s == 0


def test_attempts_sent_at_once_count_before_they_are_answered():
    throttle = LoginThrottle(POLICY)
    admitted = [throttle.attempt("10.0.0.1", 0.0) for _ in range(10)]
    assert sum(v.locked_for_s == 0 for v in admitted) == POLICY.attempts  # the rest refused at once


def test_idle_addresses_are_forgotten():
    throttle = LoginThrottle(POLICY)
    for i in range(100):
        fail(throttle, f"10.0.1.{i}", float(i))
    assert throttle.tracked() == 100
    fail(throttle, "10.0.0.1", 100.0 + POLICY.lockout_s)
    assert throttle.tracked() == 1  # memory stays bounded by the addresses seen within the lock-out time


def test_the_messages_say_the_rule_and_the_wait_in_words():
    assert POLICY.describe() == ("After 3 wrong passwords within 1 minute, logins from the same address are "
                                 "refused for 10 minutes.")
    assert lockout_message(42.2) == "Too many failed logins from your address. Try again in 43 seconds."


@pytest.mark.slow
def test_twenty_wrong_passwords_lock_out_their_address_but_not_the_right_one_elsewhere(cfg, engines, caplog):
    """Over HTTP against the launched app: Gradio's own login route (POST /login, 400 for a wrong password),
    guarded; the second address is another loopback address (127.0.0.2), so the server sees another TCP peer."""
    lockout_s = 4.0
    delay_s = 0.1
    caplog.set_level(logging.INFO)
    with running_app(cfg, engines, auth_user="ada", auth_password="correct horse", login_attempts=5,
                     login_window_s=60.0, lockout_s=lockout_s, login_delay_s=delay_s) as (demo, _assistant):
        url = demo.local_url
        with httpx.Client(base_url=url, timeout=30) as guesser:
            assert "wrong passwords within 1 minute" in guesser.get("/").text  # the rule, on the login page
            answers, times = [], []
            for i in range(20):
                started = time.perf_counter()
                answers.append(guesser.post("/login", data={"username": "ada", "password": f"guess {i}"}))
                times.append(time.perf_counter() - started)
            assert [a.status_code for a in answers] == [400] * 5 + [429] * 15
            assert times[4] >= 4 * delay_s  # slowed: the fifth guess waited for the four before it
            assert all(t < 1 for t in times[5:])  # refusals cost the server nothing
            refusal = answers[-1]
            assert refusal.text.startswith("Too many failed logins from your address. Try again in")
            assert 0 < int(refusal.headers["retry-after"]) <= lockout_s
            # Locked out even with the right password...
            assert guesser.post("/login", data={"username": "ada", "password": "correct horse"}).status_code == 429
        assert any("locked out" in r.getMessage() and "127.0.0.1" in r.getMessage() for r in caplog.records)

        # ...while the same right password from another address logs in at once.
        other = httpx.HTTPTransport(local_address="127.0.0.2")
        with httpx.Client(base_url=url, transport=other, timeout=30) as user:
            response = user.post("/login", data={"username": "ada", "password": "correct horse"})
            assert response.status_code == 200 and response.json() == {"success": True}
            assert user.get("/config").status_code == 200  # the session cookie works

        time.sleep(lockout_s)
        with httpx.Client(base_url=url, timeout=30) as back:  # after the lock-out, the first address again
            assert back.post("/login", data={"username": "ada", "password": "correct horse"}).status_code == 200


@pytest.mark.slow
@pytest.mark.parametrize("trusted", [(), ("127.0.0.1",)])
def test_a_forged_forwarded_for_header_does_not_escape_the_throttle(cfg, engines, trusted):
    """The attack: from loopback, each guess claims another X-Forwarded-For. Believed (uvicorn's default for
    127.0.0.1), every guess counted for a new address and none was ever refused. Now the header counts only from
    a configured proxy (server.trusted_proxies); there, two forwarded clients are two addresses."""
    with running_app(cfg, engines, auth_user="ada", auth_password="correct horse", login_attempts=3,
                     login_window_s=60.0, lockout_s=60.0, login_delay_s=0.0, trusted_proxies=trusted) as (demo, _):
        with httpx.Client(base_url=demo.local_url, timeout=30) as guesser:
            codes = [guesser.post("/login", data={"username": "ada", "password": f"guess {i}"},
                                  headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in range(8)]
    if not trusted:
        assert codes == [400] * 3 + [429] * 5  # one peer, one count, whatever the header says
    else:
        assert codes == [400] * 8  # behind a trusted proxy each forwarded client is its own address
