"""In the browser (issue 14): what a user waits for, measured in the page itself.

    HF_HUB_OFFLINE=1 .venv/bin/python bench/browser.py [--questions 10]

The app runs in this process (tests/test_app_http.py's `running_app`) on the embedded models, with the default
config except: device cpu, `llm.temperature 0` (greedy), `llm.max_new_tokens 96` (bounded runs), and the
weather service pointed at 127.0.0.1:9 (nothing leaves the machine). Each run launches headless Chromium with a
fake microphone file (48 kHz WAV: silence, the question, silence) and opens a fresh page, so every run is a new
session. Times are the page's own (`window.voiceStats`, chatbot/web/live.js, `performance.now()` ms):

  talk     click Talk; speech end (the last `mic_sound_end.at` before the `utterance` that followed the question)
           -> `first_sound.at` of the answer; the end-of-turn wait alone is speech end -> `utterance.t`.
  ptt      click the mic; once the page logged the question's `mic_sound_end`, 0.3 s more, click again;
           the second press (`pressed.t`) -> `first_sound.at`.
  text     fill the box, press Enter: a keydown listener (capture phase, installed by this script) logs
           `performance.now()` as the key reaches the page -> `first_sound.at`. After the answer finished playing
           (its `ended` set, Send back, stable for 1 s) the gaps between its pieces (`turn.gaps`: silence inserted
           because the next piece came late; never before the first piece), checked against how long it took to
           play (first sound -> last piece ended) less the answer's audio length.
  barge-in talk mode, "Tell me a long story ...", 4 s of silence (the answer is playing), then a question: its
           `mic_sound_start.at` -> the answer's sound stops: `held` `.t` (the page pauses the answer the moment
           the server hears what may be speech, `talk.hold_s`) when a `silenced` (why "barge-in") followed it,
           else that `silenced` `.t`.
  false cut-off  (talk mode; half the questions carry a 0.7 s pause mid-sentence, after a function word) an
           `utterance` logged before the question's sound ended, or two user messages in the chat.

Questions are spoken by Piper (joe) and, for every second one, espeak-ng when it is installed. Before the app
starts, bench/latency.py's `streaming_turn` runs in process on the same talk-mode speech (as WAV files, one warm-up
turn first), so browser - in-process is the cost of the page, the transport and the end of turn. The last line is
    RESULT browser_talk_ttfa_median_s=X browser_ptt_ttfa_median_s=Y browser_text_ttfa_median_s=Z
           barge_in_stop_median_s=W false_cutoffs=N/M   (N cut-offs among the M questions spoken with a pause)
"""

from __future__ import annotations

import argparse
import logging
import os
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

from bench.end_of_turn import QUESTIONS  # noqa: E402  (`|`: where the paused clips stop for a moment)
from bench.harness import percentile  # noqa: E402

OVERRIDES = {"device": "cpu", "llm.model": "embedded", "stt.model": "embedded", "tts.piper_model": "embedded",
             "llm.temperature": "0",  # greedy: the same question gets the same answer in every mode
             "llm.max_new_tokens": "96",  # a few sentences: bounds each run (the default is 256)
             # as tests/conftest.py: weather questions get "can't reach the service" at once, nothing goes out
             "tools.weather_geocoding_url": "http://127.0.0.1:9/v1/search",
             "tools.weather_forecast_url": "http://127.0.0.1:9/v1/forecast"}
MIC_RATE = 48_000  # Hz: what Chromium's fake microphone file is written at
LEAD_S = 0.5  # silence before the first question in each microphone file
TAIL_S = 40.0  # silence after the last: longer than any run (the fake microphone loops its file)
PAUSE_S = 0.7  # the pause in the middle of the paused questions
PTT_AFTER_S = 0.3  # push-to-talk: the second press comes this long after the page logged the end of the sound
STORY = "Tell me a long story about a dragon and a knight."
BARGE_GAP_S = 4.0  # silence after the story request: its answer is playing when the next question starts
SPAN_TOLERANCE_S = 0.3  # the page's level detector may miss this much of a question's quiet ends
PAGE_TIMEOUT_MS = 60_000  # the page loads
TURN_TIMEOUT_MS = 90_000  # an utterance, a first sound, Send back
PLAYED_TIMEOUT_S = 120.0  # a text answer finishes playing (96 tokens are ~30 s of speech)
PLAYED_STABLE_S = 1.0  # ... and nothing plays for this long after it ended (a late piece would play again)
QUIET_TIMEOUT_S = 30.0  # between runs, the server's turns end (a closed tab is noticed within ~2 s)
APP_LOG = Path(tempfile.gettempdir()) / "bench-browser-app.log"


