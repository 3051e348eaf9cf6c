"""Decode any audio the browser or a user sends into what Whisper reads: 16 kHz mono float32.

PyAV (FFmpeg's libraries, a faster-whisper dependency) reads WAV, WebM/Opus, Ogg, MP3, M4A/AAC, FLAC at any
rate and channel count without an ffmpeg binary, about 10x faster than going through pydub.
"""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 16_000  # Hz; Whisper's input rate


class AudioDecodeError(ValueError):
    """The input is not audio we can read; the message is fit to show the user."""


def _resample(frames, rate: int) -> np.ndarray:
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    parts = []
    for frame in frames:
        parts.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(frame))
    parts.extend(out.to_ndarray().reshape(-1) for out in resampler.resample(None))
    if not parts:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(parts).astype(np.float32, copy=False)


def decode_file(path: str | Path, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Read an audio file of any common format into mono float32 samples in [-1, 1] at `rate` Hz."""
    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError(f"audio file not found: {path.name}")
    if path.stat().st_size == 0:
        raise AudioDecodeError("the audio file is empty (0 bytes)")
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioDecodeError(f"{path.name} holds no audio track")
            samples = _resample(container.decode(audio=0), rate)
    except av.error.FFmpegError as e:
        raise AudioDecodeError(f"{path.name} is not a readable audio file ({e.strerror or e})") from e
    if samples.size == 0:  # a header and nothing after it: a recording cut off before it began
        raise AudioDecodeError(f"{path.name} holds no sound (0 seconds of audio)")
    return samples


def decode_bytes(data: bytes, rate: int) -> np.ndarray:
    """Encoded audio held in memory (an MP3 stream from a TTS service, say) as mono float32 at `rate` Hz."""
    if not data:
        raise AudioDecodeError("no audio data")
    try:
        with av.open(io.BytesIO(data), metadata_errors="ignore") as container:
            return _resample(container.decode(audio=0), rate)
    except av.error.FFmpegError as e:
        raise AudioDecodeError(f"audio data is not readable ({e.strerror or e})") from e


def to_float_mono(samples: np.ndarray) -> np.ndarray:
    """int16/int32/float samples, (n,) or (n, channels), as mono float32 in [-1, 1]."""
    samples = np.asarray(samples)
    if samples.dtype == np.int16:
        mono = samples.astype(np.float32) / 32768.0
    elif samples.dtype == np.int32:
        mono = samples.astype(np.float32) / 2147483648.0
    else:
        mono = samples.astype(np.float32, copy=False)
    if mono.ndim == 2:
        # Gradio gives (n, channels); a (channels, n) array with a few rows is transposed first.
        if mono.shape[0] < mono.shape[1] and mono.shape[0] <= 8:
            mono = mono.T
        mono = mono.mean(axis=1)
    return mono


def decode_array(sample_rate: int, samples: np.ndarray, rate: int = SAMPLE_RATE) -> np.ndarray:
    """(sample_rate, samples) as Gradio's numpy audio gives it, resampled to mono float32 at `rate` Hz."""
    mono = to_float_mono(samples)
    if sample_rate == rate or mono.size == 0:
        return mono
    frame = av.AudioFrame.from_ndarray(mono.reshape(1, -1), format="flt", layout="mono")
    frame.sample_rate = sample_rate
    return _resample([frame], rate)


def to_pcm16(samples: np.ndarray) -> np.ndarray:
    """Mono float32 in [-1, 1] as 16-bit PCM: the one conversion, for a WAV file or the browser's player."""
    return (np.clip(samples, -1.0, 1.0) * 32767.0).astype("<i2")


class StreamResampler:
    """The chunks of one live stream (a microphone) as mono float32 at `rate`, through one resampler that keeps
    its filter state from chunk to chunk: the same samples as resampling the whole stream at once, less the
    last few still inside the filter. (`decode_array` on each chunk restarts the filter every chunk: a click at
    every boundary, noise at -15 dB in 20-100 ms chunks at 48 kHz, and 4 ms a chunk against 0.1 ms.)"""

    def __init__(self, rate: int = SAMPLE_RATE):
        self._rate = rate
        self._source_rate: int | None = None
        self._resampler: av.AudioResampler | None = None

    def push(self, sample_rate: int, samples: np.ndarray) -> np.ndarray:
        """(sample_rate, samples) as Gradio's numpy audio gives it -> the new mono float32 samples at `rate`."""
        mono = to_float_mono(samples)
        if sample_rate != self._source_rate:  # the first chunk, or the browser changed its rate
            self._source_rate = sample_rate
            self._resampler = None if sample_rate == self._rate else av.AudioResampler(
                format="flt", layout="mono", rate=self._rate)
        if self._resampler is None or mono.size == 0:
            return mono
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(mono).reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = sample_rate
        parts = [out.to_ndarray().reshape(-1) for out in self._resampler.resample(frame)]
        return np.concatenate(parts).astype(np.float32, copy=False) if parts else np.zeros(0, dtype=np.float32)
