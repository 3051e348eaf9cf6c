"""openai-whisper transcriber: the reference implementation the design names.

"embedded" converts the bundled CTranslate2 tiny.en into an openai-whisper checkpoint once (cached).
openai-whisper has no VAD of its own; with `vad_filter` the Silero VAD that ships with faster-whisper cuts the
silence first, so silence alone yields an empty transcript rather than a hallucination.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from audio.packages import embedded_whisper_dir, require
from audio.stt.base import Transcript, audio_seconds, model_label
from audio.stt.whisper_convert import convert_ct2_to_openai

if TYPE_CHECKING:
    from chatbot.config import STTConfig

log = logging.getLogger(__name__)


def embedded_openai_checkpoint(cache_dir: Path) -> Path:
    """The openai-whisper checkpoint of the embedded tiny.en, converted on first use."""
    target = cache_dir / "openai-whisper" / "tiny.en-from-ct2.pt"
    if not target.exists():
        log.info("converting the embedded Whisper tiny.en to an openai-whisper checkpoint at %s", target)
        convert_ct2_to_openai(embedded_whisper_dir(), target)
    return target


def speech_only(audio: np.ndarray) -> np.ndarray:
    """The audio with silence removed by Silero VAD (from faster-whisper); empty if there is no speech."""
    vad = require("faster_whisper.vad", "faster-whisper", "Voice activity detection")
    chunks = vad.get_speech_timestamps(audio, vad.VadOptions())
    if not chunks:
        return audio[:0]
    speech_chunks, _metadata = vad.collect_chunks(audio, chunks)
    return np.concatenate(speech_chunks)


class OpenAIWhisperTranscriber:
    def __init__(self, model: str, device: str, cfg: STTConfig, cache_dir: Path):
        """`model`: "embedded", a Whisper name or a path. openai-whisper runs fp16 on CUDA, fp32 on CPU."""
        whisper = require("whisper", "openai-whisper", "The openai-whisper engine")
        if model == "embedded":
            source, label = str(embedded_openai_checkpoint(cache_dir)), "tiny.en"
        else:
            source, label = model, model_label(model)
        self._model = whisper.load_model(source, device=device, download_root=str(cache_dir / "openai-whisper"))
        self._device = device
        self._language = cfg.language
        self._vad_filter = cfg.vad_filter
        self._beam_size = cfg.beam_size
        self._lock = threading.Lock()  # a torch module decoding with its own kv-cache hooks: one call at a time
        precision = "fp16" if device == "cuda" else "fp32"
        self.description = f"openai-whisper {label} · {device} {precision}"

    def languages(self) -> list[str]:
        if not self._model.is_multilingual:
            return ["en"]
        from whisper.tokenizer import LANGUAGES

        return ["auto", *LANGUAGES]

    def transcribe(self, audio: np.ndarray, language: str | None = None, *, voiced: bool = False) -> Transcript:
        language = language or self._language
        speech = speech_only(audio) if self._vad_filter and not voiced else audio
        if speech.size == 0:
            return Transcript(text="", language=language if language != "auto" else "", audio_s=audio_seconds(audio))
        options = {"fp16": self._device == "cuda", "condition_on_previous_text": False}
        if language != "auto":
            options["language"] = language
        if self._beam_size > 1:
            options["beam_size"] = self._beam_size
        with self._lock:
            result = self._model.transcribe(speech, **options)
        return Transcript(text=result["text"].strip(), language=result.get("language", ""),
                          audio_s=audio_seconds(audio))