# -- speech and microphone files ---------------------------------------------------------------------------------

@dataclass(frozen=True)
class Spoken:
    text: str  # as said, without the pause mark
    voice: str  # "piper" | "espeak-ng"
    paused: bool  # PAUSE_S of silence mid-sentence
    rate: int
    samples: np.ndarray  # the speech alone, float32 mono

    @property
    def duration_s(self) -> float:
        return len(self.samples) / self.rate

    @property
    def span_s(self) -> float:
        """First to last loud 10 ms: what the page's level detector should see of it."""
        from tests.media import speech_bounds

        start, end = speech_bounds(self.rate, self.samples)
        return end - start


def say(piper_voice, voice: str, marked: str, paused: bool) -> Spoken:
    from tests.media import PAUSE_MARK, espeak, piper_with_pause

    text = marked if paused else " ".join(marked.replace(PAUSE_MARK, " ").split())
    rate, samples = piper_with_pause(piper_voice, text, PAUSE_S) if voice == "piper" else espeak(text, PAUSE_S)
    return Spoken(" ".join(marked.replace(PAUSE_MARK, " ").split()), voice, paused, rate, samples)


def make_questions(count: int) -> tuple[list[Spoken], list[Spoken], Spoken]:
    """(talk-mode questions, the same in one breath for push-to-talk and text, the story request)."""
    from tests.media import aligned_piper, espeak_available

    piper_voice = aligned_piper()
    voices = ["piper", "espeak-ng"] if espeak_available() else ["piper"]
    if len(voices) == 1:
        print("note: espeak-ng is not installed; all questions are spoken by Piper")
    talk, plain = [], []
    for i in range(count):
        voice, marked = voices[i % len(voices)], QUESTIONS[i % len(QUESTIONS)]
        talk.append(say(piper_voice, voice, marked, paused=i % 4 in (1, 2)))  # half paused, across both voices
        plain.append(say(piper_voice, voice, marked, paused=False))
    return talk, plain, say(piper_voice, "piper", STORY, paused=False)


def mic_wav(path: Path, *parts: float | Spoken) -> Path:
    """A fake-microphone WAV: each part is seconds of silence or something spoken (as tests/test_talk.py's
    `mic_file`, which takes only Piper's sentences)."""
    from tests.media import resample, write_wav

    pieces = [np.zeros(round(p * MIC_RATE), np.float32) if isinstance(p, (int, float))
              else resample(p.rate, p.samples, MIC_RATE) for p in parts]
    return write_wav(path, MIC_RATE, np.concatenate(pieces))


# -- the server side: each turn's timings, and whether one is running ----------------------------------------------

@dataclass
class ServerTurns:
    """Wraps the assistant's turns (not the app's code): records each turn's last timings, for spoken turns also
    how long after the utterance was complete (`heard_at`) the turn started, and counts the turns running."""

    finished: list[dict] = field(default_factory=list)
    running: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _recorded(self, updates: Iterator, timings: dict) -> Iterator:
        with self._lock:
            self.running += 1
        try:
            for update in updates:
                timings.update(update.timings)
                yield update
        finally:
            with self._lock:
                self.running -= 1
                self.finished.append(timings)

    def install(self, assistant) -> None:
        spoken_turn, text_turn = assistant.spoken_turn, assistant.text_turn

        def spoken(session, samples, heard_at, *rest, **kwargs):
            timings = {"turn_start_s": time.perf_counter() - heard_at}
            return self._recorded(spoken_turn(session, samples, heard_at, *rest, **kwargs), timings)

        def text(*args, **kwargs):
            return self._recorded(text_turn(*args, **kwargs), {})

        assistant.spoken_turn, assistant.text_turn = spoken, text

    def wait_quiet(self, timeout_s: float = QUIET_TIMEOUT_S) -> bool:
        deadline = time.monotonic() + timeout_s
        while self.running and time.monotonic() < deadline:
            time.sleep(0.1)
        return self.running == 0

    def last(self) -> dict:
        return self.finished[-1] if self.finished else {}


# -- the page ------------------------------------------------------------------------------------------------------

class RunFailed(RuntimeError):
    """A run that gave no figure; the message says what the page did not do."""


