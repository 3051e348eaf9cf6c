"""A stage that breaks in the middle of a turn: the turn ends with a message, the user's message stays (marked
as not answered) and can be sent again with the chat's retry button, and the session goes on.

Each broken stage is the real embedded model, made to raise the way a crashing one does (a CUDA error, an
out-of-memory); the other stages and everything around them are real.
"""

import dataclasses
import threading
from contextlib import closing

import pytest

from audio.store import AudioStore
from chatbot import transcript
from chatbot.assistant import Assistant
from chatbot.session import NOT_ANSWERED, STOPPED_MARK
from chatbot.turn import TurnOptions
from tests.media import speak, write_wav

pytestmark = pytest.mark.slow

TEXT_ONLY = TurnOptions(speak=False)


class Breaks:
    """A real stage whose `method` raises `error` on its next `times` calls; every other call goes through."""

    def __init__(self, real, method: str, error: BaseException, times: int = 1):
        self.real, self.method, self.error, self.left = real, method, error, times

    def __getattr__(self, name):
        attribute = getattr(self.real, name)
        if name != self.method:
            return attribute

        def call(*args, **kwargs):
            if self.left > 0:
                self.left -= 1
                raise self.error
            return attribute(*args, **kwargs)
        return call


class BreaksMidReply(Breaks):
    """A real reply generator that fails after a few tokens of its next reply (the user saw text arrive)."""

    def __init__(self, real, error: BaseException, after_tokens: int = 3):
        super().__init__(real, "stream", error)
        self.after_tokens = after_tokens

    def stream(self, messages, cancel=None):
        if self.left == 0:
            yield from self.real.stream(messages, cancel)
            return
        self.left -= 1
        with closing(self.real.stream(messages, cancel)) as real:  # the real generation is stopped and freed
            for count, delta in enumerate(real):
                if count == self.after_tokens:
                    raise self.error
                yield delta


@pytest.fixture()
def assistant_with(engines, cfg, tmp_path):
    """An Assistant whose engines have some stages replaced."""
    stores = []

    def make(**stages) -> Assistant:
        store = AudioStore(tmp_path / f"audio{len(stores)}", cfg.files.max_age_s)
        stores.append(store)
        return Assistant(cfg, dataclasses.replace(engines, **stages), store)
    yield make
    for store in stores:
        store.close()


def failed_turn(messages: list[dict]) -> bool:
    return messages[-1]["role"] == "assistant" and messages[-1].get("metadata", {}).get("title") == NOT_ANSWERED


def test_speech_to_text_crash_keeps_the_recording_and_retry_answers_it(assistant_with, engines, piper, tmp_path):
    crash = RuntimeError("CUDA error: an illegal memory access was encountered")
    assistant = assistant_with(transcriber=Breaks(engines.transcriber, "transcribe", crash))
    session = assistant.new_session()
    recording = write_wav(tmp_path / "question.wav", *speak(piper, "What is the capital of France?"))

    final = list(assistant.voice_turn(session, recording, TEXT_ONLY))[-1]
    assert final.stage == "failed" and "Speech recognition failed" in final.notice
    assert "RuntimeError" not in final.notice  # no exception names in the page (issue 15): they are in the log
    assert "illegal memory" not in final.notice  # internals go to the log, not to the user
    assert session.messages[0] == {"role": "user", "content": [{"path": str(recording)}]}  # the recording stays
    assert failed_turn(session.messages) and session.conversation.turns == []

    final = list(assistant.retry_turn(session, TEXT_ONLY))[-1]
    assert final.stage == "done"
    question, reply = session.messages
    assert "capital of France" in question["content"][0] and question["content"][1] == {"path": str(recording)}
    assert reply["content"].strip() and len(session.conversation.turns) == 1


