"""What the app leaves on a shared machine (issue 23, "files and exit"), tried as another user of the machine
would: the app started as a real process, one spoken answer made, its files looked at, then SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from bench.harness import free_port, wait_ready

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.slow


def test_files_are_the_apps_alone_and_sigterm_removes_them(tmp_path):
    scratch = tmp_path / "tmp"  # the child's temporary folder: everything it writes there is looked at
    scratch.mkdir(mode=0o755)
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "GRADIO_TEMP_DIR"}
    env.update(TMPDIR=str(scratch), CHATBOT__SERVER__PORT=str(port), CHATBOT__DEVICE="cpu",
               CHATBOT__TTS__ENGINE="piper", CHATBOT__LLM__MAX_NEW_TOKENS="16")
    with open(tmp_path / "app.log", "wb") as log:
        app = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(f"http://127.0.0.1:{port}/", app, timeout_s=180)
        from gradio_client import Client

        history, audio = Client(f"http://127.0.0.1:{port}/", verbose=False).predict("Name a fruit.",
                                                                                   api_name="/send_text")
        assert history[-1]["role"] == "assistant" and audio
        written = [p for p in scratch.rglob("*")]
        assert any(p.suffix in (".wav", ".mp3") for p in written), written  # the answer's speech is among them
        loose = [(str(p.relative_to(scratch)), oct(p.stat().st_mode & 0o777)) for p in written
                 if p.stat().st_mode & 0o077]
        assert not loose, loose  # before: speech and recordings 0644, readable by every user of the machine
        folders = {p.name.rsplit("-", 1)[0] for p in scratch.iterdir() if p.is_dir()}
        assert {"voice-chatbot-audio", "voice-chatbot-gradio"} <= folders, folders  # not the shared /tmp/gradio
        app.send_signal(signal.SIGTERM)
        assert app.wait(30) == 0
        assert not [p for p in scratch.iterdir() if p.name.startswith("voice-chatbot-")], list(scratch.iterdir())
    finally:
        if app.poll() is None:
            app.kill()
            app.wait(10)
