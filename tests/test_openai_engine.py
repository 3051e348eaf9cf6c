"""The `openai` engine against a real OpenAI-compatible server on 127.0.0.1 (llama-cpp-python's)."""

import dataclasses
import threading
import time

import pytest

from chatbot.engines import Engines, build_generator
from chatbot.llm.base import ReplyError
from chatbot.llm.openai_engine import OpenAIChatGenerator
from chatbot.assistant import Assistant
from chatbot.turn import TurnOptions
from tests.llama_server import ALIAS, LlamaServer
from tests.test_app_http import free_port

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    running = LlamaServer(free_port(), tmp_path_factory.mktemp("llama") / "server.log").start()
    yield running
    running.stop()


def openai_llm(cfg, base_url: str, **changes):
    settings = dict(engine="openai", model="auto", openai_base_url=base_url, temperature=0.0, max_new_tokens=48,
                    openai_connect_timeout_s=2.0, openai_read_timeout_s=20.0)
    return dataclasses.replace(cfg.llm, **{**settings, **changes})


def chat(cfg, question: str) -> list[dict]:
    return [{"role": "system", "content": cfg.llm.system_prompt}, {"role": "user", "content": question}]


def test_streams_a_reply_from_the_server(cfg, server):
    generator, note = build_generator(openai_llm(cfg, server.base_url), "cpu", cfg.cache_path)
    assert note == "" and isinstance(generator, OpenAIChatGenerator)
    assert generator.model_name() == ALIAS  # "auto": the server's first model
    assert generator.description == f"{ALIAS} · OpenAI-compatible server at {server.base_url}"
    pieces = list(generator.stream(chat(cfg, "What is the capital of France?")))
    assert len(pieces) >= 3 and "Paris" in "".join(pieces), pieces


def test_stop_closes_the_stream(cfg, server):
    generator, _ = build_generator(openai_llm(cfg, server.base_url, max_new_tokens=256), "cpu", cfg.cache_path)
    cancel = threading.Event()
    pieces = []
    started = time.monotonic()
    for piece in generator.stream(chat(cfg, "Tell me a long story about a dragon."), cancel):
        pieces.append(piece)
        if len(pieces) == 2:
            cancel.set()
    assert len(pieces) == 2
    # The server stopped generating for the closed request: the next one is answered at once.
    reply = "".join(generator.stream(chat(cfg, "Say hello.")))
    assert reply and time.monotonic() - started < 20


def test_wrong_url_fails_fast_with_a_clear_message(cfg):
    dead = f"http://127.0.0.1:{free_port()}/v1"  # nothing listens there
    started = time.monotonic()
    generator, note = build_generator(openai_llm(cfg, dead, model=ALIAS), "cpu", cfg.cache_path)
    with pytest.raises(ReplyError, match="is not reachable .*Start it, or set llm.openai_base_url"):
        list(generator.stream(chat(cfg, "Hello?")))
    assert time.monotonic() - started < 3
    # Model "auto" needs the server to name its model: said at start, and the app still starts.
    generator, note = build_generator(openai_llm(cfg, dead), "cpu", cfg.cache_path)
    assert f"The LLM server at {dead} is not reachable" in note and "try again" in note


def test_server_killed_mid_reply_ends_the_turn_with_a_message_and_the_session_goes_on(cfg, engines, tmp_path):
    from audio.store import AudioStore

    llama = LlamaServer(free_port(), tmp_path / "server.log").start()
    generator, _ = build_generator(openai_llm(cfg, llama.base_url, max_new_tokens=256), "cpu", cfg.cache_path)
    remote = Engines(engines.device, engines.transcriber, generator, engines.speaker)
    store = AudioStore(tmp_path / "audio", 60)
    assistant = Assistant(cfg, remote, store)
    session = assistant.new_session()
    try:
        updates = []
        for update in assistant.text_turn(session, "Tell me a long story about a dragon.", TurnOptions(speak=False)):
            updates.append(update)
            if update.stage == "thinking" and update.messages[-1]["content"] and llama.process.poll() is None:
                llama.kill()
        last = updates[-1]
        assert last.stage == "failed"
        assert f"The LLM server at {llama.base_url}" in last.notice
        assert session.messages[0] == {"role": "user", "content": "Tell me a long story about a dragon."}
        assert session.messages[-1]["metadata"] == {"title": "Not answered"}

        llama.start()  # the server is back: the same session simply goes on
        last = list(assistant.text_turn(session, "What is the capital of France?", TurnOptions(speak=False)))[-1]
        assert last.stage == "done" and "Paris" in last.messages[-1]["content"]
    finally:
        llama.stop()
        store.close()
