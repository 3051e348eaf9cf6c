"""Smart Turn v3.2: the file taken out of the pipecat-ai wheel, Whisper's log-mel features as the model was
trained on them, and P(turn complete) high for a finished question, low for a sentence cut mid-way."""

from __future__ import annotations

import zipfile

import numpy as np
import pytest

from audio.listen.end_of_turn import (SMART_TURN_FILE, WHEEL_LICENSE, WHEEL_MODEL, WINDOW_SAMPLES, EndOfTurnModelMissing,
                               SmartTurn, extract_from_wheel, last_window, log_mel_features, smart_turn_path,
                               sounds_finished)
from tests.media import aligned_piper, espeak, espeak_available, piper_with_pause, resample, speak

RATE = 16_000
PAUSE_S = 0.7
AFTER_SPEECH_S = 0.25  # what the listener gives the model: pause_s of silence and a frame of the VAD's lag


@pytest.fixture(scope="module")
def turn_model(cfg):
    return SmartTurn.from_cache(cfg.cache_path, cfg.talk.end_of_turn_threads)


def _test_signals() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    t = np.arange(3 * RATE) / RATE
    return {"silence": np.zeros(RATE, np.float32),
            "noise": (rng.standard_normal(WINDOW_SAMPLES) * 0.1).astype(np.float32),
            "sweep": (0.5 * np.sin(2 * np.pi * (200 + 1000 * t) * t)).astype(np.float32),
            "long": (rng.standard_normal(WINDOW_SAMPLES + 5 * RATE) * 0.1).astype(np.float32)}


@pytest.mark.slow  # importing transformers takes seconds
@pytest.mark.parametrize("name", ["silence", "noise", "sweep", "long"])
def test_log_mel_features_match_transformers_whisper_extractor(name):
    transformers = pytest.importorskip("transformers")
    audio = _test_signals()[name]
    extractor = transformers.WhisperFeatureExtractor(feature_size=80, chunk_length=8)
    expected = extractor(last_window(audio), sampling_rate=RATE, return_tensors="np", do_normalize=True).input_features
    got = log_mel_features(audio)
    assert got.shape == expected.shape[1:] == (80, 800) and got.dtype == np.float32
    np.testing.assert_allclose(got, expected[0], atol=1e-4)


def test_window_keeps_the_last_8_seconds_and_pads_short_audio_at_the_front():
    short = np.ones(RATE, np.float32)
    window = last_window(short)
    assert len(window) == WINDOW_SAMPLES and not window[:-RATE].any() and window[-RATE:].all()
    long = np.arange(WINDOW_SAMPLES + 10, dtype=np.float32)
    assert last_window(long)[0] == 10 and last_window(long)[-1] == long[-1]


def test_missing_model_error_says_to_run_setup(tmp_path):
    with pytest.raises(EndOfTurnModelMissing, match="scripts/setup.sh"):
        smart_turn_path(tmp_path)


def test_model_and_licence_are_taken_out_of_the_wheel(tmp_path):
    wheel = tmp_path / "pipecat_ai-1.14.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(WHEEL_MODEL, b"onnx bytes")
        archive.writestr(WHEEL_LICENSE, b"BSD 2-Clause License")
        archive.writestr("pipecat/other.py", b"not wanted")
    path = extract_from_wheel(wheel, tmp_path / "cache")
    assert path == smart_turn_path(tmp_path / "cache") and path.read_bytes() == b"onnx bytes"
    assert sorted(p.name for p in path.parent.iterdir()) == ["LICENSE", SMART_TURN_FILE]
    with zipfile.ZipFile(tmp_path / "other.whl", "w") as archive:
        archive.writestr("something/else.py", b"")
    with pytest.raises(EndOfTurnModelMissing, match="pipecat-ai 1.14.0"):
        extract_from_wheel(tmp_path / "other.whl", tmp_path / "cache2")


@pytest.mark.slow
def test_model_output_is_already_a_probability(cfg, turn_model):
    """The output named `logits` comes out of a Sigmoid node: a second sigmoid would squash it into 0.5-0.73."""
    onnx = pytest.importorskip("onnx")
    graph = onnx.load(str(smart_turn_path(cfg.cache_path))).graph
    last = next(node for node in graph.node if "logits" in node.output)
    assert last.op_type == "Sigmoid"
    probabilities = turn_model.probabilities(list(_test_signals().values()))
    assert probabilities.shape == (4,) and ((probabilities >= 0) & (probabilities <= 1)).all()


def _with_silence(rate: int, samples: np.ndarray, seconds: float) -> np.ndarray:
    audio = resample(rate, samples, RATE)
    return np.concatenate([audio, np.zeros(round(seconds * RATE), np.float32)])


def _cut_at_pause(rate: int, samples: np.ndarray) -> np.ndarray:
    """The sentence up to its mid-sentence pause, and AFTER_SPEECH_S of that pause: what the model hears there."""
    from tests.media import silent_gaps

    start, _end = max(silent_gaps(rate, samples, PAUSE_S * 0.8), key=lambda g: g[1] - g[0])
    return resample(rate, samples[:round((start + AFTER_SPEECH_S) * rate)], RATE)


@pytest.mark.slow
def test_finished_question_is_complete_and_sentence_cut_mid_way_is_not_piper(piper, turn_model):
    finished = _with_silence(*speak(piper, "What is the capital of France?"), AFTER_SPEECH_S)
    cut = _cut_at_pause(*piper_with_pause(aligned_piper(), "I would like to know the | weather in London today.",
                                          PAUSE_S))
    p_finished, p_cut = turn_model.probabilities([finished, cut])
    assert p_finished > 0.8, p_finished  # 0.95-0.99 measured
    assert p_cut < 0.3, p_cut  # 0.01-0.05 measured


@pytest.mark.slow
@pytest.mark.skipif(not espeak_available(), reason="espeak-ng is not installed (apt-get install espeak-ng)")
def test_finished_question_is_complete_and_sentence_cut_mid_way_is_not_espeak(turn_model):
    finished = _with_silence(*espeak("What is the capital of France?"), AFTER_SPEECH_S)
    cut = _cut_at_pause(*espeak("I would like to know the | weather in London today.", PAUSE_S))
    p_finished, p_cut = turn_model.probabilities([finished, cut])
    assert p_finished > 0.8, p_finished
    assert p_cut < 0.3, p_cut


@pytest.mark.parametrize("text, finished", [
    ("What is the capital of France?", True), ("Why do cats purr", True), ("Is it going to rain today?", True),
    ("Which one is the best?", True), ("I need a recipe.", True), ("Tell me a joke", True),
    ("What is the capital of", False), ("I would like to know the", False), ("How do I make a good?", False),
    ("Can you suggest an easy", False), ("I need a recipe for", False), ("Tell me about, um", False),
    ("So I was thinking...", False), ("and then,", False), ("", False), ("Actually.", False), ("Well", False),
    ("Yes.", True), ("Actually, I am fine.", True)])
def test_a_transcript_reads_finished_unless_it_stops_on_a_word_that_needs_more(text, finished):
    assert sounds_finished(text) is finished
