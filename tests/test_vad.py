"""Streaming Silero VAD: the same answer whatever the chunking, speech heard, silence and noise not."""

from __future__ import annotations

import time

import numpy as np
import pytest

from audio.listen.vad import FRAME_SAMPLES, SileroVAD, StreamingVAD, silero_vad_path
from tests.media import resample, speak


@pytest.fixture(scope="module")
def vad_model():
    return SileroVAD()


@pytest.fixture(scope="module")
def question(piper):
    return resample(*speak(piper, "What is the capital of France?"), 16_000)


def test_silero_model_ships_inside_faster_whisper():
    assert silero_vad_path().name == "silero_vad_v6.onnx" and silero_vad_path().stat().st_size > 100_000


@pytest.mark.slow
def test_probabilities_do_not_depend_on_how_the_stream_is_chunked(vad_model, question):
    whole = StreamingVAD(vad_model).process(question)
    assert len(whole) == len(question) // FRAME_SAMPLES
    rng = np.random.default_rng(0)
    for sizes in ([320] * 1000, [512] * 1000, list(rng.integers(1, 2000, size=1000))):
        stream, parts, position = StreamingVAD(vad_model), [], 0
        for size in sizes:
            parts.append(stream.process(question[position:position + size]))
            position += size
            if position >= len(question):
                break
        np.testing.assert_allclose(np.concatenate(parts), whole, atol=1e-6)


@pytest.mark.slow
def test_speech_is_heard_and_silence_and_noise_are_not(vad_model, question):
    rng = np.random.default_rng(1)
    noise = (rng.standard_normal(16_000 * 5) * 0.05).astype(np.float32)
    assert StreamingVAD(vad_model).process(question).max() > 0.9
    assert np.mean(StreamingVAD(vad_model).process(question) > 0.5) > 0.6  # most of a spoken sentence is speech
    assert StreamingVAD(vad_model).process(np.zeros(16_000 * 5, np.float32)).max() < 0.1
    assert StreamingVAD(vad_model).process(noise).max() < 0.5


@pytest.mark.slow
def test_reset_forgets_the_stream(vad_model, question):
    stream = StreamingVAD(vad_model)
    first = stream.process(question)
    stream.process(question[:1000])  # leaves state and half a frame behind
    stream.reset()
    np.testing.assert_allclose(stream.process(question), first, atol=1e-6)
    assert stream.frames_done == len(first)


def test_costs_a_few_milliseconds_per_half_second(vad_model):
    audio = (np.random.default_rng(2).standard_normal(16_000 * 10) * 0.05).astype(np.float32)
    stream = StreamingVAD(vad_model)
    started = time.perf_counter()
    for i in range(0, len(audio), 8000):
        stream.process(audio[i:i + 8000])
    per_half_second = (time.perf_counter() - started) / 20
    assert per_half_second < 0.025  # ~1.5-3 ms measured here, on a shared machine
