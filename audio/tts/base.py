"""Text-to-speech: the interface every engine implements, and the chunk of audio it hands out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterator, Protocol

import numpy as np

from audio.decode import decode_array


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
