"""Real audio for tests: speech from Piper, files in the formats browsers and users send, and WER."""

from __future__ import annotations

import re
import struct
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


# -- audio that decodes to hours, made in a fraction of a second ----------------------------------------------------

OPUS_RATE = 48_000  # Hz: what libopus encodes
_OPUS_FRAME = 5_760  # samples: 120 ms, libopus's longest frame, so that hours take few packets
_OPUS_BITRATE = 6_000  # bit/s, as in issue 17's 4.4 MB two-hour file; speech wants 16 kbit/s to stay clear


def long_opus(path: Path, silence_s: float, lead: tuple[int, np.ndarray] | None = None,
              bitrate: int = _OPUS_BITRATE) -> Path:
    """`lead` audio (rate, samples; e.g. a spoken question) if given, then `silence_s` of Opus silence, in WebM or
    Ogg by the suffix. The silence is one encoded packet muxed again and again: 2 hours take 0.1 s and 2 MB at
    6 kbit/s, 6.6 MB at 16 kbit/s (ffmpeg encoding them takes 49 s)."""
    lead_pcm = np.zeros(0, dtype=np.int16)
    if lead is not None:
        lead_pcm = (np.clip(resample(lead[0], lead[1], OPUS_RATE), -1, 1) * 32767).astype(np.int16)
    frames = [lead_pcm[i:i + _OPUS_FRAME] for i in range(0, len(lead_pcm), _OPUS_FRAME)]
    frames = [np.pad(f, (0, _OPUS_FRAME - len(f))) for f in frames] + [np.zeros(_OPUS_FRAME, np.int16)] * 3
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libopus", rate=OPUS_RATE, options={"frame_duration": "120", "b": str(bitrate)})
        stream.layout = "mono"
        pts, silent, next_pts = 0, b"", 0
        for block in frames:  # the lead, then a few silent frames: the encoder settles on a silent packet
            frame = av.AudioFrame.from_ndarray(block.reshape(1, -1), format="s16", layout="mono")
            frame.sample_rate, frame.pts, frame.time_base = OPUS_RATE, pts, Fraction(1, OPUS_RATE)
            pts += _OPUS_FRAME
            for packet in stream.encode(frame):
                silent, next_pts = bytes(packet), int(packet.pts * packet.time_base * OPUS_RATE) + _OPUS_FRAME
                container.mux(packet)  # (which rescales its time stamps to the container's)
        for i in range(int(silence_s * OPUS_RATE / _OPUS_FRAME)):
            repeat = av.Packet(silent)
            repeat.stream, repeat.time_base = stream, Fraction(1, OPUS_RATE)
            repeat.pts = repeat.dts = next_pts + i * _OPUS_FRAME
            repeat.duration = _OPUS_FRAME
            container.mux(repeat)
    return path


def with_claimed_duration(path: Path, seconds: float) -> Path:
    """A WebM (Matroska) file rewritten in place so that its header claims `seconds`, whatever it carries."""
    data = path.read_bytes()
    duration = b"\x44\x89\x88"  # the Segment Info's Duration element: its ID, then "8 bytes" (a double, in ms)
    at = data.find(duration)
    assert at > 0 and data.count(duration) == 1, "no single Duration element in this file"
    at += len(duration)
    path.write_bytes(data[:at] + struct.pack(">d", seconds * 1000) + data[at + 8:])
    return path


def wav_claiming(path: Path, rate: int, claimed_s: float | None, carried_s: float) -> Path:
    """An 8-bit mono WAV of silence whose header claims `claimed_s` (None: "unknown length", 0xFFFFFFFF, as
    recorders that stream write it) and that carries `carried_s`."""
    claimed = 0xFFFFFFFF if claimed_s is None else int(claimed_s * rate)
    header = (b"RIFF" + struct.pack("<I", min(36 + claimed, 0xFFFFFFFF)) + b"WAVE"
              + b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, rate, rate, 1, 8)
              + b"data" + struct.pack("<I", claimed))
    second = b"\x80" * rate  # 8-bit WAV is unsigned: 128 is silence
    with open(path, "wb") as f:
        f.write(header)
        for _ in range(int(carried_s)):
            f.write(second)
    return path


def claimed_and_carried_s(path: Path) -> tuple[float | None, float]:
    """(what the header says, what the packets hold) in seconds; the packets are read, not decoded."""
    with av.open(str(path)) as container:
        stream = container.streams.audio[0]
        claimed = container.duration / av.time_base if container.duration else None
        carried = sum(p.duration or 0 for p in container.demux(stream)) * stream.time_base
    return claimed, float(carried)