@dataclass
class PageLog:
    """Console errors and uncaught exceptions of the pages, each with the run it came from."""

    run: str = ""  # the run now open, e.g. "talk 3"
    closing: bool = False  # the run is over and its browser is being closed
    errors: list[str] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.errors.append(f"[{self.run}{', at close' if self.closing else ''}] {text}")


def open_page(playwright, url: str, microphone: Path | None, page_log: PageLog):
    from tests.test_browser import CHROMIUM, FLAGS

    flags = [*FLAGS, f"--use-file-for-fake-audio-capture={microphone}"] if microphone else FLAGS
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=flags)
    context = browser.new_context(viewport={"width": 1280, "height": 900}, permissions=["microphone"])
    page = context.new_page()
    page.on("console", lambda message: message.type == "error" and page_log.add(message.text))
    page.on("pageerror", lambda error: page_log.add(f"uncaught: {error} ({_where(error)})"))
    page.goto(url)
    page.wait_for_selector("#message textarea", timeout=PAGE_TIMEOUT_MS)
    page.wait_for_function("() => document.querySelector('#live .live-talk') !== null", timeout=PAGE_TIMEOUT_MS)
    return browser, page


def _where(error) -> str:
    """The innermost frame of a page error's stack."""
    frames = [line.strip() for line in (getattr(error, "stack", "") or "").splitlines() if line.strip().startswith("at ")]
    return frames[0] if frames else "no stack"


def events(page, kind: str | None = None) -> list[dict]:
    stats = page.evaluate("() => window.voiceStats || {events: []}")
    return [e for e in stats["events"] if kind is None or e["type"] == kind]


def turns(page) -> list[dict]:
    return page.evaluate("() => (window.voiceStats || {turns: []}).turns")


def wait_sound_over(page, span_s: float, timeout_s: float) -> bool:
    """Until the page logged a `mic_sound_end` at least `span_s` (less the tolerance) after the first sound started:
    the question's end, not a gap between its words. False if that never came (the last end is used then)."""
    from playwright.sync_api import TimeoutError as PageTimeout

    try:
        page.wait_for_function(
            "span => { const ev = window.voiceStats.events; const s = ev.find(e => e.type === 'mic_sound_start');"
            " return !!s && ev.some(e => e.type === 'mic_sound_end' && e.at - s.at >= span); }",
            arg=(span_s - SPAN_TOLERANCE_S) * 1000, timeout=timeout_s * 1000)
    except PageTimeout:
        return False
    return True


def first_after(page, kind: str, stamp: str, after_ms: float, timeout_ms: float = TURN_TIMEOUT_MS) -> dict:
    """The first event of `kind` whose `stamp` ("t" or "at") is later than `after_ms`, waited for."""
    from playwright.sync_api import TimeoutError as PageTimeout

    try:
        page.wait_for_function(
            "([kind, stamp, after]) => window.voiceStats.events.some(e => e.type === kind && e[stamp] > after)",
            arg=[kind, stamp, after_ms], timeout=timeout_ms)
    except PageTimeout as e:
        raise RunFailed(f"no {kind} within {timeout_ms / 1000:.0f} s") from e
    return min((e for e in events(page, kind) if e[stamp] > after_ms), key=lambda e: e[stamp])


def wait_turn_done(page, server: ServerTurns) -> None:
    page.wait_for_selector("#send:not([disabled])", timeout=TURN_TIMEOUT_MS)
    if not server.wait_quiet():
        raise RunFailed(f"the server's turn still ran {QUIET_TIMEOUT_S:.0f} s after Send came back")


def user_messages(page) -> int:
    return page.eval_on_selector_all("#chat .message-row.user-row", "rows => rows.length")


def wait_played(page) -> bool:
    """Until the last answer finished playing: its `ended` set, nothing playing, Send back, for PLAYED_STABLE_S."""
    finished = ("() => { const t = (window.voiceStats.turns || []).at(-1);"
                " return !!t && t.ended !== null && document.querySelector('#live .live').dataset.state !== 'speaking'"
                " && !document.querySelector('#send').disabled; }")
    deadline, since = time.monotonic() + PLAYED_TIMEOUT_S, None
    while time.monotonic() < deadline:
        if page.evaluate(finished):
            since = since or time.monotonic()
            if time.monotonic() - since >= PLAYED_STABLE_S:
                return True
        else:
            since = None
        time.sleep(0.1)
    return False


