"""Start-up choices: the device, the models, and what happens when a production model cannot be loaded."""

import dataclasses

import pytest

from chatbot.engines import EMBEDDED, build_generator, build_transcriber, choose_model, resolve_device

pytestmark = pytest.mark.slow


def test_auto_picks_production_models_only_with_cuda():
    assert choose_model("auto", "microsoft/Phi-3-mini-4k-instruct", "cuda") == "microsoft/Phi-3-mini-4k-instruct"
    assert choose_model("auto", "microsoft/Phi-3-mini-4k-instruct", "cpu") == EMBEDDED
    assert choose_model("my/model", "microsoft/Phi-3-mini-4k-instruct", "cpu") == "my/model"


def test_device_auto_without_cuda_uses_the_cpu():
    import torch

    device, why = resolve_device("auto")
    assert device == ("cuda" if torch.cuda.is_available() else "cpu") and why
    if not torch.cuda.is_available():
        assert resolve_device("cuda")[0] == "cpu"  # asked for CUDA, none present: said, and the CPU is used


def test_phi3_from_the_hub_offline_falls_back_to_the_embedded_model_and_says_what_to_do(cfg):
    """HF_HUB_OFFLINE=1 (set for all tests) stands for a machine that cannot reach the hub."""
    llm = dataclasses.replace(cfg.llm, model="microsoft/Phi-3-mini-4k-instruct")
    generator, note = build_generator(llm, "cpu", cfg.cache_path)
    assert generator.description.startswith("Qwen2.5-Coder-1.5B-Instruct · cpu llama.cpp")
    assert "microsoft/Phi-3-mini-4k-instruct could not be loaded" in note
    assert "check the network" in note and "embedded Qwen2.5-Coder-1.5B-Instruct instead" in note


def test_whisper_from_the_hub_offline_falls_back_to_the_embedded_model(cfg):
    stt = dataclasses.replace(cfg.stt, model="small")
    transcriber, note = build_transcriber(stt, "cpu", cfg.cache_path)
    assert transcriber.description == "faster-whisper tiny.en · cpu int8"
    assert "Whisper small could not be loaded" in note and "embedded tiny.en instead" in note
