"""The page as a first-time user sees it, in Chromium at 1280x900 and at 390x844 (a phone): the primary controls
on the first screen, one audio control per spoken answer, a speaking indicator that lasts exactly as long as the
sound, and a plain-words notice when the online voice fails. Screenshots go to docs/ (the README shows them).
"""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path

import pytest

from tests.test_app_http import free_port, running_app
from tests.test_browser import (CHROMIUM, FLAGS, TURN_TIMEOUT_MS, open_settings, playwright_with_chromium,
                                wait_for_reply)

pytestmark = pytest.mark.slow

DOCS = Path(__file__).resolve().parent.parent / "docs"
SIZES = {"desktop": {"width": 1280, "height": 900}, "phone": {"width": 390, "height": 844}}
PRIMARY = ("#message textarea", "#live .live-mic", "#live .live-talk", "#send")
TECHNICAL = re.compile(r"Error|Exception|speech\.platform|bing\.com|Traceback|ClientConnector|:443")


@pytest.fixture(scope="module")
def url(cfg, engines):
    """The app whose online voice fails at once, as it would with no route to Microsoft: its proxy is a port of
    127.0.0.1 where nothing listens (the real edge-tts request is made)."""
    from chatbot.engines import build_speaker

    dead = dataclasses.replace(cfg.tts, proxy=f"http://127.0.0.1:{free_port()}")
    with running_app(cfg, dataclasses.replace(engines, speaker=build_speaker(dead))) as (demo, _assistant):
        yield demo.local_url


@pytest.fixture(scope="module")
def chromium():
    DOCS.mkdir(exist_ok=True)
    with playwright_with_chromium() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def open_at(chromium, url, size: str):
    phone = size == "phone"
    context = chromium.new_context(viewport=SIZES[size], is_mobile=phone, has_touch=phone,
                                   permissions=["microphone"])
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#message textarea", timeout=60_000)
    page.wait_for_function("() => document.querySelector('#live .live-talk') !== null", timeout=30_000)
    return context, page


def on_first_screen(page, selector: str) -> bool:
    return page.evaluate("""s => { const r = document.querySelector(s).getBoundingClientRect();
        return r.width > 0 && r.height > 0 && r.left >= 0 && r.top >= 0 && r.right <= innerWidth + 1
               && r.bottom <= innerHeight + 1 && window.scrollY === 0; }""", selector)


@pytest.mark.parametrize("size", SIZES)
def test_a_first_time_user_finds_everything_and_hears_one_answer_once(chromium, url, size):
    context, page = open_at(chromium, url, size)
    try:
        page.screenshot(path=str(DOCS / f"{size}-empty.png"))
        for selector in PRIMARY:
            assert on_first_screen(page, selector), f"{selector} is not on the first screen at {size}"
        assert not page.locator("#clear").is_visible()  # secondary controls are folded away

        page.locator("#message textarea").fill("Tell me something nice about the sea.")
        page.locator("#message textarea").press("Enter")
        page.wait_for_function("() => document.querySelector('#live .live').dataset.state === 'speaking'",
                               timeout=TURN_TIMEOUT_MS)
        assert page.locator("#live .live-state").inner_text().strip() == "Speaking…"
        assert page.locator("#live .live-stop").is_visible()
        assert on_first_screen(page, "#live .live-stop")
        page.screenshot(path=str(DOCS / f"{size}-speaking.png"))

        wait_for_reply(page)
        page.wait_for_function("() => document.querySelector('#live .live').dataset.state !== 'speaking'",
                               timeout=TURN_TIMEOUT_MS)
        ended_ms_ago = page.evaluate("() => performance.now() - window.voiceStats.turns.at(-1).ended")
        assert ended_ms_ago < 500  # the indicator went with the sound, not before or long after it
        assert not page.locator("#live .live-stop").is_visible()
        players = ".minimal-audio-player, audio"  # Gradio's player in a chat message, any plain <audio>
        audio_per_answer = page.eval_on_selector_all(
            "#chat .message-row.bot-row", f"rows => rows.map(r => r.querySelectorAll('{players}').length)")
        assert audio_per_answer == [1], audio_per_answer  # one audio control, in the answer's message
        assert page.evaluate(f"() => [...document.querySelectorAll('{players}')].filter(a => !a.closest('#chat'))"
                             ".filter(a => a.getBoundingClientRect().height > 0).length") == 0  # no other player

        notice = page.locator("#notice").inner_text().strip()
        assert "online voice can't be reached" in notice and "offline voice" in notice, notice
        assert not TECHNICAL.search(notice), notice
        assert not TECHNICAL.search(page.locator("body").inner_text())  # nowhere on the page either
        assert page.locator(".toast-wrap .toast-body").count() == 0  # nothing covers the chat
        open_settings(page)
        assert "(offline)" in page.locator("#voice input").input_value()  # the voice menu says who speaks
        page.screenshot(path=str(DOCS / f"{size}-settings.png"), full_page=True)
    finally:
        context.close()


def test_languages_are_offered_by_name_and_the_rate_is_centred_on_normal(chromium, url):
    context, page = open_at(chromium, url, "desktop")
    try:
        open_settings(page)
        assert page.locator("#language input").input_value() in ("English", "Auto-detect")
        low, high, value = page.eval_on_selector("#rate input[type=range]",
                                                 "i => [Number(i.min), Number(i.max), Number(i.value)]")
        assert low == -high and value == 0  # 0, normal, sits in the middle
        models = page.locator("#models").inner_text()
        # "Offline models: ..." once the online voice has failed in this app, "Models: ..." before that.
        assert re.match(r"(Offline models|Models): Qwen2\.5-Coder-1\.5B-Instruct \(chat\), Whisper tiny\.en "
                        r"\(listening\)", models), models
        assert "llama.cpp" not in page.locator("#models p").first.inner_text()  # details only behind a click
        page.locator("#models summary").click()
        assert "Qwen2.5-Coder-1.5B-Instruct: licensed Apache-2.0" in page.locator("#models").inner_text()
    finally:
        context.close()