# -- one run of each kind ------------------------------------------------------------------------------------------

@dataclass
class Row:
    kind: str
    question: Spoken
    figure_s: float | None = None  # the run's headline figure (see the module's docstring)
    stages: dict[str, float] = field(default_factory=dict)  # seconds, where the time went
    cutoff: bool = False
    note: str = ""


def talk_run(page, question: Spoken, server: ServerTurns) -> Row:
    row = Row("talk", question)
    page.locator("#live .live-talk").click()
    if not wait_sound_over(page, question.span_s, LEAD_S + question.duration_s + 6):
        row.note = "the page's level detector saw less than the question's length; "
    ends = events(page, "mic_sound_end")
    if not ends:
        raise RunFailed("the page heard no sound from the microphone")
    question_end = max(e["at"] for e in ends)
    utterance = first_after(page, "utterance", "t", question_end)
    speech_end = max(e["at"] for e in events(page, "mic_sound_end") if e["at"] < utterance["t"])
    sound = first_after(page, "first_sound", "at", utterance["t"])
    wait_turn_done(page, server)
    early = [e for e in events(page, "utterance") if e["t"] < question_end]
    said = user_messages(page)
    row.cutoff = bool(early) or said > 1
    if row.cutoff:
        row.note += f"{len(early)} utterance(s) before the question ended, {said} user messages; "
    row.figure_s = (sound["at"] - speech_end) / 1000
    row.note += _ready_via(page, utterance)
    row.stages = _stages((utterance["t"] - speech_end) / 1000, (sound["at"] - utterance["t"]) / 1000, server.last(),
                         _ready_s(page, utterance))
    return row


def ptt_run(page, question: Spoken, server: ServerTurns) -> Row:
    row = Row("ptt", question)
    page.locator("#live .live-mic").click()
    if not wait_sound_over(page, question.span_s, LEAD_S + question.duration_s + 6):
        row.note = "the page's level detector saw less than the question's length; "
    time.sleep(PTT_AFTER_S)
    page.locator("#live .live-mic").click()
    pressed = [e for e in events(page, "pressed") if e["what"] == "mic"]
    if len(pressed) < 2:
        raise RunFailed("the second press was not logged")
    press = pressed[-1]["t"]
    utterance = first_after(page, "utterance", "t", press)
    sound = first_after(page, "first_sound", "at", press)
    wait_turn_done(page, server)
    row.figure_s = (sound["at"] - press) / 1000
    row.note += _ready_via(page, utterance)
    row.stages = _stages((utterance["t"] - press) / 1000, (sound["at"] - utterance["t"]) / 1000, server.last(),
                         _ready_s(page, utterance))
    return row


def _stages(to_utterance_s: float, utterance_to_sound_s: float, timings: dict,
            utterance_to_ready_s: float | None = None) -> dict[str, float]:
    """Where a spoken turn's time went. The server counts from when the utterance was complete (heard_at), a few
    ms before the page logs `utterance`; the rest of utterance -> first sound is the page's and the transport's:
    until the page hears that speech is ready (`speech_ready`), then fetching, decoding and starting it."""
    stages = {"to utterance (page)": to_utterance_s}
    if {"turn_start_s", "stt_s", "first_token_s", "first_audio_s"} <= timings.keys():
        stages.update({"utterance -> turn starts on the server": timings["turn_start_s"],
                       "-> transcript ready": timings["stt_s"] - timings["turn_start_s"],
                       "-> first token": timings["first_token_s"] - timings["stt_s"],
                       "-> first audio made": timings["first_audio_s"] - timings["first_token_s"]})
        if utterance_to_ready_s is None:
            stages["-> first sound in the page"] = utterance_to_sound_s - timings["first_audio_s"]
        else:
            stages.update({"-> the page hears it is ready": utterance_to_ready_s - timings["first_audio_s"],
                           "-> first sound in the page": utterance_to_sound_s - utterance_to_ready_s})
    return stages


def _ready_s(page, utterance: dict) -> float | None:
    """utterance -> the page's first `speech_ready` for the turn after it, seconds."""
    ready = [e for e in events(page, "speech_ready") if e["t"] >= utterance["t"]]
    return (ready[0]["t"] - utterance["t"]) / 1000 if ready else None


def _ready_via(page, utterance: dict) -> str:
    ready = [e for e in events(page, "speech_ready") if e["t"] >= utterance["t"]]
    return f"speech ready via {ready[0]['via']}; " if ready else ""


