"""The live voice link of a tab, without a browser: what the page may send, push-to-talk recordings and their
limits, and the answer's speech handed out piece by piece."""

import base64
import json
import time

import numpy as np
import pytest

from audio.tts.base import SpeechChunk
from chatbot.conversation import Conversation
from chatbot.live import MAX_CHUNK_S, LiveInputError, LiveLink
from chatbot.session import ChatSession


def pcm(seconds: float, rate: int = 16000, level: float = 0.3) -> str:
    samples = (np.sin(np.arange(int(seconds * rate)) / 5) * level * 32767).astype("<i2")
    return base64.b64encode(samples.tobytes()).decode()


@pytest.fixture()
def link(cfg):
    return LiveLink(ChatSession(Conversation("")), cfg.limits, None)


def test_push_to_talk_keeps_the_recording_until_it_is_sent(link):
    assert link.hear({"mode": "ptt", "start": True}) == {"state": "recording"}
    for _ in range(10):
        assert link.hear({"mode": "ptt", "rate": 16000, "pcm": pcm(0.128)})["state"] == "recording"
    answer = link.hear({"mode": "ptt", "final": True, "rate": 16000, "pcm": pcm(0.1)})
    assert answer["utterance"] and answer["mode"] == "ptt"
    utterance = link.take_utterance()
    assert utterance.samples.dtype == np.float32 and len(utterance.samples) == pytest.approx(1.38 * 16000, abs=2)
    assert link.take_utterance() is None  # taken once


def test_pressing_the_mic_stops_the_answer_being_written(link):
    cancel = link.session.cancel
    link.hear({"mode": "ptt", "start": True})
    assert cancel.is_set()


def test_a_too_short_recording_is_refused_with_a_message(link):
    link.hear({"mode": "ptt", "start": True})
    answer = link.hear({"mode": "ptt", "final": True, "rate": 16000, "pcm": pcm(0.1)})
    assert "only 0.1 s long" in answer["notice"] and "utterance" not in answer
    assert link.take_utterance() is None


def test_a_recording_is_cut_at_the_length_limit(cfg):
    import dataclasses

    limits = dataclasses.replace(cfg.limits, max_audio_s=3.0)
    link = LiveLink(ChatSession(Conversation("")), limits, None)
    link.hear({"mode": "ptt", "start": True})
    answers = [link.hear({"mode": "ptt", "rate": 16000, "pcm": pcm(1.0)}) for _ in range(5)]
    assert answers[2] == {"state": "recording"}  # exactly at the limit
    assert answers[3]["utterance"] and "Only the first 3 s" in answers[3]["notice"]
    assert answers[4]["closed"] and "utterance" not in answers[4]  # later audio of the ended recording is ignored
    assert len(link.take_utterance().samples) == 3 * 16000


@pytest.mark.parametrize("message, why", [
    ({"mode": "sing"}, "unknown microphone mode"),
    ({"mode": "ptt", "rate": 12345, "pcm": ""}, "unsupported microphone rate"),
    ({"mode": "ptt", "rate": 16000, "pcm": "not base64!"}, "not valid base64"),
    ({"mode": "ptt", "rate": 16000, "pcm": pcm(MAX_CHUNK_S + 1)}, "at most"),
    ({"mode": "ptt", "rate": 16000, "pcm": 42}, "base64 text"),
])
def test_what_the_page_sends_is_checked(link, message, why):
    link.hear({"mode": "ptt", "start": True})
    with pytest.raises(LiveInputError, match=why):
        link.hear(message)


def test_audio_for_a_recording_that_ended_is_ignored(link):
    answer = link.hear({"mode": "ptt", "rate": 16000, "pcm": pcm(0.1)})  # no recording was started
    assert answer["closed"] and link.take_utterance() is None


def test_talk_mode_without_its_models_says_so(link):
    answer = link.hear({"mode": "talk", "start": True})
    assert answer["closed"] and "Talk mode is not available" in answer["notice"]


