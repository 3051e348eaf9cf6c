"""Whole turns on the embedded models: text and voice in, streamed text and speech out."""

import threading
import time
import wave

import pytest

from audio.speech.for_the_ear import clean_for_speech
from chatbot.turn import TurnOptions
from tests.media import long_opus, speak, wer, with_claimed_duration, write_wav
from tests.memory import ResidentMemory

pytestmark = pytest.mark.slow


def wav_seconds(path) -> float:
    with wave.open(str(path)) as w:
        return w.getnframes() / w.getframerate()


def test_text_turn_streams_then_speaks(assistant):
    session = assistant.new_session()
    updates = list(assistant.text_turn(session, "Tell me a short fact about the ocean."))

    streamed = [u for u in updates if u.stage == "thinking" and u.messages[-1]["content"]]
    assert len(streamed) >= 3, "the reply should arrive in several streamed pieces"
    lengths = [len(u.messages[-1]["content"]) for u in streamed]
    assert lengths == sorted(lengths) and lengths[0] < lengths[-1]  # text grows as tokens arrive

    final = updates[-1]
    assert final.stage == "done" and final.audio is not None and final.audio.parent == assistant.store.root
    reply_text, audio_item = final.messages[-1]["content"]
    assert reply_text.strip() and audio_item == {"path": str(final.audio)}  # audio in the same message
    words = len(clean_for_speech(reply_text).split())
    assert 0.15 * words < wav_seconds(final.audio) < 1.2 * words + 2  # plausible for the words spoken
    assert final.messages[0] == {"role": "user", "content": "Tell me a short fact about the ocean."}
    assert session.conversation.turns == [("Tell me a short fact about the ocean.", reply_text)]


def test_speech_falls_back_to_piper_and_the_status_says_so(assistant):
    session = assistant.new_session()
    final = list(assistant.text_turn(session, "Say hello."))[-1]
    assert final.audio is not None
    assert "spoken by Piper joe" in final.notice
    assert "TTS Piper joe (fallback: edge-tts en-US-AriaNeural unavailable)" in assistant.status_line()


def test_voice_turn_shows_transcript_with_audio_then_replies(assistant, piper, tmp_path):
    question = "What is the weather like in London today?"
    recording = write_wav(tmp_path / "question.wav", *speak(piper, question))
    updates = list(assistant.voice_turn(assistant.new_session(), recording))

    assert updates[0].stage == "transcribing"
    final = updates[-1]
    assert final.stage == "done" and final.audio is not None
    transcript, user_audio = final.messages[0]["content"]
    assert wer(question, transcript) <= 0.1 and user_audio == {"path": str(recording)}
    assert final.messages[1]["role"] == "assistant" and final.messages[1]["content"][0].strip()
    assert final.timings["stt_s"] > 0 and final.timings["first_token_s"] > 0


def test_two_sessions_never_see_each_other(assistant):
    sessions = [assistant.new_session(), assistant.new_session()]
    secrets = ["My cat is called Pumpernickel.", "My dog is called Zanzibar."]

    def run(i):
        for _ in assistant.text_turn(sessions[i], secrets[i], TurnOptions(speak=False)):
            pass

    threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i, other in ((0, 1), (1, 0)):
        shown = str(sessions[i].messages)
        assert secrets[i] in shown and secrets[other] not in shown
        prompt = sessions[i].conversation.messages("next")
        assert secrets[other] not in str(prompt)


