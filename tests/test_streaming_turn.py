"""Speech that starts while the reply is still being generated, Stop, interruption, concurrent sessions."""

import dataclasses
import threading
import time

import pytest

from audio.tts.base import VoiceOptions
from chatbot.turn import TurnOptions

pytestmark = pytest.mark.slow

LONG_QUESTION = "Describe a sunny day at the beach in four sentences."


def live_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name in ("llm-generate", "speech-worker")}


def test_first_audio_is_produced_before_generation_finishes(assistant, monkeypatch):
    # The speaker settles first: the first speech of a run tries edge-tts, whose failure here (a DNS lookup of
    # varying length) raced the under-a-second reply and lost about one run in four.
    list(assistant.engines.speaker.speak("Hello.", VoiceOptions()))
    # Greedy decoding: sampled, the model sometimes answers in one 20-token sentence, whose first spoken piece
    # is ready only as the last token comes (CI saw it); greedy, it writes all 64 tokens, the first piece at ~20.
    generator = assistant.engines.generator
    monkeypatch.setattr(generator, "settings", dataclasses.replace(generator.settings, temperature=0))
    updates = list(assistant.text_turn(assistant.new_session(), LONG_QUESTION))
    generating = [i for i, u in enumerate(updates) if u.stage == "thinking"]
    with_audio = [i for i, u in enumerate(updates) if u.speech]
    assert with_audio, "no speech was produced"
    first_audio = with_audio[0]
    assert updates[first_audio].stage == "thinking"  # speech arrived while tokens were still streaming...
    assert generating[-1] > first_audio  # ...and more tokens came after it
    text_then = updates[first_audio].messages[-1]["content"]
    assert len(updates[generating[-1]].messages[-1]["content"]) > len(text_then)
    final = updates[-1]
    assert final.stage == "done" and final.audio is not None
    assert final.timings["first_audio_s"] < final.timings["first_token_s"] + final.timings["generate_s"]
    # the pieces played one after another make up the whole reply's audio in the chat
    streamed = sum(len(c.samples) for u in updates for c in u.speech)
    assert streamed == pytest.approx(final.timings["speech_audio_s"] * updates[with_audio[0]].speech[0].sample_rate, rel=0.01)


def test_stop_ends_generation_and_speech_quickly_and_the_session_goes_on(assistant):
    session = assistant.new_session()
    updates = assistant.text_turn(session, LONG_QUESTION)
    for update in updates:
        if update.stage == "thinking" and update.messages[-1]["content"]:
            break  # the reply has started streaming
    stopped_at = time.perf_counter()
    session.stop()
    rest = list(updates)
    took = time.perf_counter() - stopped_at
    assert rest[-1].stage == "stopped" and rest[-1].messages[-1]["content"].endswith("⏹️")
    assert took < 3.0, f"stopping took {took:.1f} s"
    deadline = time.monotonic() + 5
    while live_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not live_threads(), "generation or speech kept running after Stop"
    final = list(assistant.text_turn(session, "Thanks!", TurnOptions(speak=False)))[-1]
    assert final.stage == "done"


def test_a_new_message_interrupts_the_reply_still_running(assistant):
    session = assistant.new_session()
    old = assistant.text_turn(session, LONG_QUESTION)
    next(u for u in old if u.stage == "thinking" and u.messages[-1]["content"])
    new = list(assistant.text_turn(session, "Never mind. Say hi.", TurnOptions(speak=False)))
    assert new[-1].stage == "done"
    assert list(old)[-1].stage == "stopped"  # the old turn noticed at its next token and ended


def test_two_sessions_replying_at_once_each_get_their_own_audio(assistant):
    sessions = [assistant.new_session(), assistant.new_session()]
    finals = [None, None]
    chunks = [0, 0]

    def run(i, question):
        for update in assistant.text_turn(sessions[i], question):
            chunks[i] += len(update.speech)
            finals[i] = update

    threads = [threading.Thread(target=run, args=(i, q)) for i, q in
               enumerate(["Say something about cats.", "Say something about the moon."])]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(f.stage == "done" and f.audio is not None for f in finals)
    assert finals[0].audio != finals[1].audio and all(chunks)
    for session, final in zip(sessions, finals, strict=True):
        assert session.messages[-1]["content"][1] == {"path": str(final.audio)}
