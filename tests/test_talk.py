"""Talking to it in a real browser: Chromium's fake microphone plays a file made here (Piper's voice with
silences between), the page streams it to the server, the answer's speech plays through the page's Web Audio
player. Talk mode, barge-in, a pause mid-sentence, push-to-talk over an answer, a denied microphone, silence.

What the page heard and played is read from `window.voiceStats` (chatbot/web/live.js).
"""

from __future__ import annotations

import contextlib
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from tests.media import resample, speak, write_wav
from tests.test_app_http import running_app
from tests.test_browser import (ARTIFACTS, CHROMIUM, FLAGS, TURN_TIMEOUT_MS, bot_texts, playwright_with_chromium,
                                user_texts)

pytestmark = pytest.mark.slow

MIC_RATE = 48_000  # what Chromium's fake microphone file is written at


def mic_file(piper, folder: Path, name: str, *parts) -> Path:
    """A fake-microphone WAV: each part is a sentence for Piper to say, or a number of seconds of silence."""
    pieces = []
    for part in parts:
        if isinstance(part, str):
            rate, samples = speak(piper, part)
            pieces.append(resample(rate, samples, MIC_RATE))
        else:
            pieces.append(np.zeros(int(part * MIC_RATE), dtype=np.float32))
    return write_wav(folder / name, MIC_RATE, np.concatenate(pieces))


@pytest.fixture(scope="module")
def url(cfg, engines):
    with running_app(cfg, engines) as (demo, _assistant):
        yield demo.local_url


@pytest.fixture(scope="module")
def playwright():
    with playwright_with_chromium() as playwright:
        yield playwright


@contextlib.contextmanager
def open_page(playwright, url, microphone: Path | None, *, allow_microphone: bool = True):
    """A page in a Chromium of its own whose fake microphone plays `microphone` (None: no microphone at all)."""
    flags = [*FLAGS, f"--use-file-for-fake-audio-capture={microphone}"] if microphone else [
        f for f in FLAGS if f != "--use-fake-ui-for-media-stream"]
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
    try:
        context = browser.new_context(viewport={"width": 1280, "height": 900},
                                      permissions=["microphone"] if allow_microphone else [])
        page = context.new_page()
        page.goto(url)
        page.wait_for_selector("#message textarea", timeout=60_000)
        page.wait_for_function("() => document.querySelector('#live .live-talk') !== null", timeout=30_000)
        yield page
    finally:
        browser.close()


def stats(page) -> dict:
    return page.evaluate("() => window.voiceStats")


def events(page, kind: str) -> list[dict]:
    return [e for e in stats(page)["events"] if e["type"] == kind]


def wait_for_replies(page, count: int, timeout_ms: int = TURN_TIMEOUT_MS) -> None:
    page.wait_for_function(
        f"() => [...document.querySelectorAll('#chat .message-row.bot-row')].filter(r => r.innerText.trim()).length"
        f" >= {count}", timeout=timeout_ms)


def wait_for_sound(page, turns: int, timeout_ms: int = TURN_TIMEOUT_MS) -> None:
    page.wait_for_function(f"() => window.voiceStats.turns.filter(t => t.first_sound !== null).length >= {turns}",
                           timeout=timeout_ms)


def test_talk_mode_two_turns_from_the_microphone_alone(playwright, url, piper, tmp_path):
    microphone = mic_file(piper, tmp_path, "two.wav", 0.5, "What is the capital of France?", 9.0,
                          "What colour is the sky?", 30.0)
    with open_page(playwright, url, microphone) as page:
        page.locator("#live .live-talk").click()  # the only click
        page.wait_for_function("() => document.querySelector('#live .live').dataset.state !== ''", timeout=10_000)
        wait_for_replies(page, 2)
        wait_for_sound(page, 2)
        said = [t.lower() for t in user_texts(page)]
        # (tiny.en hears "France" as "friends" now and then: the words of each turn came through)
        assert len(said) == 2 and "capital of" in said[0] and "sky" in said[1], said
        assert all(bot_texts(page))
        page.screenshot(path=str(ARTIFACTS / "talk-mode.png"), full_page=True)


def test_speaking_over_the_answer_stops_it_and_is_answered(playwright, url, piper, tmp_path):
    microphone = mic_file(piper, tmp_path, "barge.wav", 0.5, "Tell me a long story about a dragon.", 4.0,
                          "Actually, what is two plus two?", 30.0)
    with open_page(playwright, url, microphone) as page:
        page.locator("#live .live-talk").click()
        wait_for_sound(page, 1)
        page.wait_for_function("() => window.voiceStats.events.some(e => e.type === 'barge_in')", timeout=60_000)
        silenced = events(page, "silenced")
        assert silenced and silenced[-1]["why"] == "barge-in"
        wait_for_replies(page, 2)
        said = [t.lower() for t in user_texts(page)]
        assert len(said) == 2 and "dragon" in said[0] and "plus" in said[1], said
        first_reply = bot_texts(page)[0]
        assert first_reply.endswith("⏹️") or len(first_reply) < 400  # cut short


