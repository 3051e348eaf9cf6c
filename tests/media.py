"""Real audio for tests: speech from Piper, files in the formats browsers and users send, and WER."""

from __future__ import annotations

import re
import wave
from fractions import Fraction
from pathlib import Path

import av
import numpy as np

# Sentences without digits: Whisper writes numbers as digits, which would count as word errors.
SENTENCES = [
    "The quick brown fox jumps over the lazy dog.",
    "Please remind me to water the plants tomorrow morning.",
    "What is the weather like in London today?",
    "Could you explain how a rainbow forms in the sky?",
    "I would like to book a quiet table by the window.",
]


def speak(piper, text: str) -> tuple[int, np.ndarray]:
    from audio.tts.base import VoiceOptions

    chunks = list(piper.speak(text, VoiceOptions()))
    return chunks[0].sample_rate, np.concatenate([c.samples for c in chunks])


def write_wav(path: Path, rate: int, samples: np.ndarray, channels: int = 1) -> Path:
    pcm = (np.clip(samples, -1, 1) * 32767).astype("<i2")
    if channels == 2:
        pcm = np.stack([pcm, pcm], axis=1).reshape(-1)
    with wave.open(str(path), "wb") as w:
        w.setnchannels(channels)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(pcm.tobytes())
    return path


def resample(rate: int, samples: np.ndarray, new_rate: int) -> np.ndarray:
    from audio.decode import decode_array

    return decode_array(rate, samples, rate=new_rate)


def encode(path: Path, rate: int, samples: np.ndarray, codec: str, out_rate: int, layout: str = "mono") -> Path:
    """Encode float32 mono samples with PyAV: ('libopus', 48000) in .webm/.ogg, ('libmp3lame', 44100) in .mp3..."""
    samples = resample(rate, samples, out_rate)
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=out_rate)
        stream.layout = layout
        fmt = stream.codec_context.format.name
        channels = 2 if layout == "stereo" else 1
        frame_size = stream.codec_context.frame_size or 1024
        pts = 0
        for start in range(0, len(samples), frame_size):
            block = samples[start:start + frame_size]
            if len(block) < frame_size:
                block = np.pad(block, (0, frame_size - len(block)))
            data = np.repeat(block[None, :], channels, axis=0).astype(np.float32)
            if fmt.startswith("s16"):
                data = (data * 32767).astype(np.int16)
            elif fmt.startswith("s32"):
                data = (data * 2147483647).astype(np.int32)
            if not fmt.endswith("p"):  # packed: interleaved in one row
                data = data.T.reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(data, format=fmt, layout=layout)
            frame.sample_rate = out_rate
            frame.pts = pts
            frame.time_base = Fraction(1, out_rate)
            pts += frame_size
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode(None):
            container.mux(packet)
    return path


def words(text: str) -> list[str]:
    return re.sub(r"[^\w\s']", " ", text.lower()).split()


def wer(reference: str, hypothesis: str) -> float:
    """Word error rate: word-level edit distance over the reference's length."""
    ref, hyp = words(reference), words(hypothesis)
    previous = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        current = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (r != h))
        previous = current
    return previous[-1] / max(len(ref), 1)
