import dataclasses
import threading
import time

import pytest

from audio.speech.for_the_ear import clean_for_speech, speakable
from audio.tts.base import VoiceOptions
from audio.speech.stage import SpeechStage


def test_markdown_symbols_are_not_read_aloud():
    spoken = clean_for_speech("# Title\nThis is **bold**, _italic_ and `code`.\n- one\n- two\n> quoted")
    assert spoken == "Title. This is bold, italic and code. one. two. quoted."


def test_code_blocks_urls_and_emoji_are_dropped():
    text = "Run this 😀:\n```python\nprint('secret')\n```\nSee https://example.com/a?b=1 or [the docs](http://x.y). 👍🏽"
    spoken = clean_for_speech(text)
    assert "print" not in spoken and "http" not in spoken and "example" not in spoken
    assert "😀" not in spoken and "👍" not in spoken
    assert "the docs" in spoken


def test_punctuation_or_emoji_only_text_is_not_speakable():
    assert not speakable(clean_for_speech("... !!! ???"))
    assert not speakable(clean_for_speech("😀🎉👍🏽"))
    assert not speakable(clean_for_speech("```\nx = 1\n```"))
    assert speakable(clean_for_speech("Hello 😀"))



@pytest.mark.slow
def test_speech_stage_speaks_up_to_the_cap_then_says_where_the_rest_is(piper, cfg):
    """A 5,000-character reply is not read for minutes: speech stops at tts.max_chars and says so."""
    spoken: list[str] = []

    class Recording:  # the real Piper voice, noting what it is asked to say
        description = piper.description

        def voices(self):
            return piper.voices()

        def speak(self, text, options):
            spoken.append(text)
            yield from piper.speak(text, options)

    worker = SpeechStage(Recording(), VoiceOptions(), threading.Event(), dataclasses.replace(cfg.tts, max_chars=120),
                         cap_notice="The rest is in the chat.")
    for _ in range(250):  # ~5,000 characters, fed as a reply streams in
        worker.feed("This is one more sentence of a long answer. ")
    worker.finish()
    chunks = list(worker.drain())
    assert worker.capped and spoken[-1] == "The rest is in the chat."
    assert sum(len(t) for t in spoken[:-1]) <= 120 and len(spoken) <= 4
    assert chunks and sum(len(c.samples) / c.sample_rate for c in chunks) < 20


def test_the_reply_waits_for_the_voice_only_while_little_speech_is_ready(piper, cfg):
    """tts.lead_s: the turn calls wait_for_lead between tokens; it returns once the piece being synthesised is
    done while less than lead_s of speech is ready, and at once when enough is."""
    stage = SpeechStage(piper, VoiceOptions(), threading.Event(), cfg.tts)
    stage.wait_for_lead(1.0, 10)  # nothing being synthesised: nothing to wait for
    stage.say("Here is the first piece of the answer, a sentence of a few seconds.")
    stage.wait_for_lead(1.0, 10)
    first = stage.ready()
    assert first, "the wait ended before the first piece's audio was ready"
    assert stage.ahead_s() > 1.0  # a few seconds of speech in hand...
    stage.say("And a second piece, long enough that it takes a moment to synthesise, as answers do.")
    stage.wait_for_lead(1.0, 10)  # ...so the reply goes on at once, while the voice works on the second piece
    assert not stage.ready()
    stage.finish()
    assert list(stage.drain())


def test_a_cancelled_turn_does_not_wait_for_its_voice(piper, cfg):
    cancel = threading.Event()
    stage = SpeechStage(piper, VoiceOptions(), cancel, cfg.tts)
    stage.say("A sentence that would take a moment to synthesise, long enough to be waited for.")
    cancel.set()
    waited = time.perf_counter()
    stage.wait_for_lead(1.0, 30)
    assert time.perf_counter() - waited < 5, "it waited for the voice of a cancelled turn"
    stage.stop()