def test_speech_pieces_are_handed_out_in_order_once_per_turn(link):
    chunk = SpeechChunk(22050, np.full(2205, 0.5, dtype=np.float32), "Piper joe")
    turn = link.begin_turn()
    assert json.loads(link.cursor(turn, "thinking")) == {"key": link.key, "turn": turn, "ready": 0,
                                                         "stage": "thinking"}
    link.publish(turn, (chunk, chunk))
    link.publish(turn, (chunk,))
    assert json.loads(link.cursor(turn, "speaking"))["ready"] == 3
    pieces = link.pieces_since(turn, 1)
    assert [p["seq"] for p in pieces] == [1, 2] and pieces[0]["rate"] == 22050
    samples = np.frombuffer(base64.b64decode(pieces[0]["pcm"]), "<i2")
    assert len(samples) == 2205 and samples[0] == int(0.5 * 32767)
    newer = link.begin_turn()
    assert link.cursor(turn, "stopped") is None  # the older turn, still ending: the page no longer follows it
    link.publish(turn, (chunk,))  # ...and its speech is dropped
    assert link.pieces_since(turn, 0) == [] and link.pieces_since(newer, 0) == []
    assert link.pieces_since(newer, -1) == [] and link.pieces_since(newer, "0") == []


def test_keys_are_unguessable_and_distinct(cfg):
    keys = {LiveLink(ChatSession(Conversation("")), cfg.limits, None).key for _ in range(50)}
    assert len(keys) == 50 and all(len(k) >= 24 for k in keys)


@pytest.mark.slow
def test_push_to_talk_transcribes_at_the_pause_so_the_press_finds_it_done(assistant, piper):
    """The user stops speaking, then presses: the transcript was started at the pause, and is the turn's."""
    from tests.media import speak

    link = assistant.live_link(ChatSession(Conversation("")))
    link._start_turn = None  # the utterance waits for the page's event (the next test: the server starts it)
    rate = _record_question(link, piper)
    assert link.hear({"mode": "ptt", "final": True, "rate": rate, "pcm": ""})["utterance"]
    utterance = link.take_utterance()
    assert utterance.transcript is not None  # made at the pause, before the press
    assert "capital of" in utterance.transcript.result(timeout=30).text.lower()  # (tiny.en: "France" or "friends")


