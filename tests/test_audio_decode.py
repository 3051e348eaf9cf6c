import numpy as np
import pytest

from audio.decode import SAMPLE_RATE, AudioDecodeError, decode_array, decode_file
from tests.media import encode, write_wav

TONE_S = 1.5


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
