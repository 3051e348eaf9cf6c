"""The live voice link of one browser tab: the microphone streamed in, the answer's speech handed out.

The page (chatbot/web/live.js) sends microphone audio while the user speaks, about ten times a second, so
nothing is left to upload when they stop: in push-to-talk it is kept until the mic button is pressed again; in
talk mode a `Listener` (voice activity + end of turn) decides when the user has finished, and notices them
starting to speak over an answer (barge-in). A finished utterance starts its turn here at once when the link
was given `start_turn` (chatbot/early_turn.py), else it waits until the page's `utterance` event starts it.
Each turn's speech is kept here, piece by piece, for the page's player to fetch; in talk mode each answer to the
page's microphone audio says how many pieces are ready.

Everything that comes from the page is checked: a chunk's size and rate, the total length of a recording, how
fast audio arrives (the listener drops what comes faster than real time). Nothing here imports gradio.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import secrets
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Callable, Literal

import numpy as np

from audio.decode import SAMPLE_RATE, StreamResampler, to_pcm16
from audio.tts.base import SpeechChunk
from chatbot.config import LimitsConfig
from chatbot.session import ChatSession

log = logging.getLogger(__name__)

Mode = Literal["off", "ptt", "talk"]
MAX_CHUNK_S = 2.0  # the longest piece of microphone audio one call may carry (the page sends ~0.13 s)
MIC_RATES = (8_000, 16_000, 22_050, 24_000, 32_000, 44_100, 48_000)  # Hz the page may send


class LiveInputError(ValueError):
    """What the page sent cannot be used; the message is fit for the log, not a crash."""


@dataclass(frozen=True)
class Utterance:
    samples: np.ndarray  # 16 kHz mono float32
    heard_at: float  # time.perf_counter() when the utterance was known to be complete
    speech_end_s: float  # seconds of silence after the last speech when it was (0 for push-to-talk)
    mode: Mode
    transcript: Future | None = None  # its transcription, started at the pause (talk mode)


@dataclass(frozen=True)
class _Piece:
    seq: int
    rate: int
    pcm: str  # base64 of 16-bit little-endian mono PCM


class LiveLink:
    def __init__(self, session: ChatSession, limits: LimitsConfig, make_listener: Callable[[bool], object] | None,
                 start_turn: Callable[..., object] | None = None, *, speculate: bool = False):
        self.key = secrets.token_urlsafe(18)  # unguessable: the page names its link with it
        self.session = session
        self._limits = limits
        # make_listener(ends_turns): a Listener for talk mode (True), or one that only hears pauses, for
        # push-to-talk (False); None when the listening models are missing.
        self._make_listener = make_listener
        # start_turn(link, utterance, tentative=False): the turn answering an utterance, started now (an
        # EarlyTurn); tentative: at a pause in talk mode (`speculate`), confirmed when the turn ends with it.
        self._start_turn = start_turn
        self._speculate = speculate and start_turn is not None
        self._tentative = None  # the turn started at the latest pause
        self._after: list[Callable[[], None]] = []  # what hear() does once it has let go of the lock
        self.turn_options = None  # the page's settings (a TurnOptions) for the turns started here; None: defaults
        self.autoplay = True  # the page plays speech as it comes
        self._early = None  # the turn started here, until the page's event takes it
        self._lock = threading.Lock()
        self.turn = 0  # the turn whose speech is kept
        self._stage = ""  # its stage, as its latest cursor said
        self._pieces: list[_Piece] = []
        self._mode: Mode = "off"
        self._listener = None
        self._resampler = StreamResampler()  # one per stream: resampling chunk by chunk would click at each seam
        self._recording: list[np.ndarray] = []  # push-to-talk audio, 16 kHz
        self._recorded = 0  # samples in it
        self._utterance: Utterance | None = None
        self._speculating: Future | None = None  # the transcription started at the latest pause

    # -- speech out --------------------------------------------------------------------------------------

    def begin_turn(self) -> int:
        """A new turn starts speaking: the previous turn's pieces are dropped."""
        with self._lock:
            self.turn += 1
            self._pieces = []
            return self.turn

    def publish(self, turn: int, chunks: tuple[SpeechChunk, ...]) -> None:
        with self._lock:
            if turn != self.turn:
                return  # an older turn still ending: the page no longer wants it
            for chunk in chunks:
                pcm = base64.b64encode(to_pcm16(chunk.samples).tobytes()).decode("ascii")
                self._pieces.append(_Piece(len(self._pieces), chunk.sample_rate, pcm))

    def cursor(self, turn: int, stage: str) -> str | None:
        """The value the page's player watches: which turn, how many pieces are ready, the turn's stage. None
        for a turn that a newer one replaced (the page no longer plays it)."""
        with self._lock:
            if turn != self.turn:
                return None
            self._stage = stage
            return json.dumps(self._cursor())

    def note_stage(self, turn: int, stage: str) -> None:
        """The stage of a turn whose cursor nobody asked for yet (one the server started before the page's event)."""
        with self._lock:
            if turn == self.turn:
                self._stage = stage

    def _cursor(self) -> dict:
        return {"key": self.key, "turn": self.turn, "ready": len(self._pieces), "stage": self._stage}

    def hello(self) -> str:
        """The first value the page gets: its link's key."""
        return json.dumps({"key": self.key, "turn": None})

    def pieces_since(self, turn: int, since: int) -> list[dict]:
        with self._lock:
            if turn != self.turn or not isinstance(since, int) or since < 0:
                return []
            return [{"seq": p.seq, "rate": p.rate, "pcm": p.pcm} for p in self._pieces[since:]]

    # -- microphone in -----------------------------------------------------------------------------------

    def close(self) -> None:
        """The tab went away: its microphone stream ends, its speech is dropped."""
        with self._lock:
            self._mode, self._listener, self._utterance, self._speculating = "off", None, None, None
            self._recording, self._recorded, self._pieces, self._early = [], 0, [], None
        self._drop_tentative()

    def take_utterance(self) -> Utterance | None:
        with self._lock:
            utterance, self._utterance = self._utterance, None
            return utterance

    def take_early_turn(self):
        """The turn started here for the latest utterance, if the page's event has not taken it yet."""
        with self._lock:
            early, self._early = self._early, None
            return early

    def hear(self, message: dict) -> dict:
        """One call from the page: {mode, start, final, rate, pcm}. Answers what the page should do."""
        mode = message.get("mode")
        if mode not in ("off", "ptt", "talk"):
            raise LiveInputError(f"unknown microphone mode {mode!r}")
        with self._lock:
            self._after = []
            answer = self._hear(mode, message)
            after = self._after
        for action in after:  # outside the lock: starting a turn begins a turn on this link
            action()
        if mode == "talk":
            with self._lock:  # (after: a turn confirmed just now has its first speech ready already)
                if self.turn:
                    answer["speech"] = self._cursor()  # the page's player fetches the pieces it has not played
        return answer

    def _heard(self, utterance: Utterance) -> None:
        """A finished utterance (under the lock): its turn starts once hear() lets go, or waits for the page."""
        if self._start_turn is None:
            self._utterance = utterance
        else:
            self._after.append(lambda: self._answer(utterance))

    def _answer(self, utterance: Utterance) -> None:
        """Confirm the turn started at the pause if it answers this very audio, else start one."""
        tentative = self._take_tentative()
        if tentative is not None and tentative.audio is utterance.samples:
            tentative.commit()
            early = tentative
        else:
            if tentative is not None:
                tentative.discard()
            early = self._start_turn(self, utterance)
        with self._lock:
            self._early = early

    def _begin_tentative(self, utterance: Utterance) -> None:
        self._drop_tentative()
        tentative = self._start_turn(self, utterance, tentative=True)
        with self._lock:
            self._tentative = tentative

    def _take_tentative(self):
        with self._lock:
            tentative, self._tentative = self._tentative, None
            return tentative

    def _drop_tentative(self) -> None:
        tentative = self._take_tentative()
        if tentative is not None:
            tentative.discard()

    def _hear(self, mode: Mode, message: dict) -> dict:
        if mode == "off" or message.get("start"):
            self._after.append(self._drop_tentative)  # talk mode ended, or a new recording: no pause is pending
        if mode == "off":
            self._mode, self._listener = "off", None
            return {"state": ""}
        if message.get("start"):
            return self._start(mode)
        if mode != self._mode:
            return {"state": "", "closed": True}  # audio of a recording that was ended meanwhile
        audio = self._resampler.push(*_pcm_of(message))
        if mode == "ptt":
            return self._record(audio, bool(message.get("final")))
        return self._listen(audio)

    def _start(self, mode: Mode) -> dict:
        self._utterance = self._speculating = None
        self._resampler = StreamResampler()
        self._recording, self._recorded = [], 0
        if mode == "ptt":
            self._mode = "ptt"
            # Transcribed at each pause, so a press soon after the user stops finds the transcript made.
            self._listener = self._make_listener(False) if self._make_listener is not None else None
            self.session.stop()  # pressing the mic stops the answer still being written
            return {"state": "recording"}
        if self._make_listener is None:
            self._mode = "off"
            return {"state": "", "closed": True,
                    "notice": "Talk mode is not available: its listening models are missing (run scripts/setup.sh)."}
        self._mode, self._listener = "talk", self._make_listener(True)
        return {"state": "listening"}

    def _record(self, audio: np.ndarray, final: bool) -> dict:
        room = int(self._limits.max_audio_s * SAMPLE_RATE) - self._recorded
        notice = ""
        if len(audio) > room:
            audio = audio[:max(room, 0)]
            final = True  # the recording is as long as it may be: it ends here
            notice = f"Only the first {self._limits.max_audio_s:.0f} s of your recording were used."
        if len(audio):
            self._recording.append(audio)
            self._recorded += len(audio)
            if self._listener is not None:
                self._hear_pauses(audio)
        if not final:
            return {"state": "recording"}
        # The transcription started at the last pause covers everything said, if the user did not go on.
        paused = self._listener is not None and self._listener.phase == "paused"
        transcript = self._speculating if paused else None
        self._mode, self._listener, self._speculating = "off", None, None
        samples = np.concatenate(self._recording) if self._recording else np.zeros(0, np.float32)
        self._recording, self._recorded = [], 0
        if len(samples) < self._limits.min_audio_s * SAMPLE_RATE:
            return {"state": "", "closed": True, "notice": f"That recording is only {len(samples) / SAMPLE_RATE:.1f} s "
                    f"long. Keep the microphone on while you speak (at least {self._limits.min_audio_s:g} s)."}
        self._heard(Utterance(samples, time.perf_counter(), 0.0, "ptt", transcript))
        return {"state": "", "utterance": True, "mode": "ptt", "notice": notice, "closed": True}

    def _hear_pauses(self, audio: np.ndarray) -> None:
        """Push-to-talk: transcription starts at each pause, and is dropped when the user goes on."""
        for event in self._listener.feed(SAMPLE_RATE, audio):
            self._follow_speculation(event)

    def _follow_speculation(self, event) -> None:
        """Keep the transcription started at the latest pause; drop it when the user goes on."""
        from audio.listen.listener import SpeechPaused, SpeechResumed

        if isinstance(event, SpeechPaused):
            self._speculating = event.transcript
        elif isinstance(event, SpeechResumed) and self._speculating is not None:
            self._speculating.cancel()  # not needed, if it has not started yet
            self._speculating = None

    def _listen(self, audio: np.ndarray) -> dict:
        from audio.listen.listener import (InputDropped, SpeechFaded, SpeechOnset, SpeechPaused, SpeechResumed,
                                           SpeechStarted, TurnEnded)

        answer: dict = {"state": "listening", "mode": "talk", "turn_running": self.session.running > 0}
        for event in self._listener.feed(SAMPLE_RATE, audio):
            if isinstance(event, SpeechOnset):
                answer["hold"] = True  # the page pauses the answer it plays...
            elif isinstance(event, SpeechFaded):
                answer["resume"] = True  # ...and lets it go on: only a cough
            elif isinstance(event, SpeechStarted):
                answer["barge_in"] = True
                if self.session.running:
                    log.info("barge-in: the user speaks over the answer; it is stopped")
                    self.session.stop()
            elif isinstance(event, (SpeechPaused, SpeechResumed)):
                self._follow_speculation(event)
                if self._speculate and isinstance(event, SpeechPaused):  # answer now, confirm at the end
                    paused = Utterance(event.audio, time.perf_counter(), event.time_s - event.speech_end_s, "talk",
                                       event.transcript)
                    self._after.append(lambda: self._begin_tentative(paused))
                elif self._speculate:
                    self._after.append(self._drop_tentative)  # the user went on
            elif isinstance(event, TurnEnded):
                silence_s = max(0.0, event.time_s - event.speech_end_s)
                self._heard(Utterance(event.audio, time.perf_counter(), silence_s, "talk", event.transcript))
                self._speculating = None
                answer["utterance"] = True
                log.info("turn ended (%s) after %.2f s of silence", event.reason, silence_s)
                if event.reason == "too long":
                    answer["notice"] = (f"Only the first {self._limits.max_audio_s:.0f} s of what you said were "
                                        "used.")
            elif isinstance(event, InputDropped):
                log.warning("microphone audio came faster than real time: %.1f s dropped", event.dropped_s)
        answer["state"] = "hearing" if self._listener.phase in ("speaking", "paused") else "listening"
        return answer


def _pcm_of(message: dict) -> tuple[int, np.ndarray]:
    """The message's (rate, int16 samples), after checking its rate and size."""
    rate, pcm = message.get("rate"), message.get("pcm")
    if rate not in MIC_RATES:
        raise LiveInputError(f"unsupported microphone rate {rate!r}")
    if not isinstance(pcm, str) or len(pcm) > 4 * MAX_CHUNK_S * rate * 2 / 3 + 4:
        raise LiveInputError("a microphone chunk must be base64 text of at most "
                             f"{MAX_CHUNK_S:g} s of 16-bit audio")
    try:
        raw = base64.b64decode(pcm, validate=True)
    except binascii.Error as e:
        raise LiveInputError("a microphone chunk is not valid base64") from e
    return rate, np.frombuffer(raw[: len(raw) // 2 * 2], dtype="<i2")
