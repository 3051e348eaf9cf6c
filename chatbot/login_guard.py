"""Failed logins slowed, then refused for a while, per client address: a shared link's password cannot be guessed
at the server's full speed.

Gradio's login route (`POST /login`, there when `launch(auth=...)` is given) answers 200 and a session cookie for
the right password and 400 for a wrong one, as fast as it is asked, and Gradio, FastAPI and Starlette offer no
limit on it. What Starlette offers is the middleware hook: `LoginGuard` is an ASGI middleware that Gradio's app
is built with (`launch(app_kwargs={"middleware": [...]})`). It sees each answer of the login route, counts the
attempts of each client address that did not succeed, makes each further attempt wait longer, and refuses the
address with 429 and a plain message for `lockout_s` once it has used up its attempts within the window.

The address is the TCP peer uvicorn reports. Behind a proxy on this host (uvicorn trusts 127.0.0.1 and ::1 by
default, `FORWARDED_ALLOW_IPS`), uvicorn takes it from the proxy's X-Forwarded-For instead; a proxy that sends
none makes all its visitors one address, which then shares one lock-out.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections import OrderedDict, deque
from dataclasses import dataclass, field

from starlette.responses import PlainTextResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatbot.config import ServerConfig

log = logging.getLogger(__name__)

LOGIN_PATHS = ("/login", "/login/")  # Gradio's login route


@dataclass(frozen=True)
class LoginPolicy:
    attempts: int  # attempts per address within window_s that may fail; the next one is refused
    window_s: float  # failures older than this are forgotten
    lockout_s: float  # how long an address that used up its attempts is refused
    delay_s: float  # each attempt waits this long per earlier one in the window that did not succeed

    @classmethod
    def from_config(cls, server: ServerConfig) -> "LoginPolicy":
        return cls(server.login_attempts, server.login_window_s, server.lockout_s, server.login_delay_s)

    def describe(self) -> str:
        """The rule, in words for the login page."""
        return (f"After {self.attempts} wrong passwords within {_duration(self.window_s)}, logins from the same "
                f"address are refused for {_duration(self.lockout_s)}.")


def _duration(seconds: float) -> str:
    if seconds >= 60:
        minutes = math.ceil(seconds / 60)
        return f"{minutes} minute{'s' * (minutes != 1)}"
    whole = math.ceil(seconds)
    return f"{whole} second{'s' * (whole != 1)}"


def lockout_message(seconds_left: float) -> str:
    return f"Too many failed logins from your address. Try again in {_duration(seconds_left)}."


@dataclass(frozen=True)
class Verdict:
    delay_s: float = 0.0  # let the attempt through after this long
    locked_for_s: float = 0.0  # > 0: refuse it; the address's lock-out lasts this much longer


@dataclass
class _Record:
    seen: float  # last attempt or outcome, for forgetting idle addresses
    attempts: deque[float] = field(default_factory=deque)  # start times, in the window, of attempts not succeeded
    locked_until: float = 0.0


class LoginThrottle:
    """Attempts per address, counted from their start (so that attempts sent at once count too), forgotten once
    the window and any lock-out are over. Used from the server's event loop only: no lock is needed."""

    def __init__(self, policy: LoginPolicy):
        self.policy = policy
        self._records: OrderedDict[str, _Record] = OrderedDict()  # least recently seen first

    def attempt(self, address: str, now: float) -> Verdict:
        """A login attempt from `address` starts: how long it waits, or that it is refused."""
        record = self._touch(address, now)
        if record.locked_until > now:
            return Verdict(locked_for_s=record.locked_until - now)
        while record.attempts and now - record.attempts[0] > self.policy.window_s:
            record.attempts.popleft()
        if len(record.attempts) >= self.policy.attempts:  # the allowance is in use by attempts still running
            return Verdict(locked_for_s=self._lock(address, record, now))
        delay = self.policy.delay_s * len(record.attempts)
        record.attempts.append(now)
        return Verdict(delay_s=delay)

    def settle(self, address: str, succeeded: bool, now: float) -> None:
        """An attempt ended: a success forgets the address's failures; the failure that uses up its
        allowance locks it out."""
        if succeeded:
            self._records.pop(address, None)
            return
        record = self._touch(address, now)
        if record.locked_until <= now and len(record.attempts) >= self.policy.attempts:
            self._lock(address, record, now)

    def tracked(self) -> int:
        """Addresses remembered now (for tests: idle ones are forgotten)."""
        return len(self._records)

    def _touch(self, address: str, now: float) -> _Record:
        horizon = max(self.policy.window_s, self.policy.lockout_s)
        while self._records and now - next(iter(self._records.values())).seen > horizon:
            self._records.popitem(last=False)
        record = self._records.setdefault(address, _Record(seen=now))
        record.seen = now
        self._records.move_to_end(address)
        return record

    def _lock(self, address: str, record: _Record, now: float) -> float:
        log.warning("login: %s locked out for %.0f s after %d attempts within %.0f s that did not succeed",
                    address, self.policy.lockout_s, len(record.attempts), self.policy.window_s)
        record.attempts.clear()  # after the lock-out the address starts afresh
        record.locked_until = now + self.policy.lockout_s
        return self.policy.lockout_s


class LoginGuard:
    """ASGI middleware: the login route, throttled per client address; every other request passes untouched."""

    def __init__(self, app: ASGIApp, throttle: LoginThrottle):
        self.app = app
        self.throttle = throttle

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"] not in LOGIN_PATHS:
            await self.app(scope, receive, send)
            return
        client = scope.get("client")
        address = client[0] if client else "unknown"
        verdict = self.throttle.attempt(address, time.monotonic())
        if verdict.locked_for_s > 0:
            refusal = PlainTextResponse(lockout_message(verdict.locked_for_s), status_code=429,
                                        headers={"Retry-After": str(math.ceil(verdict.locked_for_s))})
            await refusal(scope, receive, send)
            return
        if verdict.delay_s > 0:
            await asyncio.sleep(verdict.delay_s)
        status = 0

        async def watched(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, watched)
        finally:
            self.throttle.settle(address, succeeded=status == 200, now=time.monotonic())