def text_run(page, question: Spoken, server: ServerTurns) -> Row:
    row = Row("text", question)
    page.evaluate("() => document.addEventListener('keydown', e => { if (e.key === 'Enter') "
                  "window.enterAt = performance.now(); }, { capture: true })")
    box = page.locator("#message textarea")
    box.fill(question.text)
    box.press("Enter")
    entered = page.evaluate("() => window.enterAt ?? null")
    if entered is None:
        raise RunFailed("the Enter key was not seen by the page")
    sound = first_after(page, "first_sound", "at", entered)
    wait_turn_done(page, server)
    if not wait_played(page):
        row.note = f"the answer had not finished playing after {PLAYED_TIMEOUT_S:.0f} s; "
    turn = turns(page)[-1]
    gaps = turn["gaps"]
    timings = server.last()
    row.figure_s = (sound["at"] - entered) / 1000
    row.stages = {"longest gap": max(gaps, default=0.0), "total gap": sum(gaps), "pieces": turn["pieces"],
                  # a check on the gaps: first sound -> the last piece ended, against the answer's audio length
                  "played": (turn["ended"] - turn["first_sound"]) / 1000 if turn["ended"] else float("nan"),
                  "audio": timings.get("speech_audio_s", float("nan")),
                  "server first token": timings.get("first_token_s", float("nan")),
                  "server first audio made": timings.get("first_audio_s", float("nan"))}
    return row


def barge_run(page, question: Spoken, story: Spoken, server: ServerTurns) -> Row:
    row = Row("barge-in", question)
    page.locator("#live .live-talk").click()
    spoken_s = LEAD_S + story.duration_s + BARGE_GAP_S + question.duration_s
    silenced = None
    try:
        silenced = first_after(page, "silenced", "t", 0.0, timeout_ms=(spoken_s + 10) * 1000)
    except RunFailed:
        pass  # said below, with what the page did instead
    starts, ends = events(page, "mic_sound_start"), events(page, "mic_sound_end")
    second = next((s for s in starts if s["at"] - max((e["at"] for e in ends if e["at"] < s["at"]),
                                                      default=s["at"]) >= BARGE_GAP_S - 1), None)
    sounds = events(page, "first_sound")
    if second is None:
        raise RunFailed("the second question's sound was not seen")
    if silenced is None or silenced["why"] != "barge-in":
        playing = bool(sounds) and sounds[0]["at"] < second["at"]
        raise RunFailed("nothing was silenced: " + ("the answer was playing" if playing else
                                                    "the story's answer had not started playing yet"))
    # The sound stops when the answer is held (what may be speech), if that hold led to the silencing.
    holds = [h for h in events(page, "held") if second["at"] - 100 <= h["t"] <= silenced["t"]]
    went_on = [r for r in events(page, "resumed") if holds and holds[0]["t"] <= r["t"] <= silenced["t"]]
    stopped = holds[0]["t"] if holds and not went_on else silenced["t"]
    row.figure_s = (stopped - second["at"]) / 1000
    row.stages = {"story answer played before the question": (second["at"] - sounds[0]["at"]) / 1000,
                  "held -> silenced": (silenced["t"] - stopped) / 1000,
                  "holds that went on": float(len(events(page, "resumed")))}
    return row


def run_in_page(playwright, url: str, microphone: Path | None, run: Callable, page_log: PageLog,
                label: str) -> Row | str:
    """One run in a fresh browser: its Row, or why it gave none."""
    from playwright.sync_api import Error as PageError

    browser = None
    page_log.run, page_log.closing = label, False
    try:
        browser, page = open_page(playwright, url, microphone, page_log)
        return run(page)
    except (RunFailed, PageError) as e:  # playwright's TimeoutError is an Error too
        return f"{type(e).__name__}: {str(e).splitlines()[0]}"
    finally:
        page_log.closing = True
        if browser is not None:
            browser.close()


# -- the in-process figure -----------------------------------------------------------------------------------------

