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


PAUSE_MARK = "|"  # in a sentence given to the *_with_pause helpers: where the speaker stops for a moment


def aligned_piper():
    """The embedded Piper voice loaded with phoneme alignments (its model patched in memory, needs `onnx`),
    so that the sample where each word ends is known."""
    import piper

    from audio.packages import embedded_piper_voice

    return piper.PiperVoice.load(str(embedded_piper_voice()), include_alignments=True)


def piper_with_pause(voice, text: str, pause_s: float) -> tuple[int, np.ndarray]:
    """One sentence spoken by Piper in one breath, with `pause_s` of silence cut in where `text` has PAUSE_MARK
    (between two words: the silence goes in the middle of the gap Piper left between them)."""
    before, mark, _after = text.partition(PAUSE_MARK)
    (chunk,) = list(voice.synthesize(" ".join(text.replace(PAUSE_MARK, " ").split()), include_alignments=True))
    if not mark:
        return chunk.sample_rate, chunk.audio_float_array
    words_before = len(before.split())
    position, spaces = 0, []
    for alignment in chunk.phoneme_alignments:
        if alignment.phoneme == " ":
            spaces.append(position + int(alignment.num_samples) // 2)
        position += int(alignment.num_samples)
    cut = spaces[words_before - 1]
    samples = chunk.audio_float_array
    silence = np.zeros(round(pause_s * chunk.sample_rate), dtype=np.float32)
    return chunk.sample_rate, np.concatenate([samples[:cut], silence, samples[cut:]])


def espeak_available() -> bool:
    import shutil

    return shutil.which("espeak-ng") is not None


def espeak(text: str, pause_s: float = 0.0) -> tuple[int, np.ndarray]:
    """`text` spoken by espeak-ng (US English, 150 words a minute); PAUSE_MARK becomes an SSML break of
    `pause_s` inside the sentence (espeak keeps the sentence's intonation across it)."""
    import subprocess
    import tempfile
    from xml.sax.saxutils import escape

    ssml = escape(text).replace(PAUSE_MARK, f'<break time="{round(pause_s * 1000)}ms"/>')
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "espeak.wav"
        subprocess.run(["espeak-ng", "-v", "en-us", "-s", "150", "-m", "-w", str(path), f"<speak>{ssml}</speak>"],
                       check=True, capture_output=True)
        with wave.open(str(path)) as w:
            rate = w.getframerate()
            pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return rate, pcm.astype(np.float32) / 32768.0


def _loud(rate: int, samples: np.ndarray, floor_db: float) -> tuple[int, np.ndarray]:
    """(hop, loud): for each 10 ms of `samples`, whether it is louder than `floor_db` below the loudest 10 ms."""
    hop = rate // 100
    frames = samples[: len(samples) // hop * hop].reshape(-1, hop)
    rms = np.sqrt((frames.astype(np.float64) ** 2).mean(axis=1))
    return hop, rms > rms.max() * 10 ** (floor_db / 20)


def speech_bounds(rate: int, samples: np.ndarray, floor_db: float = -35.0) -> tuple[float, float]:
    """(start, end) in seconds of the sound in `samples`: its first and last loud 10 ms."""
    hop, loud = _loud(rate, samples, floor_db)
    first, last = np.nonzero(loud)[0][[0, -1]]
    return first * hop / rate, (last + 1) * hop / rate


def silent_gaps(rate: int, samples: np.ndarray, min_s: float, floor_db: float = -35.0) -> list[tuple[float, float]]:
    """(start, end) in seconds of each quiet stretch of at least `min_s` between the first and last sound."""
    hop, loud = _loud(rate, samples, floor_db)
    first, last = np.nonzero(loud)[0][[0, -1]]
    gaps, start = [], None
    for i in range(first, last + 1):
        if not loud[i] and start is None:
            start = i
        elif loud[i] and start is not None:
            if (i - start) * hop / rate >= min_s:
                gaps.append((start * hop / rate, i * hop / rate))
            start = None
    return gaps
