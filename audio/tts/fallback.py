"""The online voice with an offline one behind it: edge-tts, and Piper when Microsoft's service cannot be reached."""

from __future__ import annotations

import logging
import threading
import time
from typing import Iterator

from audio.tts.base import Speaker, SpeechChunk, VoiceOptions, short_reason

log = logging.getLogger(__name__)


class FallbackSpeaker:
    """Speaks with `primary`; when it fails, speaks the same text with `fallback` and, for `retry_after_s`,
    skips the primary altogether, so that a dead service costs one timeout, not one per turn."""

    def __init__(self, primary: Speaker, fallback: Speaker, retry_after_s: float):
        self.primary = primary
        self.fallback = fallback
        self._retry_after_s = retry_after_s
        self._lock = threading.Lock()
        self._down_until = 0.0  # time.monotonic() before which the primary is not tried
        self._down_reason = ""

    def _primary_down(self) -> str:
        with self._lock:
            return self._down_reason if time.monotonic() < self._down_until else ""

    @property
    def primary_available(self) -> bool:
        """False while the primary is skipped after a failure (for retry_after_s)."""
        return not self._primary_down()

    @property
    def description(self) -> str:
        reason = self._primary_down()
        if reason:
            return f"{self.fallback.description} (fallback: {self.primary.description} unavailable)"
        return f"{self.primary.description} ({self.fallback.description} when offline)"

    def voices(self) -> list[str]:
        return self.primary.voices()

    def speak(self, text: str, options: VoiceOptions) -> Iterator[SpeechChunk]:
        reason = self._primary_down()
        if not reason:
            try:
                # The primary's chunks are gathered before any is yielded: a failure half-way through
                # then falls back for the whole text instead of leaving half a reply spoken twice.
                chunks = list(self.primary.speak(text, options))
            except Exception as e:  # any failure of a remote service: timeouts, DNS, protocol, bad audio
                reason = short_reason(e)
                with self._lock:
                    self._down_until = time.monotonic() + self._retry_after_s
                    self._down_reason = reason
                log.warning("%s failed (%s); speaking with %s; next try in %.0f s",
                            self.primary.description, reason, self.fallback.description, self._retry_after_s)
            else:
                yield from chunks
                return
        note = f"{self.primary.description} unavailable, spoken by {self.fallback.description} ({reason})"
        fallback_options = VoiceOptions(voice=None, rate_percent=options.rate_percent)
        for chunk in self.fallback.speak(text, fallback_options):
            yield SpeechChunk(chunk.sample_rate, chunk.samples, chunk.spoken_by, note)
