"""Speech-to-text: one interface, two engines (faster-whisper, openai-whisper), one factory."""

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

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> Transcript:
        """`language`: an ISO code, or None for the configured default ("auto" detects)."""
        ...

    def languages(self) -> list[str]:
        """What `language` may be: ["en"] for English-only models, else "auto" and the ISO codes."""
        ...


def audio_seconds(audio: np.ndarray) -> float:
    return len(audio) / SAMPLE_RATE


def model_label(model: str) -> str:
    """A short name for a model given as a name or a path (`tiny.en`, `my-model`)."""
    return Path(model).name if ("/" in model or "\\" in model) else model


def create_transcriber(engine: str, model: str, device: str, *, language: str, vad_filter: bool,
                       beam_size: int, cache_dir: Path, compute_type: str = "auto") -> Transcriber:
    """Build the configured engine; `model` is "embedded", a model name, or a local path.

    `compute_type` applies to faster-whisper only (openai-whisper runs fp16 on CUDA, fp32 on CPU).
    """
    if engine == "faster-whisper":
        from audio.faster_whisper_stt import FasterWhisperTranscriber

        return FasterWhisperTranscriber(model, device, language=language, vad_filter=vad_filter,
                                        beam_size=beam_size, compute_type=compute_type, cache_dir=cache_dir)
    if engine == "openai-whisper":
        from audio.openai_whisper_stt import OpenAIWhisperTranscriber

        return OpenAIWhisperTranscriber(model, device, language=language, vad_filter=vad_filter,
                                        beam_size=beam_size, cache_dir=cache_dir)
    raise ValueError(f"unknown speech-to-text engine {engine!r} (use faster-whisper or openai-whisper)")