def _record_question(link, piper) -> int:
    """Push-to-talk: "What is the capital of France?" streamed in as the page sends it, not yet sent."""
    from tests.media import speak

    rate, speech = speak(piper, "What is the capital of France?")
    samples = np.concatenate([np.zeros(rate // 2, np.float32), speech, np.zeros(rate, np.float32)])
    pcm16 = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    link.hear({"mode": "ptt", "start": True})
    block = rate // 10
    for start in range(0, len(pcm16), block):
        chunk = base64.b64encode(pcm16[start:start + block].tobytes()).decode()
        link.hear({"mode": "ptt", "rate": rate, "pcm": chunk})
    return rate


@pytest.mark.slow
def test_the_server_starts_the_spoken_turn_the_moment_it_is_heard(assistant, piper):
    """No page event is needed for the answer to be written and spoken: the event only shows it."""
    session = ChatSession(Conversation(""))
    link = assistant.live_link(session)
    rate = _record_question(link, piper)
    assert link.hear({"mode": "ptt", "final": True, "rate": rate, "pcm": ""})["utterance"]
    assert link.take_utterance() is None  # nothing is left for the event to start...
    early = link.take_early_turn()  # ...but the turn the server started, once
    assert early is not None and link.take_early_turn() is None
    assert early.join(60), "the turn did not end"
    pieces = link.pieces_since(early.turn, 0)
    assert pieces, "its speech was not made ready for the page's player"
    updates = list(early.updates())  # what the event shows, afterwards
    assert updates[-1].stage == "done"
    assert "capital of" in session.exchanges[-1].user.text.lower() and session.exchanges[-1].reply.text
    # In talk mode every answer to the page's audio says how much of the turn's speech is ready.
    link.hear({"mode": "talk", "start": True})
    silence = base64.b64encode(np.zeros(1600, "<i2").tobytes()).decode()
    cursor = link.hear({"mode": "talk", "rate": 16000, "pcm": silence})["speech"]
    assert (cursor["turn"], cursor["ready"], cursor["stage"], cursor["key"]) == (early.turn, len(pieces), "done",
                                                                                 link.key)


def _talk(link, samples: np.ndarray, rate: int) -> list[dict]:
    """Talk mode: `samples` streamed in as the page sends them, 0.1 s a call, as fast as real time; the answers."""
    pcm16 = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    answers = [link.hear({"mode": "talk", "start": True})]
    block = rate // 10
    began = time.monotonic()
    for start in range(0, len(pcm16), block):
        time.sleep(max(0.0, began + start / rate - time.monotonic()))
        chunk = base64.b64encode(pcm16[start:start + block].tobytes()).decode()
        answers.append(link.hear({"mode": "talk", "rate": rate, "pcm": chunk}))
    return answers


@pytest.mark.slow
def test_talk_mode_answers_at_the_pause_and_plays_it_when_the_turn_ends_there(assistant, piper):
    """talk.speculate: the answer started at the pause is the one given when the turn ends with that audio."""
    from tests.media import speak

    session = ChatSession(Conversation(""))
    link = assistant.live_link(session)
    rate, speech = speak(piper, "What is the capital of France?")
    answers = _talk(link, np.concatenate([np.zeros(rate // 2, np.float32), speech, np.zeros(3 * rate, np.float32)]),
                    rate)
    assert sum(bool(a.get("utterance")) for a in answers) == 1
    early = link.take_early_turn()
    assert early is not None and early.join(60)
    assert len(session.exchanges) == 1 and session.exchanges[0].status == "answered"
    assert "capital of" in session.exchanges[0].user.text.lower()
    assert link.pieces_since(early.turn, 0), "the answer's speech was held back, not given"
    assert len(session.conversation.turns) == 1


@pytest.mark.slow
def test_an_answer_started_at_a_pause_the_user_talks_on_from_leaves_no_trace(assistant, caplog, monkeypatch):
    """The user pauses mid-sentence, the answer starts, the user goes on: that answer is stopped, never shown,
    spoken or remembered, and its recording is gone; the whole sentence is answered."""
    import dataclasses

    from tests.media import PAUSE_MARK, aligned_piper, piper_with_pause

    listening = assistant.engines.listening  # turns end after 2 s of silence: the 1.2 s pause is surely a pause
    monkeypatch.setattr(assistant.engines, "listening", dataclasses.replace(
        listening, talk=dataclasses.replace(listening.talk, end_of_turn="silence", silence_timeout_s=2.0)))
    session = ChatSession(Conversation(""))
    link = assistant.live_link(session)
    heard_before = set(assistant.store.root.glob("heard-*"))
    rate, speech = piper_with_pause(aligned_piper(), f"I would like to know the {PAUSE_MARK} weather in London today.",
                                    1.2)  # long enough for the answer to get going in it
    with caplog.at_level("INFO", logger="chatbot.turn"):
        answers = _talk(link, np.concatenate([np.zeros(rate // 2, np.float32), speech,
                                              np.zeros(4 * rate, np.float32)]), rate)
        early = link.take_early_turn()
        assert early is not None and early.join(60)
    assert "turn stopped" in caplog.text  # the answer started in the pause
    assert [bool(a.get("utterance")) for a in answers].count(True) == 1
    assert [e.status for e in session.exchanges] == ["answered"]
    assert "london" in session.exchanges[0].user.text.lower()
    assert len(session.conversation.turns) == 1
    kept = set(assistant.store.root.glob("heard-*")) - heard_before
    assert len(kept) == 1, "the recording of the dropped answer was kept"


@pytest.mark.slow
def test_ending_talk_mode_in_a_pause_drops_the_answer_started_there(assistant, piper, monkeypatch):
    """Talk ended (or a recording started) while an answer waits at a pause for the turn's end: it is dropped,
    and nothing is left running."""
    import dataclasses

    from tests.media import speak

    listening = assistant.engines.listening  # turns end after 2 s of silence: 0.5 s is a pause, surely
    monkeypatch.setattr(assistant.engines, "listening", dataclasses.replace(
        listening, talk=dataclasses.replace(listening.talk, end_of_turn="silence", silence_timeout_s=2.0)))
    session = ChatSession(Conversation(""))
    link = assistant.live_link(session)
    rate, speech = speak(piper, "What is the capital of France?")
    answers = _talk(link, np.concatenate([np.zeros(rate // 2, np.float32), speech,
                                          np.zeros(rate // 2, np.float32)]), rate)
    assert not any(a.get("utterance") for a in answers)
    assert session.running == 1, "no answer was started at the pause"
    link.hear({"mode": "off"})
    assert session.wait_until_idle(10), "the answer started at the pause kept running"
    assert session.exchanges == [] and session.conversation.turns == []
