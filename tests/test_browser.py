"""End-to-end in a real browser: headless Chromium (Debian's) driven by Playwright, a simulated microphone.

A missing browser is a failure, not a skip: `scripts/setup.sh --test` installs it. Screenshots go to
test-artifacts/.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
import time
from pathlib import Path

import pytest

from tests.media import resample, speak, write_wav
from tests.test_app_http import running_app

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required", "--use-fake-ui-for-media-stream",
         "--use-fake-device-for-media-stream"]
QUESTION = "What is the weather like in London today?"
TURN_TIMEOUT_MS = 120_000


@pytest.fixture(scope="module")
def question_wav(piper, tmp_path_factory) -> Path:
    """The question as a 48 kHz mono 16-bit WAV: what Chromium's fake microphone plays."""
    rate, samples = speak(piper, QUESTION)
    return write_wav(tmp_path_factory.mktemp("mic") / "question.wav", 48000, resample(rate, samples, 48000))


@contextlib.contextmanager
def playwright_with_chromium():
    """Playwright, once Debian's Chromium is known to be there (a missing browser fails, never skips)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), "Chromium is missing: run scripts/setup.sh --test (apt-get install chromium)"
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="module")
def chromium(question_wav):
    with playwright_with_chromium() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM,
                                             args=[*FLAGS, f"--use-file-for-fake-audio-capture={question_wav}"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def url(cfg, engines):
    with running_app(cfg, engines) as (demo, _assistant):
        yield demo.local_url


@pytest.fixture()
def page(chromium, url):
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, permissions=["microphone"])
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#message textarea", timeout=60_000)
    yield page
    context.close()


def bot_texts(page) -> list[str]:
    return page.eval_on_selector_all("#chat .message-row.bot-row", "rows => rows.map(r => r.innerText.trim())")


def user_texts(page) -> list[str]:
    return page.eval_on_selector_all("#chat .message-row.user-row", "rows => rows.map(r => r.innerText.trim())")


def open_settings(page) -> None:
    """Unfold the settings (voice, language, upload, clear, download), folded away by default."""
    if not page.locator("#clear").is_visible():
        page.locator("#settings").get_by_text("Settings", exact=True).first.click()
        page.wait_for_selector("#clear", state="visible", timeout=10_000)


def send_in_new_page(chromium, url: str, text: str):
    """A fresh page of the app at `url` with `text` sent from its message box; (context, page)."""
    context = chromium.new_context()
    page = context.new_page()
    page.goto(url)
    page.wait_for_selector("#message textarea", timeout=60_000)
    page.locator("#message textarea").fill(text)
    page.locator("#message textarea").press("Enter")
    return context, page


def wait_for_reply(page) -> None:
    """Until the turn is over: Send is back."""
    page.wait_for_function("() => document.querySelectorAll('#chat .message-row.bot-row').length > 0",
                           timeout=TURN_TIMEOUT_MS)
    page.wait_for_selector("#send:not([disabled])", timeout=TURN_TIMEOUT_MS)
    page.wait_for_selector("#stop", state="hidden", timeout=TURN_TIMEOUT_MS)


def test_type_and_press_enter_streams_a_reply_that_is_spoken(page):
    box = page.locator("#message textarea")
    box.fill("first line")
    box.press("Shift+Enter")
    box.type("second line")
    assert box.input_value() == "first line\nsecond line"  # Shift+Enter: a new line, nothing sent
    assert user_texts(page) == []
    box.fill("Tell me something nice about the sea.")
    box.press("Enter")
    page.wait_for_selector("#stop", state="visible", timeout=10_000)  # Stop replaces Send while it streams
    assert not page.locator("#send").is_visible()
    page.wait_for_function("() => document.querySelector('#progress').innerText.trim().length > 0", timeout=30_000)
    wait_for_reply(page)
    assert user_texts(page)[0].startswith("Tell me something nice about the sea.")
    assert bot_texts(page) and bot_texts(page)[-1].strip()
    # The spoken answer really plays: the page's Web Audio player started its first piece.
    page.wait_for_function("() => (window.voiceStats?.turns || []).some(t => t.first_sound !== null)",
                           timeout=60_000)
    page.screenshot(path=str(ARTIFACTS / "desktop-text-turn.png"), full_page=True)


def test_record_with_the_microphone(page):
    page.locator("#live .live-mic").click()  # the microphone streams to the server while it records
    time.sleep(4.0)  # the fake microphone plays the question file
    page.locator("#live .live-mic").click()
    page.wait_for_function("() => document.querySelectorAll('#chat .message-row.user-row').length > 0",
                           timeout=TURN_TIMEOUT_MS)
    wait_for_reply(page)
    transcript = " ".join(user_texts(page)).lower()
    assert "weather" in transcript and "london" in transcript
    page.screenshot(path=str(ARTIFACTS / "desktop-voice-turn.png"), full_page=True)


def test_upload_an_audio_file(page, question_wav):
    open_settings(page)
    page.locator("#voice-in input[type=file]").set_input_files(str(question_wav))  # the drop zone's file input
    page.wait_for_function("() => document.querySelectorAll('#chat .message-row.user-row').length > 0",
                           timeout=TURN_TIMEOUT_MS)
    wait_for_reply(page)
    assert "weather" in " ".join(user_texts(page)).lower()


def test_clear_empties_and_the_conversation_survives_a_reload_and_downloads(page):
    page.locator("#message textarea").fill("Hello!")
    page.locator("#send").click()
    wait_for_reply(page)
    open_settings(page)
    page.locator("#clear").click()
    page.wait_for_function("() => document.querySelectorAll('#chat .message-row').length === 0", timeout=10_000)
    page.locator("#message textarea").fill("My name is Ada. Say hi.")
    page.locator("#message textarea").press("Enter")
    wait_for_reply(page)
    replies = bot_texts(page)
    page.reload()
    page.wait_for_selector("#message textarea", timeout=60_000)
    page.wait_for_function("() => document.querySelectorAll('#chat .message-row.user-row').length === 1",
                           timeout=30_000)
    assert user_texts(page)[0].startswith("My name is Ada.")  # kept by this browser: Clear had dropped "Hello!"
    restored = bot_texts(page)[0]  # the text only: a restored reply's audio is not kept
    assert restored and replies[0].startswith(restored[:40])  # before the reload the player's clock follows it

    open_settings(page)
    page.locator("#download").click()
    page.wait_for_selector("#downloads a", timeout=30_000)
    links = page.eval_on_selector_all("#downloads a", "links => links.map(a => a.href)")
    assert any(link.endswith(".json") for link in links) and any(link.endswith(".md") for link in links)
    markdown = page.request.get(next(link for link in links if link.endswith(".md"))).text()
    assert "**You**: My name is Ada. Say hi." in markdown and "**Assistant**:" in markdown

    page.locator("#clear").click()
    page.wait_for_function("() => document.querySelectorAll('#chat .message-row').length === 0", timeout=10_000)
    page.reload()
    page.wait_for_selector("#message textarea", timeout=60_000)
    time.sleep(2)  # a restored conversation would be back by now
    assert user_texts(page) == []  # cleared stays cleared


def test_what_the_user_types_shows_as_typed_and_markup_never_runs(page):
    typed = ("1. <script>window.__ran = 1</script><img src=x onerror=\"window.__ran = 2\"> <b>bold</b> **stars** "
             "`code` [link](javascript:alert(1)) & $(rm -rf ~) C:\\path # not a heading")
    page.locator("#message textarea").fill(typed)
    page.locator("#message textarea").press("Enter")
    wait_for_reply(page)
    assert user_texts(page)[0] == typed  # text, not HTML or Markdown
    assert page.evaluate("window.__ran") is None  # nothing in it ran
    assert page.eval_on_selector_all("#chat .message-row.user-row img, #chat .message-row.user-row a, "
                                     "#chat .message-row.user-row b, #chat .message-row.user-row code",
                                     "elements => elements.length") == 0
    own_copy = page.locator("#chat .message-buttons-right button[aria-label='Copy message']")
    assert own_copy.count() == 1 and not own_copy.is_visible()  # it would copy the escapes: hidden by the CSS


def test_retry_answers_again_and_the_chats_own_clear_empties_for_good(page):
    page.locator("#message textarea").fill("Name a fruit.")
    page.locator("#message textarea").press("Enter")
    wait_for_reply(page)
    page.locator("#chat button[aria-label='Retry']").click()
    page.wait_for_selector("#stop", state="visible", timeout=10_000)  # a new turn runs for the same message
    wait_for_reply(page)
    assert user_texts(page) == ["Name a fruit."] and len(bot_texts(page)) == 1  # replaced, not added

    page.locator("#chat button[aria-label='Clear']").click()  # the chat panel's own clear icon
    page.wait_for_function("() => document.querySelectorAll('#chat .message-row').length === 0", timeout=10_000)
    page.reload()
    page.wait_for_selector("#message textarea", timeout=60_000)
    time.sleep(2)  # a restored conversation would be back by now
    assert user_texts(page) == []


def test_closing_the_tab_mid_reply_stops_generation_and_speech(chromium, cfg, engines, caplog):
    from chatbot.engines import Engines, build_generator

    caplog.set_level(logging.INFO)
    long_llm = dataclasses.replace(cfg.llm, max_new_tokens=400)  # a reply that is still running when we leave
    generator, _ = build_generator(long_llm, "cpu", cfg.cache_path)
    long_engines = Engines(engines.device, engines.transcriber, generator, engines.speaker)
    with running_app(dataclasses.replace(cfg, llm=long_llm), long_engines) as (demo, assistant):
        context, page = send_in_new_page(chromium, demo.local_url, "Tell me a long story about a dragon and a knight.")
        page.wait_for_function("() => document.querySelector('#progress').innerText.includes('Thinking')",
                               timeout=60_000)
        page.wait_for_function("() => [...document.querySelectorAll('#chat .message-row.bot-row')]"
                               ".some(r => r.innerText.trim().length > 20)", timeout=60_000)
        context.close()  # the user closes the tab in the middle of the answer
        closed_at = time.monotonic()
        ended = ("turn stopped", "turn abandoned")  # Stop seen by the turn, or its request closed by Gradio
        while time.monotonic() < closed_at + 15 and not any(e in r.getMessage() for r in caplog.records for e in ended):
            time.sleep(0.2)
        messages = [r.getMessage() for r in caplog.records]
        assert any("browser tab closed" in m for m in messages), messages[-10:]
        assert any(e in m for m in messages for e in ended), messages[-10:]
        assert time.monotonic() - closed_at < 10
        time.sleep(1)
        assert not [t.name for t in threading.enumerate() if t.name in ("speech-worker", "llm-generate")]
        assert assistant.store.files() == []  # a stopped reply leaves no audio file behind


def test_login_page_refuses_a_wrong_password(chromium, cfg, engines):
    from chatbot.login_guard import LoginPolicy

    with running_app(cfg, engines, auth_user="ada", auth_password="correct horse") as (demo, _assistant):
        context = chromium.new_context()
        try:
            page = context.new_page()
            page.goto(demo.local_url)
            page.wait_for_selector("input[type=password]", timeout=30_000)
            assert page.locator("#message textarea").count() == 0
            assert page.get_by_text(LoginPolicy.from_config(cfg.server).describe()).count() == 1  # the lock-out rule
            page.locator("input[type=text]").first.fill("ada")
            page.locator("input[type=password]").fill("wrong")
            page.get_by_role("button", name="Login").click()
            page.wait_for_selector("text=Incorrect Credentials", timeout=15_000)
            assert page.locator("#message textarea").count() == 0
            page.locator("input[type=text]").first.fill("ada")  # the form is emptied after a failure
            page.locator("input[type=password]").fill("correct horse")
            page.get_by_role("button", name="Login").click()
            try:
                page.wait_for_selector("#message textarea", timeout=30_000)
            finally:
                page.screenshot(path=str(ARTIFACTS / "login.png"), full_page=True)
        finally:
            context.close()


def test_phone_viewport_every_control_reachable_without_overlap(chromium, url):
    context = chromium.new_context(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    page = context.new_page()
    try:
        page.goto(url)
        page.wait_for_selector("#message textarea", timeout=60_000)
        boxes = {}
        open_settings(page)
        for selector in ("#message textarea", "#send", "#voice-in", "#live", "#clear", "#chat"):
            element = page.locator(selector).first
            element.scroll_into_view_if_needed()
            box = page.locator(selector).first.bounding_box()
            assert box and box["width"] > 0 and box["height"] > 0, selector
            assert box["x"] >= 0 and box["x"] + box["width"] <= 390 + 1, f"{selector} overflows the screen"
            boxes[selector] = page.evaluate(
                "s => { const r = document.querySelector(s).getBoundingClientRect();"
                " return [r.left, r.top + window.scrollY, r.right, r.bottom + window.scrollY]; }", selector)
        names = list(boxes)
        for i, a in enumerate(names):
            for b in names[i + 1:]:
                ax0, ay0, ax1, ay1 = boxes[a]
                bx0, by0, bx1, by1 = boxes[b]
                overlap = min(ax1, bx1) - max(ax0, bx0) > 1 and min(ay1, by1) - max(ay0, by0) > 1
                assert not overlap, f"{a} overlaps {b}"
        page.screenshot(path=str(ARTIFACTS / "phone.png"), full_page=True)
    finally:
        context.close()
