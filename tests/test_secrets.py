"""No secret (HF token, login password, LLM server API key) reaches the logs, the UI or an error message."""

import dataclasses
import http.server
import json
import logging
import threading

import httpx
import pytest

from chatbot.engines import build_generator
from chatbot.llm.base import ReplyError
from tests.test_app_http import free_port, running_app

pytestmark = pytest.mark.slow

HF_TOKEN = "hf_SeCrEtToKeN0123456789"
PASSWORD = "pw-SeCrEt-4567"
API_KEY = "sk-SeCrEt-89abcdef"
SECRETS = (HF_TOKEN, PASSWORD, API_KEY)


class _RefusingServer(http.server.BaseHTTPRequestHandler):
    """An OpenAI-compatible server that refuses the key and, like some real ones, quotes it back."""

    def do_POST(self):  # noqa: N802 (http.server's naming)
        key = self.headers.get("Authorization", "").removeprefix("Bearer ")
        body = json.dumps({"error": {"message": f"Incorrect API key provided: {key}"}}).encode()
        self.send_response(401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


def assert_no_secret(text: str, where: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"a secret leaked into {where}"


def test_secrets_stay_out_of_logs_ui_and_errors(cfg, engines, monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HF_TOKEN", HF_TOKEN)

    # A hub model that cannot be fetched (offline) with a token set: the note users see names no token.
    llm = dataclasses.replace(cfg.llm, model="microsoft/Phi-3-mini-4k-instruct")
    _generator, note = build_generator(llm, "cpu", cfg.cache_path)
    assert note
    assert_no_secret(note, "the start-up note")

    # An LLM server that refuses the key and quotes it back: the user's message does not repeat it.
    port = free_port()
    refusing = http.server.ThreadingHTTPServer(("127.0.0.1", port), _RefusingServer)
    threading.Thread(target=refusing.serve_forever, daemon=True).start()
    try:
        remote = dataclasses.replace(cfg.llm, engine="openai", model="some-model", openai_api_key=API_KEY,
                                     openai_base_url=f"http://127.0.0.1:{port}/v1")
        generator, _ = build_generator(remote, "cpu", cfg.cache_path)
        with pytest.raises(ReplyError) as refused:
            list(generator.stream([{"role": "user", "content": "Hi"}]))
        assert "HTTP 401" in str(refused.value) and "[API key]" in str(refused.value)
        assert_no_secret(str(refused.value), "the error message")
    finally:
        refusing.shutdown()

    # The app itself, with a login and the key configured: not in its pages, its config, or its logs.
    with running_app(dataclasses.replace(cfg, llm=remote), engines, auth_user="ada",
                     auth_password=PASSWORD) as (demo, assistant):
        with httpx.Client(base_url=demo.local_url, timeout=10) as browser:
            assert_no_secret(browser.get("/").text, "the login page")
            assert browser.post("/login", data={"username": "ada", "password": PASSWORD}).status_code == 200
            for page in ("/", "/config", "/gradio_api/info"):
                response = browser.get(page)
                assert response.status_code == 200, page
                assert_no_secret(response.text, page)
        assert_no_secret(assistant.status_line(), "the status line")
    assert_no_secret("\n".join(r.getMessage() for r in caplog.records), "the log")
