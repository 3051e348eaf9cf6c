"""faster-whisper (CTranslate2) transcriber: the default, several times faster than openai-whisper on CPU."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from audio.packages import embedded_whisper_dir, require
from audio.stt.base import Transcript, audio_seconds, model_label

if TYPE_CHECKING:
    from chatbot.config import STTConfig


class FasterWhisperTranscriber:
    def __init__(self, model: str, device: str, cfg: STTConfig, cache_dir: Path):
        """`model`: "embedded", a Whisper name or a path (already chosen from cfg.model / cfg.gpu_model)."""
        faster_whisper = require("faster_whisper", "faster-whisper", "The faster-whisper engine")
        if model == "embedded":
            source, label = str(embedded_whisper_dir()), "tiny.en"
        else:
            source, label = model, model_label(model)
        compute_type = cfg.compute_type
        if compute_type == "auto":
            compute_type = "float16" if device == "cuda" else "int8"
        self._model = faster_whisper.WhisperModel(source, device=device, compute_type=compute_type,
                                                  download_root=str(cache_dir / "faster-whisper"))
        self._language = cfg.language
        self._vad_filter = cfg.vad_filter
        self._beam_size = cfg.beam_size
        self._lock = threading.Lock()  # one decode at a time per model: CPU cores are the bottleneck anyway
        self.description = f"faster-whisper {label} · {device} {compute_type}"

    def languages(self) -> list[str]:
        codes = self._model.supported_languages
        return ["auto", *codes] if len(codes) > 1 else list(codes)

    def transcribe(self, audio: np.ndarray, language: str | None = None) -> Transcript:
        language = language or self._language
        with self._lock:
            segments, info = self._model.transcribe(
                audio,
                language=None if language == "auto" else language,
                beam_size=self._beam_size,
                vad_filter=self._vad_filter,
                condition_on_previous_text=False,  # a short utterance: no drift from earlier windows
            )
            text = " ".join(segment.text.strip() for segment in segments)  # segments decode lazily
        return Transcript(text=text.strip(), language=info.language, audio_s=audio_seconds(audio))
