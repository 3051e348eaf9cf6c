"""The page's live voice bar: a gr.HTML component running chatbot/web/live.js (the Web Audio player, the
microphone, talk mode) and the Python functions it calls. It only wires the page to `LiveLink`s."""

from __future__ import annotations

import json
import logging
import weakref
from pathlib import Path
from typing import Callable

import gradio as gr

from chatbot.live import LiveInputError, LiveLink

log = logging.getLogger(__name__)

_WEB = Path(__file__).resolve().parent / "web"
MIC_RATE = 16_000  # Hz: the page's microphone context runs at Whisper's rate, so nothing is resampled here
MIC_BLOCK = 1024  # samples per microphone callback: 64 ms at 16 kHz, sent as it comes (barge-in waits for it)
START_DELAY_S = 0.05  # the first piece starts this long after it arrives: time to decode before it plays
NOTICE_S = 8  # how long a notice stays in the bar
HOLD_MAX_S = 1.0  # an answer held for what may be the user speaking goes on after this, if the server said nothing
# For measurements only (window.voiceStats): a sample this loud is sound, and sound ends after this long below it.
LEVEL = 0.02  # of full scale
LEVEL_GAP_MS = 250
# Buttons outside the bar that silence the answer that is playing (a new message, Stop, Clear, Retry).
SILENCING = "#send, #stop, #clear, #chat button[aria-label='Retry'], #chat button[aria-label='Clear']"
WORDS = {"listening": "Listening…", "hearing": "Hearing you…", "thinking": "Thinking…", "speaking": "Speaking…",
         "recording": "Recording… press the microphone again to send", "talk": "Talk", "end_talk": "End talk"}

# Two buttons in the message row; what is happening shows under the row, taking no room in it.
TEMPLATE = """<div class="live" data-state="">
  <button class="live-mic" type="button" title="Record: press, speak, press again to send"
          aria-label="Record" aria-pressed="false">🎙️</button>
  <button class="live-talk" type="button" title="Hands-free: talk, pause, it answers, then listens again">Talk</button>
  <div class="live-status">
    <span class="live-cue" aria-hidden="true"></span>
    <span class="live-state" role="status" aria-live="polite"></span>
    <button class="live-stop" type="button" hidden>Stop speaking</button>
    <button class="live-unlock" type="button" hidden>🔇 Click to turn on sound</button>
  </div>
  <div class="live-notice" role="alert" hidden></div>
</div>"""


def _script() -> str:
    config = {"mic_rate": MIC_RATE, "mic_block": MIC_BLOCK, "start_delay_s": START_DELAY_S, "notice_s": NOTICE_S,
              "hold_max_s": HOLD_MAX_S,
              "silencing": SILENCING, "words": WORDS,
              "level": LEVEL, "level_gap_ms": LEVEL_GAP_MS}
    return f"const config = {json.dumps(config)};\n" + (_WEB / "live.js").read_text()


class LiveLinks:
    """The links of the tabs now open, by key; each is also held by its session, so it lives as long as it."""

    def __init__(self, make_link: Callable[..., LiveLink]):
        self._make_link = make_link
        self._links: weakref.WeakValueDictionary[str, LiveLink] = weakref.WeakValueDictionary()

    def link_of(self, session) -> LiveLink:
        if session.live is None:
            session.live = self._make_link(session)
            self._links[session.live.key] = session.live
        return session.live

    def get(self, key) -> LiveLink | None:
        return self._links.get(key) if isinstance(key, str) else None

    def hear(self, message) -> dict:
        """The page's microphone audio (server function `hear`)."""
        link = self.get(message.get("key")) if isinstance(message, dict) else None
        if link is None:
            return {"state": "", "closed": True, "notice": "This page lost its connection; reload it to speak."}
        try:
            return link.hear(message)
        except LiveInputError as e:
            log.warning("microphone audio refused: %s", e)
            return {"state": "", "closed": True, "notice": "The microphone audio could not be used; please try again."}

    def speech(self, message) -> list[dict]:
        """The pieces of a turn's speech the page has not played yet (server function `speech`)."""
        link = self.get(message.get("key")) if isinstance(message, dict) else None
        if link is None:
            return []
        return link.pieces_since(message.get("turn"), message.get("since"))


def live_bar(links: LiveLinks) -> gr.HTML:
    def hear(message):
        return links.hear(message)

    def speech(message):
        return links.speech(message)

    return gr.HTML("", html_template=TEMPLATE, css_template=(_WEB / "live.css").read_text(), js_on_load=_script(),
                   server_functions=[hear, speech], elem_id="live")