def in_process(cfg, engines, talk: list[Spoken], folder: Path) -> list[dict]:
    """bench/latency.py's streaming turn on the same speech, from the complete file (one warm-up turn first)."""
    from audio.store import AudioStore
    from bench.latency import streaming_turn
    from chatbot.assistant import Assistant
    from tests.media import write_wav

    store = AudioStore(None, cfg.files.max_age_s)
    assistant = Assistant(cfg, engines, store)
    wavs = [write_wav(folder / f"in-process-{i:02d}.wav", q.rate, q.samples) for i, q in enumerate(talk)]
    try:
        streaming_turn(assistant, wavs[0])  # warm-up: the first turn pays lazy set-up
        results = []
        for question, wav in zip(talk, wavs):
            result = streaming_turn(assistant, wav)
            results.append(result)
            print(f"  in-process [{question.voice:9s}] {question.text[:48]:48s} stt {result['stt_s']:.2f} s, "
                  f"first token {result['first_token_s']:.2f} s, first audio {result['ttfa_s']:.2f} s", flush=True)
        return results
    finally:
        store.close()


# -- the report ----------------------------------------------------------------------------------------------------

def summary(name: str, values: list[float]) -> str:
    if not values:
        return f"{name:52s} {0:3d}      -"
    return (f"{name:52s} {len(values):3d} {statistics.median(values):7.2f} {percentile(values, 0.9):7.2f}"
            f" {min(values):7.2f} {max(values):7.2f}")


