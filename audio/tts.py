"""Text-to-speech: one interface, two engines (edge-tts online, Piper offline), and the fallback between them."""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class VoiceOptions:
    voice: str | None = None  # an engine's voice name; None = the configured one
    rate_percent: int = 0  # -50 .. +100: percent faster than normal speech


@dataclass(frozen=True)
class SpeechChunk:
    sample_rate: int  # Hz
    samples: np.ndarray  # mono float32 in [-1, 1]
    spoken_by: str  # which engine and voice made it, for the status line
    note: str = ""  # set when a fallback spoke instead of the configured engine, says why


def join_chunks(chunks) -> tuple[int, np.ndarray]:
    """Consecutive chunks as one (sample_rate, float32 samples) block, at the first chunk's rate (pieces spoken
    by different engines, edge-tts at 24 kHz and Piper at 22.05 kHz, are resampled)."""
    from audio.decode import decode_array

    rate = chunks[0].sample_rate
    parts = [c.samples if c.sample_rate == rate else decode_array(c.sample_rate, c.samples, rate) for c in chunks]
    return rate, np.concatenate(parts)


class Speaker(Protocol):
    """Turns text into audio chunks. Implementations are safe to share between sessions."""

    @property
    def description(self) -> str:
        """What speaks, for the status line: `edge-tts en-US-AriaNeural`."""
        ...

    def voices(self) -> list[str]:
        ...

    def speak(self, text: str, options: VoiceOptions) -> Iterator[SpeechChunk]:
        """Audio for `text`, in order. Raises on failure before or while yielding."""
        ...


def short_reason(error: BaseException) -> str:
    """One readable line for a failure, without the noise some libraries put in their messages."""
    if isinstance(error, TimeoutError):
        return "timed out"
    message = re.sub(r"\s*ssl:<[^>]*>|\s*ssl:default", "", str(error)).strip()
    return f"{type(error).__name__}: {message}"[:160] if message else type(error).__name__


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


def create_speaker(engine: str, *, voice: str, voices: tuple[str, ...], pitch_hz: int, connect_timeout_s: float,
                   receive_timeout_s: float, retry_after_s: float, fallback: str, piper_model: str,
                   piper_arena: bool = False, proxy: str = "") -> Speaker:
    """The configured engine, wrapped with the Piper fallback when the engine is an online one."""
    from audio.piper_speaker import PiperSpeaker

    if engine == "piper":
        return PiperSpeaker(piper_model, arena=piper_arena)
    if engine == "edge-tts":
        from audio.edge_speaker import EdgeSpeaker

        edge = EdgeSpeaker(voice, voices, pitch_hz=pitch_hz, connect_timeout_s=connect_timeout_s,
                           receive_timeout_s=receive_timeout_s, proxy=proxy)
        if fallback == "none":
            return edge
        return FallbackSpeaker(edge, PiperSpeaker(piper_model, arena=piper_arena), retry_after_s)
    raise ValueError(f"unknown text-to-speech engine {engine!r} (use edge-tts or piper)")
