"""The app as users and scripts reach it: launched on 127.0.0.1, driven over HTTP with gradio_client."""

import contextlib
import dataclasses
import logging
import socket

import numpy as np
import pytest

import app
from audio.decode import decode_file
from tests.media import long_opus, speak, wer, write_wav
from tests.memory import ResidentMemory

pytestmark = pytest.mark.slow


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def on_port(cfg, port: int, share: bool = False):
    server = dataclasses.replace(cfg.server, host="127.0.0.1", port=port, share=share)
    return dataclasses.replace(cfg, server=server)


@contextlib.contextmanager
def running_app(cfg, engines, **server_settings):
    """The app on a free port of 127.0.0.1, with these server settings changed; yields (demo, assistant)."""
    cfg = on_port(cfg, free_port())
    cfg = dataclasses.replace(cfg, server=dataclasses.replace(cfg.server, **server_settings))
    demo, assistant = app.create_app(cfg, engines)
    app.launch(demo, cfg, block=False)
    try:
        yield demo, assistant
    finally:
        demo.close()
        assistant.store.close()


@pytest.fixture(scope="module")
def server(cfg, engines):
    with running_app(cfg, engines) as (demo, assistant):
        yield demo.local_url, assistant


def reply_of(history: list[dict]) -> tuple[str, str | None]:
    """(text, audio path) of the last assistant message in a history returned by the API."""
    content = history[-1]["content"]
    text = " ".join(item["text"] for item in content if item.get("type") == "text")
    files = [item["file"] for item in content if item.get("type") == "file"]
    path = files[0]["path"] if files and isinstance(files[0], dict) else (files[0] if files else None)
    return text, path


def test_send_text_returns_history_and_playable_audio(server):
    from gradio_client import Client

    url, _assistant = server
    client = Client(url, verbose=False)
    assert {"/send_text", "/send_audio"} <= set(client.view_api(print_info=False, return_format="dict")["named_endpoints"])
    history, audio = client.predict("Name a fruit that is yellow.", api_name="/send_text")
    assert history[0]["role"] == "user" and history[-1]["role"] == "assistant"
    text, in_history = reply_of(history)
    assert text.strip() and in_history
    samples = decode_file(audio)  # a real, decodable audio file
    assert len(samples) / 16000 > 0.5 and np.abs(samples).max() > 0.05


def test_send_audio_transcribes_and_replies(server, piper, tmp_path):
    from gradio_client import Client, handle_file

    url, _assistant = server
    question = "Could you explain how a rainbow forms in the sky?"
    recording = write_wav(tmp_path / "question.wav", *speak(piper, question))
    history, audio = Client(url, verbose=False).predict(handle_file(str(recording)), api_name="/send_audio")
    user_text = " ".join(item["text"] for item in history[0]["content"] if item.get("type") == "text")
    assert wer(question, user_text) <= 0.1
    assert reply_of(history)[0].strip() and len(decode_file(audio)) > 8000


def test_a_small_upload_that_holds_two_hours_is_answered_in_seconds_in_bounded_memory(server, piper, tmp_path):
    """Issue 17, as it was found: 2 h of Opus sent to /send_audio cost 20 s and +970 MB at the peak. The server
    runs in this process, so its resident memory is measured here."""
    import time

    from gradio_client import Client, handle_file

    url, assistant = server
    question = "Could you explain how a rainbow forms in the sky?"
    spoken = speak(piper, question)
    recording = long_opus(tmp_path / "left-running.webm", 2 * 3600, lead=spoken, bitrate=16_000)
    assert recording.stat().st_size < 10 * 2**20  # well under server.max_upload_mb
    client = Client(url, verbose=False, download_files=False)
    client.predict(handle_file(str(write_wav(tmp_path / "q.wav", *spoken))), speak=False, api_name="/send_audio")
    with ResidentMemory() as memory:
        started = time.perf_counter()
        history, _audio = client.predict(handle_file(str(recording)), speak=False, api_name="/send_audio")
        elapsed = time.perf_counter() - started
    user_text = " ".join(item["text"] for item in history[-2]["content"] if item.get("type") == "text")
    assert wer(question, user_text) <= 0.1 and reply_of(history)[0].strip()
    assert elapsed < 15, f"{elapsed:.1f} s for the turn"
    assert memory.peak_mb < 200, f"the server's peak resident memory grew {memory.peak_mb:.0f} MB"


def test_two_clients_have_separate_conversations(server):
    from gradio_client import Client

    url, _assistant = server
    alice, bob = Client(url, verbose=False), Client(url, verbose=False)
    alice.predict("My secret word is Pumpernickel.", api_name="/send_text")
    history_bob, _ = bob.predict("Hello, who are you?", api_name="/send_text")
    assert "Pumpernickel" not in str(history_bob)
    assert len(history_bob) == 2
    history_alice, _ = alice.predict("What did I just tell you?", api_name="/send_text")
    assert "Pumpernickel" in str(history_alice[0]) and len(history_alice) == 4


