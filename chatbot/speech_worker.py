"""Speak while the reply is still being generated: a worker thread turns finished sentences into audio.

The turn feeds pieces of text as the sentence splitter completes them; the worker speaks them in order and
hands the audio back through a queue, which the turn polls between tokens and drains at the end. Setting the
turn's cancel event (Stop, a new message, a closed tab) ends the worker after the piece it is speaking.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from typing import Iterator

from audio.speech_text import clean_for_speech, speakable
from audio.tts import Speaker, SpeechChunk, VoiceOptions

log = logging.getLogger(__name__)

_DONE = object()
_POLL_S = 0.05  # how often a waiting turn re-checks its cancel event


class SpeechWorker:
    def __init__(self, speaker: Speaker, options: VoiceOptions, cancel: threading.Event, *, max_chars: int,
                 cap_notice: str):
        self._speaker = speaker
        self._options = options
        self._cancel = cancel
        self._max_chars = max_chars  # speech stops after this many characters, and says so
        self._cap_notice = cap_notice
        self._spoken_chars = 0
        self.capped = False
        self._pieces: queue.Queue = queue.Queue()
        self._audio: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._closed = False
        self.error: BaseException | None = None
        self.first_audio_at: float | None = None  # time.perf_counter() when the first chunk was ready
        self.synth_s = 0.0  # time spent synthesising, for the real-time factor

    def submit(self, text: str) -> None:
        """Queue a piece of the reply; markdown, code and emoji are cleaned away, silence is skipped."""
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
        self._pieces.put(speech)

    def _run(self) -> None:
        try:
            for text in iter(self._pieces.get, _DONE):
                if self._cancel.is_set():
                    break
                started = time.perf_counter()
                for chunk in self._speaker.speak(text, self._options):
                    now = time.perf_counter()
                    self.synth_s += now - started
                    if self.first_audio_at is None:
                        self.first_audio_at = now
                    self._audio.put(chunk)
                    if self._cancel.is_set():
                        break
                    started = time.perf_counter()
        except Exception as e:  # reported to the turn, which keeps the text and says speech failed
            log.exception("speech failed")
            self.error = e
        finally:
            self._audio.put(_DONE)

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
        """Close the input, then yield the remaining audio as it is made; stops early on cancel."""
        self._closed = True
        if self._thread is None:
            return
        self._pieces.put(_DONE)
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
