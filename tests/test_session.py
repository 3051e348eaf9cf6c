"""Exchanges are the single truth: the chat panel and the kept record are rendered from them, and retry, audio
expiry and restore work on them (nothing is read back out of display markup)."""

import json
from pathlib import Path

from chatbot import transcript
from chatbot.conversation import Conversation
from chatbot.session import (NOT_ANSWERED, SPOKEN, STOPPED_MARK, ChatSession, Exchange, Reply, UserInput,
                             render_panel)


# The record of a voice exchange, a failed one and a stopped one.
RECORDED = [
    {"role": "user", "text": "Where is Paris?", "spoken": True},
    {"role": "assistant", "text": "In France."},
    {"role": "user", "text": "And Rome?"},
    {"role": "assistant", "text": "⚠️ The model failed.", "failed": True},
    {"role": "user", "text": "Tell me a story."},
    {"role": "assistant", "text": "Once upon" + STOPPED_MARK},
]


def voice_exchange(tmp_path: Path, status="answered") -> Exchange:
    recording, reply_audio = tmp_path / "question.webm", tmp_path / "reply.wav"
    recording.write_bytes(b"webm")
    reply_audio.write_bytes(b"RIFF")
    return Exchange(UserInput("Where is Paris?", recording, spoken=True), Reply("In France.", reply_audio), status)


def test_each_status_renders_as_the_panel_shows_it(tmp_path):
    voice = voice_exchange(tmp_path)
    transcribing = Exchange(UserInput(audio=voice.user.audio, spoken=True))
    streaming = Exchange(UserInput("Hi"), Reply("Hel"))
    stopped = Exchange(UserInput("Tell me a story."), Reply("Once upon"), "stopped")
    failed = Exchange(UserInput("And Rome?"))
    failed.fail("The model failed.")
    panel = render_panel([voice, transcribing, streaming, stopped, failed])
    assert panel == [
        {"role": "user", "content": ["Where is Paris?", {"path": str(voice.user.audio)}]},
        {"role": "assistant", "content": ["In France.", {"path": str(voice.reply.audio)}]},
        {"role": "user", "content": [{"path": str(voice.user.audio)}]},  # no reply yet: nothing below it
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hel"},
        {"role": "user", "content": "Tell me a story."},
        {"role": "assistant", "content": "Once upon" + STOPPED_MARK},
        {"role": "user", "content": "And Rome?"},
        {"role": "assistant", "content": "⚠️ The model failed.", "metadata": {"title": NOT_ANSWERED}},
    ]


def test_a_failed_reply_is_dropped_and_the_message_stays(tmp_path):
    exchange = Exchange(UserInput("Hello"), Reply("half an ans"))
    exchange.fail("The model failed to answer. Please try again.")
    assert exchange.reply is None and not exchange.answered
    assert render_panel([exchange])[0] == {"role": "user", "content": "Hello"}


def test_answered_means_committed_text():
    assert Exchange(UserInput("a"), Reply("b"), "answered").answered
    assert Exchange(UserInput("a"), Reply("b"), "stopped").answered
    assert not Exchange(UserInput("a"), Reply(""), "stopped").answered  # stopped before a word: not committed
    assert not Exchange(UserInput("a"), Reply("b")).answered  # still streaming


def test_record_json_and_markdown_are_rendered_from_the_exchanges(tmp_path):
    session = ChatSession(Conversation(""))
    failed = Exchange(UserInput("And Rome?"))
    failed.fail("The model failed.")
    session.exchanges += [voice_exchange(tmp_path), failed,
                          Exchange(UserInput("Tell me a story."), Reply("Once upon"), "stopped")]
    record = transcript.to_record(session)
    assert str(tmp_path) not in json.dumps(record)  # never a path
    assert record["messages"] == RECORDED
    assert json.loads(transcript.to_json(record, model="m"))["messages"] == record["messages"]
    markdown = transcript.to_markdown(record, model="m")
    assert "**You** (spoken): Where is Paris?" in markdown and "Once upon _(stopped)_" in markdown


def test_restore_rebuilds_exchanges_with_their_status():
    record = {"format": transcript.FORMAT, "turns": [["Where is Paris?", "In France."]], "messages": [
        *RECORDED, {"role": "user", "text": "Still there?"}]}  # the last saved before its answer came
    session = ChatSession(Conversation(""))
    assert transcript.restore(session, record)
    voice, failed, stopped, unanswered = session.exchanges
    assert voice.user == UserInput("Where is Paris?", None, spoken=True, restored=True)
    assert voice.status == "answered" and voice.reply.text == "In France."
    assert failed.status == "failed" and failed.reason == "The model failed." and failed.reply is None
    assert stopped.status == "stopped" and stopped.reply.text == "Once upon" and stopped.answered
    assert unanswered.status == "pending" and unanswered.reply is None
    assert session.messages[0] == {"role": "user", "content": SPOKEN + "Where is Paris?"}
    assert transcript.to_record(session)["messages"] == record["messages"]  # a second save says the same


def test_expired_audio_is_forgotten_on_the_exchange_and_the_text_stays(tmp_path):
    exchange = voice_exchange(tmp_path)
    exchange.reply.audio.unlink()
    session = ChatSession(Conversation(""), [exchange])
    session.begin_turn()
    assert exchange.user.audio is not None and exchange.reply.audio is None
    exchange.user.audio.unlink()
    session.forget_expired_audio()
    assert exchange.user == UserInput("Where is Paris?", None, spoken=True)
    assert session.messages == [{"role": "user", "content": "Where is Paris?"},
                                {"role": "assistant", "content": "In France."}]
