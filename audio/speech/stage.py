"""The speech stage: fed the reply's text as it is generated, it speaks it piece by piece in its own thread.

`feed(delta)` takes each streamed text delta; the sentence splitter cuts it into speakable pieces, each is
cleaned for the ear (no markdown, code or emoji) and queued. A worker thread synthesises the pieces in order;
the turn takes the audio with `ready()` between tokens and `drain()` once `finish()` has closed the input.
Every chunk handed out is a `SpeechChunk`: (sample rate, mono float32). Setting the turn's cancel event (Stop,
a new message, a closed tab) ends the worker after the piece it is speaking.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import TYPE_CHECKING, Iterator

from audio.speech.for_the_ear import clean_for_speech, speakable
from audio.speech.sentences import SentenceSplitter
from audio.tts.base import Speaker, SpeechChunk, VoiceOptions

if TYPE_CHECKING:
    from chatbot.config import TTSConfig

log = logging.getLogger(__name__)

CAP_NOTICE = "The rest of the answer is in the chat."  # said when a reply is longer than tts.max_chars
_DONE = object()
_POLL_S = 0.05  # how often a waiting turn re-checks its cancel event


class SpeechStage:
    def __init__(self, speaker: Speaker, voice: VoiceOptions, cancel: threading.Event, cfg: TTSConfig, *,
                 cap_notice: str = CAP_NOTICE):
        self._speaker = speaker
        self._voice = voice
        self._cancel = cancel
        self._splitter = SentenceSplitter(max_chars=cfg.piece_chars, first_min_chars=cfg.first_piece_chars,
                                          first_max_words=cfg.first_piece_words)
        self._max_chars = cfg.max_chars  # speech stops after this many characters, and says so
        self._cap_notice = cap_notice
        self._spoken_chars = 0
        self.capped = False
        self._pieces: queue.Queue = queue.Queue()
        self._audio: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.error: BaseException | None = None
        self.first_audio_at: float | None = None  # time.perf_counter() when the first chunk was ready
        self._made_s = 0.0  # seconds of audio made so far
        self._unspoken = 0  # pieces queued or being synthesised
        self._progress = threading.Condition()  # notified when a piece is done (or the worker ends)
        self.synth_s = 0.0  # time spent synthesising, for the real-time factor

    def feed(self, delta: str) -> None:
        """A delta of the reply's text; the pieces it completes are queued for speech."""
        for piece in self._splitter.feed(delta):
            self._submit(piece)

    def say(self, text: str) -> None:
        """Speak `text` as a piece of its own, now (a lead-in such as "Checking the weather in Paris…")."""
        self._submit(text)

    def finish(self) -> None:
        """The reply is complete: the rest of its text is queued, and the input is closed."""
        for piece in self._splitter.flush():
            self._submit(piece)
        self._closed = True
        if self._thread is not None:
            self._pieces.put(_DONE)

    def _submit(self, text: str) -> None:
        """Queue a piece; markdown, code and emoji are cleaned away, silence is skipped."""
        if self.capped or self._closed:
            return
        speech = clean_for_speech(text)
        if not speakable(speech):
            return
        if self._spoken_chars + len(speech) > self._max_chars:
            speech, self.capped = self._cap_notice, True
        self._spoken_chars += len(speech)
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="speech-worker", daemon=True)
            self._thread.start()
        with self._progress:
            self._unspoken += 1
        self._pieces.put(speech)

    def _run(self) -> None:
        try:
            for text in iter(self._pieces.get, _DONE):
                if self._cancel.is_set():
                    break
                self._synthesise(text)
                with self._progress:
                    self._unspoken -= 1
                    self._progress.notify_all()
        except Exception as e:  # reported to the turn, which keeps the text and says speech failed
            log.exception("speech failed")
            self.error = e
        finally:
            with self._progress:
                self._unspoken = 0
                self._progress.notify_all()
            self._audio.put(_DONE)

    def _synthesise(self, text: str) -> None:
        started = time.perf_counter()
        for chunk in self._speaker.speak(text, self._voice):
            now = time.perf_counter()
            self.synth_s += now - started
            if self.first_audio_at is None:
                self.first_audio_at = now
            self._made_s += len(chunk.samples) / chunk.sample_rate
            self._audio.put(chunk)
            if self._cancel.is_set():
                return
            started = time.perf_counter()

    def ahead_s(self) -> float:
        """Seconds of speech made beyond what has played, had it started playing when the first chunk was made
        (the page starts later, so it has more in hand than this)."""
        if self.first_audio_at is None:
            return 0.0
        return self._made_s - (time.perf_counter() - self.first_audio_at)

    def wait_for_lead(self, lead_s: float, timeout_s: float) -> None:
        """While a piece is being synthesised and less than `lead_s` of speech is ready ahead of what plays, wait
        for that piece (at most `timeout_s`, or until cancel). The turn calls this between tokens: on a CPU the
        voice then has the cores when the listener would otherwise hear a gap, or wait for the first sound."""
        deadline = time.perf_counter() + timeout_s
        with self._progress:
            while self._unspoken and self.ahead_s() < lead_s and not self._cancel.is_set():
                left = deadline - time.perf_counter()
                if left <= 0:
                    return
                self._progress.wait(min(left, _POLL_S))

    def ready(self) -> list[SpeechChunk]:
        """Audio finished so far, without waiting."""
        chunks = []
        while True:
            try:
                item = self._audio.get_nowait()
            except queue.Empty:
                return chunks
            if item is _DONE:
                self._audio.put(_DONE)  # keep the end marker for drain()
                return chunks
            chunks.append(item)

    def drain(self) -> Iterator[SpeechChunk]:
        """After `finish()`: the remaining audio as it is made; stops early on cancel."""
        if self._thread is None:
            return
        while True:
            try:
                item = self._audio.get(timeout=_POLL_S)
            except queue.Empty:
                if self._cancel.is_set() and not self._thread.is_alive():
                    return
                continue
            if item is _DONE:
                break
            yield item
        self._thread.join()

    def stop(self) -> None:
        """End the worker (after its current piece) and wait for it: nothing is left running."""
        self._closed = True
        self._cancel.set()
        if self._thread is not None:
            self._pieces.put(_DONE)
            self._thread.join()