def test_bad_input_ends_the_turn_with_a_message_and_keeps_the_session(assistant, piper, tmp_path):
    session = assistant.new_session()
    (empty,) = list(assistant.text_turn(session, "   "))
    assert empty.stage == "failed" and "Type a message" in empty.notice and session.messages == []

    junk = tmp_path / "voice.webm"
    junk.write_bytes(b"not audio at all" * 100)
    final = list(assistant.voice_turn(session, junk))[-1]
    assert final.stage == "failed" and "could not be read" in final.notice
    assert session.messages[0]["content"] == [{"path": str(junk)}]  # the user's message stays
    assert "Not answered" in str(session.messages[1])

    silence = write_wav(tmp_path / "silence.wav", 16000, __import__("numpy").zeros(16000 * 2))
    final = list(assistant.voice_turn(session, silence))[-1]
    assert final.stage == "failed" and "No speech" in final.notice  # never a hallucinated "You"

    rate, samples = speak(piper, "What is the capital of France?")
    clip = write_wav(tmp_path / "clip.wav", rate, samples[: rate // 10])  # 0.1 s: the start of a word
    final = list(assistant.voice_turn(session, clip))[-1]  # tiny.en hears "We'll see you next time." in it
    assert final.stage == "failed" and "only 0.1 s long" in final.notice

    whole = write_wav(tmp_path / "question.wav", rate, samples).read_bytes()
    header_only = tmp_path / "cut-off.wav"
    header_only.write_bytes(whole[:44])  # the recording ended before its first sample
    final = list(assistant.voice_turn(session, header_only))[-1]
    assert final.stage == "failed" and "holds no sound" in final.notice

    truncated = tmp_path / "truncated.wav"
    truncated.write_bytes(whole[: len(whole) * 2 // 3])  # an upload cut short: what arrived is used
    final = list(assistant.voice_turn(session, truncated, TurnOptions(speak=False)))[-1]
    assert final.stage == "done" and "capital" in str(session.messages[-2]["content"][0]).lower()

    ok = list(assistant.text_turn(session, "Hello!", TurnOptions(speak=False)))[-1]
    assert ok.stage == "done"  # the same session goes on


@pytest.mark.parametrize("text", [
    "😀🎉👍",
    "مرحبا، كيف حالك اليوم؟",  # right to left
    "Was heißt 'thank you' auf Deutsch? 你好 and שלום too.",  # mixed languages and scripts
    "<script>alert('hi')</script> <img src=x onerror=alert(1)> **bold** [link](javascript:alert(1))",
    "$(rm -rf ~); `reboot` | cat /etc/passwd && echo $HOME > /tmp/x; '\"",
])
def test_any_text_is_a_message_kept_exactly_as_written(assistant, text):
    """Nothing the user types is interpreted on the server: it reaches the model and the history unchanged
    (tests/test_browser.py checks that the browser shows it as typed and runs none of it)."""
    session = assistant.new_session()
    final = list(assistant.text_turn(session, text, TurnOptions(speak=False)))[-1]
    assert final.stage == "done"
    assert session.messages[0]["content"] == text and session.conversation.turns[0][0] == text


def test_limits_refuse_long_text_cut_long_audio_and_slow_down_a_flood(assistant, piper, tmp_path):
    from chatbot.config import LimitsConfig

    assistant.limits = LimitsConfig(max_text_chars=40, min_audio_s=0.3, max_audio_s=1.0, turns_per_minute=2,
                                    max_saved_kb=256)
    session = assistant.new_session()
    (refused,) = list(assistant.text_turn(session, "word " * 20))
    assert refused.stage == "failed" and "the limit is 40" in refused.notice and session.messages == []

    done = list(assistant.text_turn(session, "Hel\x00lo\x07 there", TurnOptions(speak=False)))[-1]
    assert done.stage == "done" and done.messages[0]["content"] == "Hello there"  # control characters dropped

    recording = write_wav(tmp_path / "long.wav", *speak(piper, "The quick brown fox jumps over the lazy dog."))
    updates = list(assistant.voice_turn(session, recording, TurnOptions(speak=False)))
    assert any("Only the first 1 s" in u.notice for u in updates)
    assert updates[-1].timings["audio_s"] == pytest.approx(1.0, abs=0.01)

    (slow_down,) = list(assistant.text_turn(session, "One more?", TurnOptions(speak=False)))
    assert slow_down.stage == "failed" and "very fast" in slow_down.notice
    other = list(assistant.text_turn(assistant.new_session(), "Hi", TurnOptions(speak=False)))[-1]
    assert other.stage == "done"  # another session is not affected


def test_unwritable_audio_directory_still_delivers_the_text(assistant, tmp_path):
    blocked = tmp_path / "not-a-directory"
    blocked.write_text("a file where the audio directory should be")
    assistant.store.root = blocked  # every write into it fails, even as root
    final = list(assistant.text_turn(assistant.new_session(), "Say hello."))[-1]
    assert final.stage == "done" and final.audio is None
    assert final.messages[-1]["content"].strip()  # the text arrived
    assert "audio could not be saved" in final.notice


def test_every_turn_that_reached_the_model_ends_with_the_after_turn_hook(assistant):
    """server.malloc_trim hands freed memory back here: after a finished turn and an abandoned one alike."""
    ended = []
    assistant.after_turn = lambda: ended.append(1)
    session = assistant.new_session()
    assert list(assistant.text_turn(session, "   "))[-1].stage == "failed"  # refused before the model: no turn
    assert ended == []
    assert list(assistant.text_turn(session, "Hello!", TurnOptions(speak=False)))[-1].stage == "done"
    assert ended == [1]
    turn = assistant.text_turn(session, "Tell me about the moon.", TurnOptions(speak=False))
    next(turn), next(turn)  # the reply has started...
    assert ended == [1]
    turn.close()  # ...and its client went away
    assert ended == [1, 1]


@pytest.mark.parametrize("lead,claimed_s", [(True, None), (True, 3.0), (False, None)],
                         ids=["question-then-two-hours", "header-claims-3-s", "two-hours-of-silence"])
def test_hours_of_audio_in_a_small_file_are_cut_and_answered_in_seconds_in_bounded_memory(
        assistant, piper, tmp_path, lead, claimed_s):
    """Issue 17: a recording left running for two hours (4.4 MB of Opus) cost 20 s and +970 MB at its peak, and
    +490 MB stayed. Now only the first limits.max_audio_s is decoded; the memory of the turn comes back (by
    malloc_trim after a turn that reached the model; a turn that fails before holds only bounded buffers)."""
    question = "What is the weather like in London today?"
    spoken = speak(piper, question)
    recording = long_opus(tmp_path / "left-running.webm", 2 * 3600, lead=spoken if lead else None, bitrate=16_000)
    if claimed_s is not None:
        with_claimed_duration(recording, claimed_s)
    session = assistant.new_session()
    list(assistant.voice_turn(session, write_wav(tmp_path / "q.wav", *spoken), TurnOptions(speak=False)))  # warm
    with ResidentMemory() as memory:
        started = time.perf_counter()
        updates = list(assistant.voice_turn(session, recording, TurnOptions(speak=False)))
        elapsed = time.perf_counter() - started
    assert any(f"Only the first {assistant.limits.max_audio_s:.0f} s" in u.notice for u in updates)
    final = updates[-1]
    if lead:
        assert final.stage == "done" and wer(question, final.messages[-2]["content"][0]) <= 0.1
        assert final.timings["audio_s"] == pytest.approx(assistant.limits.max_audio_s)
    else:
        assert final.stage == "failed" and "No speech was heard" in final.notice
    assert elapsed < 10, f"{elapsed:.1f} s for the turn"
    assert memory.peak_mb < 200, f"peak resident memory grew {memory.peak_mb:.0f} MB during the turn"
    assert memory.kept_mb < 50, f"{memory.kept_mb:.0f} MB stayed after the turn"
