"""Log flooding (issue 23), tried as an attacker would: a thousand bad requests against the app running as a
real process write a handful of lines, and the count of the rest; the limit itself on a clock of its own."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import free_port, wait_ready
from chatbot.log_limit import RepeatLimit
from tests.test_request_limits import claim

ROOT = Path(__file__).resolve().parent.parent


def records(limit: RepeatLimit, count: int, message: str = "refused a request body over %d KB for %s") -> list:
    made = [logging.LogRecord("app", logging.WARNING, __file__, 1, message, (2048, f"/path/{i}"), None)
            for i in range(count)]
    return [r for r in made if limit.filter(r)]


def test_repeats_are_let_through_in_bursts_then_counted():
    now = [0.0]
    limit = RepeatLimit(burst=5, window_s=60, clock=lambda: now[0])
    assert len(records(limit, 5000)) == 5
    assert len(records(limit, 3, "another kind of line %d %s")) == 3  # other lines are not held back by it
    now[0] = 61.0
    first, *_ = records(limit, 1)
    assert first.getMessage() == ("refused a request body over 2048 KB for /path/0 (4995 more like this were not "
                                  "logged in the last 60 s)")
    assert RepeatLimit(burst=0, window_s=60).filter(records(RepeatLimit(1, 1), 1)[0])  # 0: no limit


@pytest.mark.slow
def test_a_thousand_bad_requests_write_a_handful_of_lines(tmp_path):
    port = free_port()
    env = {**os.environ, "CHATBOT__SERVER__PORT": str(port), "CHATBOT__DEVICE": "cpu",
           "CHATBOT__LLM__EMBEDDED_MODEL": "smollm2-135m", "CHATBOT__TTS__ENGINE": "piper"}
    log_path = tmp_path / "app.log"
    with open(log_path, "wb") as log:
        app = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        url = f"http://127.0.0.1:{port}/"
        wait_ready(url, app, timeout_s=180)
        before = len(log_path.read_text().splitlines())
        for _ in range(1000):
            assert claim(url, "/gradio_api/queue/join", 50 * 1024 * 1024).startswith("HTTP/1.1 413")
        written = log_path.read_text().splitlines()[before:]
        assert 1 <= len([line for line in written if "refused a request body" in line]) <= 5, written[:10]
        assert len(written) <= 10, written[:20]
    finally:
        app.terminate()
        app.wait(30)
