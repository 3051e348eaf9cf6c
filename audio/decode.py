"""Decode any audio the browser or a user sends into what Whisper reads: 16 kHz mono float32.

PyAV (FFmpeg's libraries, a faster-whisper dependency) reads WAV, WebM/Opus, Ogg, MP3, M4A/AAC, FLAC at any
rate and channel count without an ffmpeg binary, about 10x faster than going through pydub.

A small file can hold hours (2 h of Opus silence at 6 kbit/s is 4.4 MB): with `max_seconds`, frames are decoded
one by one and decoding stops at the limit, so time and memory are those of the limit, not of the file. The
duration a header claims only sizes the first buffer: a header may claim seconds and carry hours, or the reverse.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from pathlib import Path

import av
import numpy as np

SAMPLE_RATE = 16_000  # Hz; Whisper's input rate
# With max_seconds, this much more is decoded, so that a result longer than max_seconds tells the caller the
# file went on (and was cut), while a file exactly at the limit comes back whole.
OVERRUN_S = 1.0
# The first buffer holds what the header claims, within these bounds (30 s where it claims nothing); it doubles as
# needed, so a header claiming hours or days reserves no more than the limit or 10 minutes.
_FIRST_BUFFER_S = 30.0
_FIRST_BUFFER_MAX_S = 600.0


class AudioDecodeError(ValueError):
    """The input is not audio we can read; the message is fit to show the user."""


def _resampled(frames: Iterable[av.AudioFrame], rate: int) -> Iterator[np.ndarray]:
    """Decoded frames, one at a time, as mono float32 at `rate` Hz; the resampler's tail last."""
    resampler = av.AudioResampler(format="flt", layout="mono", rate=rate)
    for frame in frames:
        for out in resampler.resample(frame):
            yield out.to_ndarray().reshape(-1)
    for out in resampler.resample(None):
        yield out.to_ndarray().reshape(-1)


def _grown(buffer: np.ndarray, size: int, needed: int, limit: int | None) -> np.ndarray:
    """A larger buffer holding the first `size` samples of `buffer`: twice as large, or as needed, up to `limit`."""
    capacity = max(2 * len(buffer), needed)
    grown = np.empty(capacity if limit is None else min(capacity, limit), dtype=np.float32)
    grown[:size] = buffer[:size]
    return grown


def _gather(chunks: Iterator[np.ndarray], first_size: int, limit: int | None) -> np.ndarray:
    """Chunks into one float32 array, at most `limit` samples (None: all); reading stops at the limit.

    The buffer starts at `first_size` samples and doubles when a file holds more than that, never past `limit`.
    """
    buffer = np.empty(first_size if limit is None else min(first_size, limit), dtype=np.float32)
    size = 0
    for chunk in chunks:
        if limit is not None:
            chunk = chunk[: limit - size]
        if size + len(chunk) > len(buffer):
            buffer = _grown(buffer, size, size + len(chunk), limit)
        buffer[size:size + len(chunk)] = chunk
        size += len(chunk)
        if limit is not None and size >= limit:
            break
    return buffer if size == len(buffer) else buffer[:size].copy()  # a copy gives back the unused room


def _claimed_seconds(container: av.container.InputContainer, stream: av.audio.stream.AudioStream) -> float | None:
    """The duration the file's header states (stream, else container), or None where it states none."""
    if stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / av.time_base
    return None


def _first_buffer_size(claimed_s: float | None, rate: int) -> int:
    seconds = claimed_s if claimed_s is not None and claimed_s > 0 else _FIRST_BUFFER_S
    return max(int(min(seconds, _FIRST_BUFFER_MAX_S) * rate), 1)


def _decode(container: av.container.InputContainer, rate: int, limit: int | None) -> np.ndarray:
    """The first audio track, frame by frame, into at most `limit` samples at `rate` Hz (None: all of it)."""
    stream = container.streams.audio[0]
    first_size = _first_buffer_size(_claimed_seconds(container, stream), rate)
    return _gather(_resampled(container.decode(stream), rate), first_size, limit)


def decode_file(path: str | Path, rate: int = SAMPLE_RATE, max_seconds: float | None = None) -> np.ndarray:
    """Read an audio file of any common format into mono float32 samples in [-1, 1] at `rate` Hz.

    With `max_seconds`, decoding stops after `max_seconds + OVERRUN_S`, however long the file claims or turns out
    to be: a result longer than `max_seconds` means the file was longer, and the caller cuts it (and says so).
    """
    path = Path(path)
    if not path.is_file():
        raise AudioDecodeError(f"audio file not found: {path.name}")
    if path.stat().st_size == 0:
        raise AudioDecodeError("the audio file is empty (0 bytes)")
    limit = None if max_seconds is None else int((max_seconds + OVERRUN_S) * rate)
    try:
        with av.open(str(path), metadata_errors="ignore") as container:
            if not container.streams.audio:
                raise AudioDecodeError(f"{path.name} holds no audio track")
            samples = _decode(container, rate, limit)
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
            return _decode(container, rate, limit=None)
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
    return _gather(_resampled([frame], rate), first_size=int(mono.size * rate / sample_rate) + 1, limit=None)


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
