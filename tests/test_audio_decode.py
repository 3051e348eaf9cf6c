import time

import numpy as np
import pytest

from audio.decode import OVERRUN_S, SAMPLE_RATE, AudioDecodeError, decode_array, decode_file
from tests.media import claimed_and_carried_s, encode, long_opus, wav_claiming, with_claimed_duration, write_wav
from tests.memory import ResidentMemory

TONE_S = 1.5
LIMIT_S = 120.0  # limits.max_audio_s in config.yaml
HOURS_S = 2 * 3600.0  # issue 17: a 2-hour Opus file of silence is 4.4 MB, under server.max_upload_mb
# Decoding up to the limit holds (LIMIT_S + OVERRUN_S) * 16000 * 4 bytes = 7.7 MB of samples; the whole 2 hours
# took 6 s and 880 MB here. Bounds with room for a slow, shared machine:
DECODE_MAX_S = 2.0
DECODE_MAX_PEAK_MB = 50.0


def tone(rate: int, seconds: float = TONE_S) -> np.ndarray:
    t = np.arange(int(rate * seconds)) / rate
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize("name,codec,rate,layout", [
    ("clip.webm", "libopus", 48000, "stereo"),  # what Chrome's MediaRecorder sends
    ("clip.ogg", "libopus", 48000, "mono"),  # Firefox
    ("clip.mp3", "libmp3lame", 44100, "stereo"),
    ("clip.m4a", "aac", 44100, "mono"),  # Safari / iPhone voice memos
])
def test_browser_and_upload_formats_decode_to_16k_mono_float(tmp_path, name, codec, rate, layout):
    path = encode(tmp_path / name, rate, tone(rate), codec, rate, layout)
    audio = decode_file(path)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert abs(len(audio) / SAMPLE_RATE - TONE_S) < 0.15  # codecs pad a few frames
    assert 0.2 < np.abs(audio).max() <= 1.0


@pytest.mark.parametrize("rate,channels", [(8000, 1), (48000, 2), (22050, 1)])
def test_wav_of_any_rate_and_channels(tmp_path, rate, channels):
    audio = decode_file(write_wav(tmp_path / "clip.wav", rate, tone(rate), channels))
    assert len(audio) == pytest.approx(TONE_S * SAMPLE_RATE, abs=20)


def test_numpy_audio_from_the_browser_is_resampled():
    stereo = (np.stack([tone(48000), tone(48000)], axis=1) * 32767).astype(np.int16)
    audio = decode_array(48000, stereo)
    assert audio.dtype == np.float32 and len(audio) == pytest.approx(TONE_S * SAMPLE_RATE, abs=20)


def test_empty_and_non_audio_files_give_clear_errors(tmp_path):
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(AudioDecodeError, match="empty"):
        decode_file(empty)
    garbage = tmp_path / "notes.mp3"
    garbage.write_bytes(b"this is a text file pretending to be audio\n" * 50)
    with pytest.raises(AudioDecodeError, match="notes.mp3"):
        decode_file(garbage)
    with pytest.raises(AudioDecodeError, match="not found"):
        decode_file(tmp_path / "missing.wav")


def decode_within_bounds(path) -> np.ndarray:
    """The file decoded with limits.max_audio_s, asserting the time and the peak memory it took."""
    with ResidentMemory() as memory:
        started = time.perf_counter()
        audio = decode_file(path, max_seconds=LIMIT_S)
        elapsed = time.perf_counter() - started
    assert elapsed < DECODE_MAX_S, f"{elapsed:.1f} s to decode {path.name}"
    assert memory.peak_mb < DECODE_MAX_PEAK_MB, f"peak resident memory grew {memory.peak_mb:.0f} MB"
    return audio


def test_a_recording_within_the_limit_comes_back_whole_and_a_longer_one_stops_just_past_it(tmp_path):
    path = write_wav(tmp_path / "clip.wav", SAMPLE_RATE, tone(SAMPLE_RATE, seconds=3.0))
    assert len(decode_file(path, max_seconds=5.0)) == 3 * SAMPLE_RATE
    # Past the limit the caller gets a little more than max_seconds: that it was longer, and what to cut.
    assert len(decode_file(path, max_seconds=1.0)) == (1.0 + OVERRUN_S) * SAMPLE_RATE


@pytest.mark.parametrize("suffix", [".webm", ".ogg"])
def test_hours_of_opus_in_a_small_file_decode_only_up_to_the_limit(tmp_path, suffix):
    path = long_opus(tmp_path / f"two-hours{suffix}", HOURS_S)
    assert path.stat().st_size < 5e6
    assert claimed_and_carried_s(path)[1] >= HOURS_S  # the packets really hold two hours
    audio = decode_within_bounds(path)
    assert len(audio) == (LIMIT_S + OVERRUN_S) * SAMPLE_RATE and audio.dtype == np.float32


def test_a_header_claiming_one_second_that_carries_hours_is_cut_at_the_limit(tmp_path):
    path = with_claimed_duration(long_opus(tmp_path / "lying.webm", HOURS_S), seconds=1.0)
    claimed, carried = claimed_and_carried_s(path)
    assert claimed == pytest.approx(1.0) and carried >= HOURS_S
    assert len(decode_within_bounds(path)) == (LIMIT_S + OVERRUN_S) * SAMPLE_RATE


def test_a_wav_of_unknown_length_that_carries_hours_is_cut_at_the_limit(tmp_path):
    path = wav_claiming(tmp_path / "streamed.wav", rate=1000, claimed_s=None, carried_s=HOURS_S)
    assert len(decode_within_bounds(path)) == (LIMIT_S + OVERRUN_S) * SAMPLE_RATE


def test_a_header_claiming_hours_that_carries_one_second_gives_that_second(tmp_path):
    opus = with_claimed_duration(encode(tmp_path / "short.webm", 48000, tone(48000), "libopus", 48000), 10 * 3600)
    assert claimed_and_carried_s(opus)[0] == pytest.approx(10 * 3600)
    assert abs(len(decode_within_bounds(opus)) / SAMPLE_RATE - TONE_S) < 0.15
    wav = wav_claiming(tmp_path / "short.wav", rate=8000, claimed_s=HOURS_S, carried_s=1.0)
    assert len(decode_within_bounds(wav)) == SAMPLE_RATE


def test_a_wav_header_claiming_one_second_is_read_for_that_second_only(tmp_path):
    """FFmpeg's WAV reader stops where the header says the data ends, whatever follows."""
    path = wav_claiming(tmp_path / "claims-a-second.wav", rate=1000, claimed_s=1.0, carried_s=HOURS_S)
    assert path.stat().st_size > HOURS_S * 1000
    assert len(decode_within_bounds(path)) == SAMPLE_RATE
