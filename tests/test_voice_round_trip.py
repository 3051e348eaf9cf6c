"""Piper speaks known sentences; the app's own audio path decodes and transcribes them (both engines)."""

import dataclasses

import pytest

from audio.decode import decode_file
from chatbot.engines import build_transcriber
from tests.media import SENTENCES, encode, speak, wer, write_wav

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def spoken_files(piper, tmp_path_factory):
    """Each sentence as a browser would send it (48 kHz stereo WebM/Opus) and as a plain 22 kHz WAV."""
    folder = tmp_path_factory.mktemp("speech")
    files = []
    for i, sentence in enumerate(SENTENCES):
        rate, samples = speak(piper, sentence)
        path = (encode(folder / f"s{i}.webm", rate, samples, "libopus", 48000, "stereo") if i % 2 == 0
                else write_wav(folder / f"s{i}.wav", rate, samples))
        files.append((sentence, path))
    return files


@pytest.mark.parametrize("engine", ["faster-whisper", "openai-whisper"])
def test_voice_round_trip(engine, cfg, spoken_files, tmp_path_factory):
    # openai-whisper runs a checkpoint that this test converts from the bundled CTranslate2 tiny.en.
    cache = tmp_path_factory.mktemp(f"cache-{engine}")
    stt = dataclasses.replace(cfg.stt, engine=engine, model="embedded", language="auto", vad_filter=True, beam_size=5,
                              compute_type="int8")
    transcriber, _note = build_transcriber(stt, "cpu", cache)
    assert transcriber.description.startswith(f"{engine} tiny.en · cpu")
    if engine == "openai-whisper":
        assert (cache / "openai-whisper" / "tiny.en-from-ct2.pt").is_file()
    errors = []
    for sentence, path in spoken_files:
        transcript = transcriber.transcribe(decode_file(path))
        assert transcript.language == "en"
        errors.append(wer(sentence, transcript.text))
    mean = sum(errors) / len(errors)
    assert mean <= 0.1, f"{engine}: WER {mean:.3f} per sentence {errors}"


def test_silence_gives_an_empty_transcript_not_a_hallucination(engines):
    import numpy as np

    transcript = engines.transcriber.transcribe(np.zeros(16000 * 5, dtype=np.float32))
    assert transcript.text == ""
