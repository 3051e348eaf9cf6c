"""Speech-to-text: the interface every engine implements, and what it returns."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from audio.decode import SAMPLE_RATE


@dataclass(frozen=True)
class Transcript:
    text: str  # stripped; "" when no speech was found
    language: str  # ISO code, detected or fixed
    audio_s: float  # length of the audio that was transcribed


class Transcriber(Protocol):
    """Turns 16 kHz mono float32 audio into text. Implementations are safe to share between sessions."""

    @property
    def description(self) -> str:
        """What runs and where, for the status line: `faster-whisper tiny.en · cpu int8`."""
        ...

    def transcribe(self, audio: np.ndarray, language: str | None = None, *, voiced: bool = False) -> Transcript:
        """`language`: an ISO code, or None for the configured default ("auto" detects). `voiced`: the audio is
        known to hold speech (the microphone listener's VAD heard it), so no silence needs cutting first."""
        ...

    def languages(self) -> list[str]:
        """What `language` may be: ["en"] for English-only models, else "auto" and the ISO codes."""
        ...


def audio_seconds(audio: np.ndarray) -> float:
    return len(audio) / SAMPLE_RATE


def model_label(model: str) -> str:
    """A short name for a model given as a name or a path (`tiny.en`, `my-model`)."""
    return Path(model).name if ("/" in model or "\\" in model) else model