def median_or_nan(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def print_stages(title: str, rows: list[Row]) -> None:
    full = [r for r in rows if len(r.stages) > 1]
    print(f"{title} (median of {len(full)} turns; the server's stages from its turn timings):")
    if not full:
        return
    for stage in full[0].stages:
        print(f"  {stage:44s} {median_or_nan([r.stages.get(stage, float('nan')) for r in full]):6.2f} s")
    print(f"  {'= speech end / press -> first sound':44s} {median_or_nan([r.figure_s for r in full]):6.2f} s")


def describe(row: Row) -> str:
    extra = " ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}" for k, v in row.stages.items()
                     if row.kind in ("text", "barge-in"))
    return (f"{row.kind:8s} [{row.question.voice:9s}{' paused' if row.question.paused else '       '}] "
            f"{row.question.text[:44]:44s} {row.figure_s:6.2f} s"
            f"{'  CUT OFF' if row.cutoff else ''} {extra} {row.note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=10, help="questions per mode (and barge-in runs)")
    args = parser.parse_args()

    APP_LOG.write_text("")  # appended to: uvicorn's logging set-up closes every handler, and a "w" one stays shut
    logging.basicConfig(level=logging.INFO, filename=APP_LOG, filemode="a",
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from playwright.sync_api import sync_playwright

    from chatbot.config import load_config
    from chatbot.engines import build_engines
    from chatbot.malloc import limit_arenas
    from tests.test_app_http import running_app

    started = time.monotonic()
    cfg = load_config(overrides=OVERRIDES)
    limit_arenas(cfg.server.malloc_arenas)  # as app.py does before the models start their threads
    engines = build_engines(cfg)
    print(f"engines: {engines.status_line()}; talk mode: "
          f"{'end of turn by ' + engines.listening.talk.end_of_turn if engines.listening else 'unavailable'}")
    folder = Path(tempfile.mkdtemp(prefix="bench-browser-"))
    talk, plain, story = make_questions(args.questions)
    print(f"{len(talk)} questions ({sum(q.paused for q in talk)} with a {PAUSE_S:g} s pause in talk mode), voices "
          f"{dict(Counter(q.voice for q in talk))}; llm.max_new_tokens {OVERRIDES['llm.max_new_tokens']}, greedy")

    print("in-process (bench/latency.py streaming_turn, from the complete file):", flush=True)
    local = in_process(cfg, engines, talk, folder)

    rows: list[Row] = []
    failures: list[str] = []
    page_log = PageLog()
    with running_app(cfg, engines) as (demo, assistant), sync_playwright() as playwright:
        server = ServerTurns()
        server.install(assistant)
        url = demo.local_url
        warm = run_in_page(playwright, url, mic_wav(folder / "warm-up.wav", LEAD_S, talk[0], TAIL_S),
                           lambda page: talk_run(page, talk[0], server), page_log, "warm-up")
        print(f"warm-up talk run (not counted): {describe(warm) if isinstance(warm, Row) else warm}", flush=True)
        server.wait_quiet()
        for i, (spoken, once) in enumerate(zip(talk, plain)):
            runs = [("talk", mic_wav(folder / f"talk-{i:02d}.wav", LEAD_S, spoken, TAIL_S),
                     lambda page, q=spoken: talk_run(page, q, server), spoken),
                    ("ptt", mic_wav(folder / f"ptt-{i:02d}.wav", LEAD_S, once, TAIL_S),
                     lambda page, q=once: ptt_run(page, q, server), once),
                    ("text", None, lambda page, q=once: text_run(page, q, server), once),
                    ("barge-in", mic_wav(folder / f"barge-{i:02d}.wav", LEAD_S, story, BARGE_GAP_S, once, TAIL_S),
                     lambda page, q=once: barge_run(page, q, story, server), once)]
            for kind, microphone, run, question in runs:
                outcome = run_in_page(playwright, url, microphone, run, page_log, f"{kind} {i + 1}")
                if isinstance(outcome, Row):
                    rows.append(outcome)
                    print(f"{i + 1:2d} {describe(outcome)}", flush=True)
                else:
                    failures.append(f"{kind} {question.text!r}: {outcome}")
                    print(f"{i + 1:2d} {kind:8s} {question.text[:44]:44s} FAILED: {outcome}", flush=True)
                if not server.wait_quiet():
                    print(f"   (a turn was still running {QUIET_TIMEOUT_S:.0f} s after the run)", flush=True)

    of = {kind: [r for r in rows if r.kind == kind] for kind in ("talk", "ptt", "text", "barge-in")}
    figures = {kind: [r.figure_s for r in found] for kind, found in of.items()}
    clean_talk = [r.figure_s for r in of["talk"] if not r.cutoff]
    local_ttfa = [r["ttfa_s"] for r in local]
    print()
    print(f"{'seconds':52s} {'n':>3s} {'median':>7s} {'p90':>7s} {'min':>7s} {'max':>7s}")
    print(summary("talk: speech end -> first sound", figures["talk"]))
    print(summary("  without the false cut-offs", clean_talk))
    print(summary("talk: speech end -> utterance (end-of-turn wait)",
                  [r.stages["to utterance (page)"] for r in of["talk"]]))
    print(summary("push-to-talk: second press -> first sound", figures["ptt"]))
    print(summary("text: Enter -> first sound", figures["text"]))
    print(summary("barge-in: second question's sound -> silenced", figures["barge-in"]))
    print(summary("text answers: longest gap between pieces", [r.stages["longest gap"] for r in of["text"]]))
    print(summary("text answers: total gap per answer", [r.stages["total gap"] for r in of["text"]]))
    print(summary("text answers: played - audio length (silence in it)",
                  [r.stages["played"] - r.stages["audio"] for r in of["text"]]))
    print(summary("in-process (latency.py): file done -> first audio", local_ttfa))
    print()
    print_stages("talk mode, where the time goes", of["talk"])
    print_stages("push-to-talk, where the time goes", of["ptt"])
    local_median = median_or_nan(local_ttfa)
    eot = median_or_nan([r.stages["to utterance (page)"] for r in of["talk"]])
    print(f"transport and page (browser median - in-process median {local_median:.2f} s): push-to-talk "
          f"{median_or_nan(figures['ptt']) - local_median:+.2f} s, text "
          f"{median_or_nan(figures['text']) - local_median:+.2f} s (no speech-to-text in it), talk less its "
          f"end-of-turn wait {median_or_nan(figures['talk']) - eot - local_median:+.2f} s")
    paused = [r for r in of["talk"] if r.question.paused]
    breath = [r for r in of["talk"] if not r.question.paused]
    print(f"false cut-offs: {sum(r.cutoff for r in paused)}/{len(paused)} questions with a pause, "
          f"{sum(r.cutoff for r in breath)}/{len(breath)} in one breath")
    print(f"runs without a figure: {len(failures)}")
    for failure in failures:
        print(f"  {failure}")
    print(f"page console errors: {len(page_log.errors)}")
    for message in page_log.errors:
        print(f"  {message[:200]}")
    print(f"(app log: {APP_LOG}; {time.monotonic() - started:.0f} s in all)")
    print(f"RESULT browser_talk_ttfa_median_s={median_or_nan(figures['talk']):.2f} "
          f"browser_ptt_ttfa_median_s={median_or_nan(figures['ptt']):.2f} "
          f"browser_text_ttfa_median_s={median_or_nan(figures['text']):.2f} "
          f"barge_in_stop_median_s={median_or_nan(figures['barge-in']):.2f} "
          f"false_cutoffs={sum(r.cutoff for r in paused)}/{len(paused)}")


if __name__ == "__main__":
    main()