def test_generation_crash_mid_reply_drops_the_partial_answer_and_retry_answers(assistant_with, engines):
    crash = RuntimeError("CUDA error: device-side assert triggered")
    assistant = assistant_with(generator=BreaksMidReply(engines.generator, crash))
    session = assistant.new_session()

    updates = list(assistant.text_turn(session, "Tell me about the sea.", TEXT_ONLY))
    assert any(u.stage == "thinking" and u.messages[-1]["content"] for u in updates)  # text had started to arrive
    final = updates[-1]
    assert final.stage == "failed" and "The model failed to answer" in final.notice
    assert "RuntimeError" not in final.notice
    assert [m["role"] for m in session.messages] == ["user", "assistant"] and failed_turn(session.messages)
    assert session.messages[0]["content"] == "Tell me about the sea." and session.conversation.turns == []

    final = list(assistant.retry_turn(session, TEXT_ONLY))[-1]
    assert final.stage == "done" and len(session.messages) == 2 and not failed_turn(session.messages)
    assert session.conversation.turns == [("Tell me about the sea.", session.messages[1]["content"])]
    assert list(assistant.text_turn(session, "Thank you!", TEXT_ONLY))[-1].stage == "done"  # the session goes on


def test_speech_crash_keeps_the_text_and_the_next_turn_is_spoken(assistant_with, engines):
    assistant = assistant_with(speaker=Breaks(engines.speaker, "speak", RuntimeError("onnxruntime: bad alloc")))
    session = assistant.new_session()

    final = list(assistant.text_turn(session, "Say hello."))[-1]
    assert final.stage == "done" and final.audio is None
    assert "could not be spoken" in final.notice and "RuntimeError" not in final.notice
    assert isinstance(session.messages[-1]["content"], str) and session.messages[-1]["content"].strip()

    final = list(assistant.text_turn(session, "Say goodbye."))[-1]
    assert final.stage == "done" and final.audio is not None and final.audio.is_file()


def test_retry_replaces_an_answer_and_the_model_forgets_the_old_one(assistant):
    session = assistant.new_session()
    (nothing,) = list(assistant.retry_turn(session, TEXT_ONLY))
    assert nothing.stage == "failed" and "no message to send again" in nothing.notice

    assert list(assistant.text_turn(session, "Name a colour.", TEXT_ONLY))[-1].stage == "done"
    first = session.messages[1]["content"]
    session.conversation.turns[-1] = ("Name a colour.", "MARKER of the first answer")  # to see it go
    assert list(assistant.retry_turn(session, TEXT_ONLY))[-1].stage == "done"
    assert len(session.messages) == 2 and session.messages[0]["content"] == "Name a colour."
    assert session.conversation.turns == [("Name a colour.", session.messages[1]["content"])]
    assert "MARKER" not in str(session.conversation.turns) and first  # replaced, not added


def test_retry_after_a_reload_sends_the_spoken_messages_transcript(assistant):
    """A restored voice message has only its transcript (the audio is not kept in the browser)."""
    record = {"format": transcript.FORMAT, "turns": [],
              "messages": [{"role": "user", "text": "What is the capital of France?", "spoken": True},
                           {"role": "assistant", "text": "⚠️ Speech recognition failed.", "failed": True}]}
    session = assistant.new_session()
    assert transcript.restore(session, record)
    final = list(assistant.retry_turn(session, TEXT_ONLY))[-1]
    assert final.stage == "done"
    assert session.conversation.turns[0][0] == "What is the capital of France?"
    assert [m["role"] for m in session.messages] == ["user", "assistant"] and not failed_turn(session.messages)


def test_retry_while_the_reply_still_streams_stops_it_and_answers_once(assistant):
    session = assistant.new_session()
    running = assistant.text_turn(session, "Tell me a long story about a lighthouse.", TEXT_ONLY)
    next(running), next(running)  # the reply has started
    first_run: list = []
    reader = threading.Thread(target=lambda: first_run.extend(running))  # as Gradio's worker would go on reading
    reader.start()
    final = list(assistant.retry_turn(session, TEXT_ONLY))[-1]
    reader.join(timeout=30)
    assert not reader.is_alive() and first_run[-1].stage == "stopped"
    assert final.stage == "done" and session.running == 0
    assert [m["role"] for m in session.messages] == ["user", "assistant"]
    assert not session.messages[1]["content"].endswith(STOPPED_MARK.strip())
    assert session.conversation.turns == [("Tell me a long story about a lighthouse.", session.messages[1]["content"])]
