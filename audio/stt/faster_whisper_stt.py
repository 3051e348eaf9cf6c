"""faster-whisper (CTranslate2) transcriber: the default, several times faster than openai-whisper on CPU.

Whisper's encoder always sees a 30 s window; a 3 s question padded with 27 s of silence costs most of the
time (0.24 of 0.36 s with tiny.en on 2 cores). For speech the microphone listener heard, in a known language,
the encoder is given the audio plus `window_margin_s` instead (CTranslate2 takes any length up to 30 s), and the
words are decoded greedily from that. Whisper was trained on 30 s windows, so an output that looks like a
hallucination (it repeats itself, or runs longer than the audio can hold) is decoded again the usual way.
"""

from __future__ import annotations

import logging
import math
import re
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from audio.packages import embedded_whisper_dir, require
from audio.stt.base import Transcript, audio_seconds, model_label

if TYPE_CHECKING:
    from chatbot.config import STTConfig

log = logging.getLogger(__name__)

WINDOW_S = 30.0  # Whisper's window
FRAMES_PER_S = 100  # mel frames per second of audio
MAX_TOKENS_PER_S = 8  # more text than this per second of audio is not speech: a fitted window's output is retried
MIN_TOKENS = 12  # ...with at least this many tokens allowed for a very short clip
MAX_COMPRESSION_RATIO = 2.4  # faster-whisper's own threshold for output that repeats itself
REPEATED_WORDS = 3  # ...and, for a short output, the same run of this many words said twice


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
        self._margin_s = cfg.window_margin_s
        self._lock = threading.Lock()  # one decode at a time per model: CPU cores are the bottleneck anyway
        self.description = f"faster-whisper {label} · {device} {compute_type}"

    def languages(self) -> list[str]:
        codes = self._model.supported_languages
        return ["auto", *codes] if len(codes) > 1 else list(codes)

    def transcribe(self, audio: np.ndarray, language: str | None = None, *, voiced: bool = False) -> Transcript:
        language = language or self._language
        if not self._model.model.is_multilingual:
            language = "en"
        with self._lock:
            if voiced and language != "auto" and self._fits(audio):
                text = self._fitted(audio, language)
                if text is not None:
                    return Transcript(text=text, language=language, audio_s=audio_seconds(audio))
            segments, info = self._model.transcribe(
                audio,
                language=None if language == "auto" else language,
                beam_size=self._beam_size,
                vad_filter=self._vad_filter and not voiced,
                condition_on_previous_text=False,  # a short utterance: no drift from earlier windows
            )
            text = " ".join(segment.text.strip() for segment in segments)  # segments decode lazily
        return Transcript(text=text.strip(), language=info.language, audio_s=audio_seconds(audio))

    def _fits(self, audio: np.ndarray) -> bool:
        return self._margin_s > 0 and audio_seconds(audio) + self._margin_s <= WINDOW_S

    def _fitted(self, audio: np.ndarray, language: str) -> str | None:
        """The words in `audio`, the encoder given only it and the margin; None if they look hallucinated."""
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_compression_ratio, get_ctranslate2_storage, get_suppressed_tokens

        model = self._model
        features = model.feature_extractor(audio)[:, :-1]  # the last frame is padding (as faster-whisper drops it)
        frames = features.shape[-1] + int(self._margin_s * FRAMES_PER_S)
        frames = min(int(WINDOW_S * FRAMES_PER_S), math.ceil(frames / FRAMES_PER_S) * FRAMES_PER_S)
        window = np.zeros((features.shape[0], frames), dtype=features.dtype)
        window[:, : features.shape[-1]] = features
        tokenizer = Tokenizer(model.hf_tokenizer, model.model.is_multilingual, task="transcribe", language=language)
        prompt = [*tokenizer.sot_sequence, tokenizer.no_timestamps]
        allowed = max(MIN_TOKENS, int(MAX_TOKENS_PER_S * audio_seconds(audio)))
        result = model.model.generate(get_ctranslate2_storage(window[None]), [prompt], beam_size=self._beam_size,
                                      max_length=len(prompt) + allowed + 1,  # (+1: it counts the end too)
                                      suppress_blank=True,
                                      suppress_tokens=list(get_suppressed_tokens(tokenizer, [-1])))[0]
        ids = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        text = _without_restart(tokenizer.decode(ids).strip())
        if len(ids) >= allowed or _repeats_itself(text) or (text and get_compression_ratio(text) > MAX_COMPRESSION_RATIO):
            log.info("speech to text: the fitted window's output looks hallucinated (%d tokens for %.1f s); "
                     "decoding the full window", len(ids), audio_seconds(audio))
            return None
        return text


def _without_restart(text: str) -> str:
    """A short window's decoding often starts the sentence over once it is done ("What color is the sky? What
    color"): a last fragment that repeats the opening words is dropped."""
    cut = max((m.end() for m in re.finditer(r"[.?!]+\s+", text)), default=0)
    opening, tail = re.findall(r"[\w']+", text[:cut].lower()), re.findall(r"[\w']+", text[cut:].lower())
    return text[:cut].strip() if cut and tail and opening[:len(tail)] == tail else text


def _repeats_itself(text: str) -> bool:
    """A run of REPEATED_WORDS words said twice ("I would like to know that I would like to"): a short window's
    typical hallucination, too short for the compression ratio to notice."""
    words = re.findall(r"[\w']+", text.lower())
    runs = [tuple(words[i:i + REPEATED_WORDS]) for i in range(len(words) - REPEATED_WORDS + 1)]
    return len(runs) != len(set(runs))