def test_the_server_keeps_at_most_max_sessions_and_forgets_the_least_recently_used(cfg, engines):
    from gradio_client import Client

    with running_app(cfg, engines, max_sessions=2) as (demo, _assistant):
        first, second, third = (Client(demo.local_url, verbose=False, download_files=False) for _ in range(3))
        assert len(first.predict("Hello!", speak=False, api_name="/send_text")[0]) == 2
        second.predict("Hi there.", speak=False, api_name="/send_text")
        assert len(demo.state_holder.session_data) == 2
        third.predict("Good morning.", speak=False, api_name="/send_text")
        assert len(demo.state_holder.session_data) == 2  # memory per visitor is bounded
        history, _ = first.predict("Are you still there?", speak=False, api_name="/send_text")
        assert len(history) == 2  # the least recently used conversation was forgotten: a fresh one began
        history, _ = third.predict("And again.", speak=False, api_name="/send_text")
        assert len(history) == 4  # the recent one was kept


def test_a_full_queue_tells_the_extra_senders_to_retry_and_answers_the_others(cfg, engines):
    """One turn at a time and one waiting: of four sent at once, two are answered and two are told at once that
    the queue is full (gradio_client raises the server's "Queue is full! Please try again later.")."""
    from gradio_client import Client

    with running_app(cfg, engines, concurrency=1, queue_size=1) as (demo, _assistant):
        clients = [Client(demo.local_url, verbose=False, download_files=False) for _ in range(4)]
        jobs = [c.submit(f"Tell me a fact about the number {i}.", api_name="/send_text") for i, c in enumerate(clients)]
        outcomes = []
        for job in jobs:
            try:
                history, _audio = job.result(timeout=180)
                outcomes.append("answered" if reply_of(history)[0].strip() else "empty")
            except Exception as e:  # gradio_client raises the server's message
                outcomes.append("busy" if "queue is full" in str(e).lower() else f"error: {e!r}")
    assert sorted(outcomes) == ["answered", "answered", "busy", "busy"], outcomes


def test_an_upload_over_the_limit_is_refused(cfg, engines):
    import httpx

    with running_app(cfg, engines, max_upload_mb=1) as (demo, _assistant):
        upload = demo.local_url.rstrip("/") + "/gradio_api/upload"
        big = httpx.post(upload, files={"files": ("long.wav", b"\0" * (3 * 2**20), "audio/wav")}, timeout=30)
        assert big.status_code == 413 and "maximum allowed size of 1048576 bytes" in big.text
        small = httpx.post(upload, files={"files": ("short.wav", b"\0" * 1000, "audio/wav")}, timeout=30)
        assert small.status_code == 200  # the limit, not the route, refused the first


def test_share_without_internet_says_so_and_keeps_serving(cfg, caplog):
    import gradio as gr
    import httpx

    with gr.Blocks() as demo:
        gr.Markdown("share test")
    shared_cfg = on_port(cfg, free_port(), share=True)
    with caplog.at_level(logging.INFO, logger="app"):
        app.launch(demo, shared_cfg, block=False)
    try:
        assert any("sharing without a login" in r.getMessage() for r in caplog.records)  # no auth configured
        if demo.share_url is None:  # offline, as on CI
            assert any("no public link" in r.getMessage() for r in caplog.records)
        assert httpx.get(demo.local_url, timeout=10).status_code == 200
    finally:
        demo.close()


def test_file_routes_serve_only_the_apps_own_reply_audio(server):
    """A shared link must not become a file server: only the reply audio Gradio was handed is served."""
    import secrets
    from pathlib import Path

    import httpx
    from gradio_client import Client

    url, assistant = server
    _history, audio = Client(url, verbose=False, download_files=False).predict("Say hi.", api_name="/send_text")
    own = httpx.get(audio["url"], timeout=10)
    assert own.status_code == 200 and own.content[:4] == b"RIFF"  # the route works for the reply itself

    served = Path(audio["path"])
    base = url.rstrip("/") + "/gradio_api/file="
    forbidden = [
        str(Path(app.__file__).with_name("config.yaml")),  # the app's own files, by absolute path
        "config.yaml",  # ...and relative to the working directory
        "/etc/passwd",
        f"{served.parent}/../../../../../../etc/passwd",
        f"{served.parent}/%2e%2e/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
        str(served.parent),  # no directory listings
        str(served.with_name(f"reply-{secrets.token_urlsafe(16)}.wav")),  # a guessed name of another reply
        str(assistant.store.files()[0]),  # the store's own copy: Gradio serves only what it was handed
    ]
    for target in forbidden:
        response = httpx.get(base + target, timeout=10)
        assert response.status_code in (403, 404), (target, response.status_code)
        assert b"root:" not in response.content and b"auth_password" not in response.content