def test_a_pause_mid_sentence_does_not_end_the_turn(playwright, url, piper, tmp_path):
    microphone = mic_file(piper, tmp_path, "pause.wav", 0.5, "I would like to know the", 0.7,
                          "capital city of Spain.", 30.0)
    with open_page(playwright, url, microphone) as page:
        page.locator("#live .live-talk").click()
        wait_for_replies(page, 1)
        time.sleep(1.0)
        said = [t.lower() for t in user_texts(page)]
        assert len(said) == 1 and "know" in said[0] and "spain" in said[0], said


def test_pressing_record_during_an_answer_silences_it_at_once(playwright, url, piper, tmp_path):
    microphone = mic_file(piper, tmp_path, "quiet.wav", 30.0)
    with open_page(playwright, url, microphone) as page:
        page.locator("#message textarea").fill("Describe a sunny day at the beach in four sentences.")
        page.locator("#message textarea").press("Enter")
        page.wait_for_function("() => document.querySelector('#live .live').dataset.state === 'speaking'",
                               timeout=TURN_TIMEOUT_MS)
        page.locator("#live .live-mic").click()
        pressed, silenced = events(page, "pressed")[-1], events(page, "silenced")
        assert silenced and silenced[-1]["why"] == "record"
        assert silenced[-1]["t"] - pressed["t"] < 100  # milliseconds
        page.wait_for_function("() => document.querySelector('#live .live').dataset.state === 'recording'",
                               timeout=10_000)  # once the microphone is open
        time.sleep(1.0)
        page.locator("#live .live-mic").click()  # a recording of silence: said in words, the chat goes on
        page.wait_for_function("() => document.querySelector('#chat').innerText.includes('No speech was heard')",
                               timeout=TURN_TIMEOUT_MS)


def test_push_to_talk_is_streamed_and_answered(playwright, url, piper, tmp_path):
    microphone = mic_file(piper, tmp_path, "ptt.wav", 0.3, "What is the weather like in London today?", 30.0)
    with open_page(playwright, url, microphone) as page:
        page.locator("#live .live-mic").click()
        time.sleep(3.5)
        page.locator("#live .live-mic").click()
        wait_for_replies(page, 1)
        said = " ".join(user_texts(page)).lower()
        assert "weather" in said and "london" in said
        wait_for_sound(page, 1)
        page.screenshot(path=str(ARTIFACTS / "desktop-voice-turn.png"), full_page=True)


def test_a_denied_microphone_is_said_and_typing_still_works(playwright, url):
    with open_page(playwright, url, None, allow_microphone=False) as page:
        page.locator("#live .live-talk").click()
        page.wait_for_function("() => !document.querySelector('#live .live-notice').hidden", timeout=10_000)
        assert "microphone" in page.locator("#live .live-notice").inner_text().lower()
        page.locator("#message textarea").fill("Say hi.")
        page.locator("#message textarea").press("Enter")
        wait_for_replies(page, 1)


def test_silence_in_talk_mode_starts_no_turn(playwright, url, tmp_path):
    rng = np.random.default_rng(0)
    hiss = write_wav(tmp_path / "hiss.wav", MIC_RATE, (rng.standard_normal(20 * MIC_RATE) * 0.003).astype(np.float32))
    with open_page(playwright, url, hiss) as page:
        page.locator("#live .live-talk").click()
        time.sleep(15)
        assert user_texts(page) == [] and not events(page, "utterance")
        assert page.evaluate("() => document.querySelector('#live .live').dataset.state") == "listening"


def test_closing_the_tab_mid_conversation_stops_its_turn_and_its_microphone(playwright, url, piper, tmp_path, caplog):
    import logging

    caplog.set_level(logging.INFO)
    microphone = mic_file(piper, tmp_path, "story.wav", 0.5, "Tell me a long story about a lighthouse keeper.", 40.0)
    with open_page(playwright, url, microphone) as page:
        page.locator("#live .live-talk").click()
        wait_for_sound(page, 1)  # the answer is being spoken, and the microphone is still streaming
        page.context.close()
        closed_at = time.monotonic()
        while time.monotonic() < closed_at + 15 and not any("microphone link closed" in r.getMessage()
                                                            for r in caplog.records):
            time.sleep(0.2)
        assert any("microphone link closed" in r.getMessage() for r in caplog.records)
        time.sleep(1)
        assert not [t.name for t in threading.enumerate() if t.name in ("speech-worker", "llm-generate")]
