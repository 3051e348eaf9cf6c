"""Shared fixtures: real embedded models, loaded once per test session."""

from __future__ import annotations

import os

# Nothing may reach the model hub by accident; the embedded models ship inside PyPI packages.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest  # noqa: E402

from chatbot.config import load_config  # noqa: E402

EMBEDDED = {"device": "cpu", "llm.model": "embedded", "stt.model": "embedded", "tts.piper_model": "embedded",
            "llm.max_new_tokens": "64",  # short replies keep the suite fast; the path is the same
            # Weather questions never reach the internet by accident: nothing listens on port 9 here (tests that
            # need a weather service start one on 127.0.0.1 and point these at it).
            "tools.weather_geocoding_url": "http://127.0.0.1:9/v1/search",
            "tools.weather_forecast_url": "http://127.0.0.1:9/v1/forecast"}


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: loads real models or starts a server (seconds to a minute)")


@pytest.fixture(scope="session")
def cfg():
    return load_config(overrides=EMBEDDED)


@pytest.fixture(scope="session")
def engines(cfg):
    from chatbot.engines import build_engines

    return build_engines(cfg)


@pytest.fixture(scope="session")
def piper():
    from audio.tts.piper_speaker import PiperSpeaker

    return PiperSpeaker("embedded")


@pytest.fixture()
def assistant(engines, cfg, tmp_path):
    from audio.store import AudioStore
    from chatbot.assistant import Assistant

    store = AudioStore(tmp_path / "audio", cfg.files.max_age_s)
    yield Assistant(cfg, engines, store)
    store.close()
