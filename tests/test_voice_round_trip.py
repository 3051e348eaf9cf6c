"""Piper speaks known sentences; the app's own audio path decodes and transcribes them (both engines)."""

import dataclasses
import math

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


class _Windows:
    """The real CTranslate2 Whisper model, noting the length (mel frames) of each window it is given."""

    def __init__(self, model):
        self._model = model
        self.shapes: list[tuple[int, ...]] = []

    def __getattr__(self, name):
        return getattr(self._model, name)

    def generate(self, features, *args, **kwargs):
        self.shapes.append(tuple(features.shape))
        return self._model.generate(features, *args, **kwargs)


def test_speech_the_listener_heard_is_transcribed_on_a_window_fitted_to_it(cfg, engines, spoken_files, monkeypatch):
    transcriber = engines.transcriber
    windows = _Windows(transcriber._model.model)
    monkeypatch.setattr(transcriber._model, "model", windows)
    errors, retried = [], 0
    for sentence, path in spoken_files:
        audio = decode_file(path)
        windows.shapes.clear()
        transcript = transcriber.transcribe(audio, voiced=True)
        errors.append(wer(sentence, transcript.text))
        # a decode of the mel frames of the audio plus the margin (rounded up to a whole second)...
        frames = 100 * math.ceil(len(audio) / 16000 + cfg.stt.window_margin_s)
        assert windows.shapes[0] == (1, 80, frames), windows.shapes
        retried += len(windows.shapes) > 1  # (its words looked hallucinated: decoded again, the usual way)
    assert sum(errors) / len(errors) <= 0.1, errors
    assert retried <= 1, f"{retried} of {len(spoken_files)} sentences needed the full window"
    windows.shapes.clear()
    transcriber.transcribe(decode_file(spoken_files[0][1]))  # ...and, not known to hold speech, the usual way:
    assert windows.shapes == [(1, 1500, 384)]  # faster-whisper encodes the 30 s window first (1500 positions)


def test_a_fitted_window_whose_words_run_long_is_decoded_again_on_the_full_window(engines, spoken_files, monkeypatch,
                                                                               caplog):
    from audio.stt import faster_whisper_stt

    monkeypatch.setattr(faster_whisper_stt, "MAX_TOKENS_PER_S", 0)
    monkeypatch.setattr(faster_whisper_stt, "MIN_TOKENS", 3)  # "runs long": more than three tokens
    sentence, path = spoken_files[1]
    with caplog.at_level("INFO", logger="audio.stt.faster_whisper_stt"):
        transcript = engines.transcriber.transcribe(decode_file(path), voiced=True)
    assert "decoding the full window" in caplog.text
    assert wer(sentence, transcript.text) <= 0.2, transcript.text


@pytest.mark.parametrize("text, repeats", [("I would like to know that I would like to", True),
                                           ("How do I make a good cup of tea? How do I make", True),
                                           ("What is the weather like in London today?", False),
                                           ("Is it going to rain, is it?", False)])
def test_a_run_of_words_said_twice_counts_as_a_hallucination(text, repeats):
    from audio.stt.faster_whisper_stt import _repeats_itself

    assert _repeats_itself(text) is repeats


@pytest.mark.parametrize("text, kept", [("What color is the sky? What color", "What color is the sky?"),
                                        ("what is the weather like in London today? what", "what is the weather "
                                                                                           "like in London today?"),
                                        ("Is it cold? Yes.", "Is it cold? Yes."),
                                        ("Tell me a joke. Make it short.", "Tell me a joke. Make it short."),
                                        ("How far is the moon", "How far is the moon")])
def test_a_sentence_started_over_at_the_end_is_dropped(text, kept):
    from audio.stt.faster_whisper_stt import _without_restart

    assert _without_restart(text) == kept
