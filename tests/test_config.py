import pytest

import app
from chatbot.config import ConfigError, load_config


def test_defaults_load_into_typed_objects():
    cfg = load_config(environ={})
    assert cfg.device == "auto"
    assert cfg.llm.gpu_model == "microsoft/Phi-3-mini-4k-instruct"
    assert cfg.stt.engine == "faster-whisper" and cfg.stt.vad_filter is True
    assert cfg.tts.engine == "edge-tts" and isinstance(cfg.tts.voices, tuple)
    assert isinstance(cfg.llm.temperature, float) and isinstance(cfg.server.port, int)


def test_user_file_overrides_a_subset(tmp_path):
    user = tmp_path / "my.yaml"
    user.write_text("llm:\n  max_new_tokens: 64\nserver:\n  port: 9000\n")
    cfg = load_config(user, environ={})
    assert cfg.llm.max_new_tokens == 64 and cfg.server.port == 9000
    assert cfg.llm.top_p == load_config(environ={}).llm.top_p  # untouched keys keep their defaults


def test_unknown_key_is_an_error_naming_it(tmp_path):
    user = tmp_path / "bad.yaml"
    user.write_text("llm:\n  max_new_tokenz: 64\n")
    with pytest.raises(ConfigError, match=r"llm\.max_new_tokenz"):
        load_config(user, environ={})


def test_wrong_type_is_an_error_naming_the_key():
    with pytest.raises(ConfigError, match=r"server\.port"):
        load_config(overrides={"server.port": "eighty"}, environ={})
    with pytest.raises(ConfigError, match=r"stt\.engine"):
        load_config(overrides={"stt.engine": "vosk"}, environ={})


def test_environment_overrides_file_and_cli_overrides_environment():
    env = {"CHATBOT__LLM__MAX_NEW_TOKENS": "32", "CHATBOT__DEVICE": "cpu", "CHATBOT__SERVER__SHARE": "true"}
    cfg = load_config(environ=env)
    assert (cfg.llm.max_new_tokens, cfg.device, cfg.server.share) == (32, "cpu", True)
    cfg = load_config(overrides={"llm.max_new_tokens": "16"}, environ=env)
    assert cfg.llm.max_new_tokens == 16


def test_cli_flags_map_to_config(monkeypatch):
    monkeypatch.delenv("CHATBOT__SERVER__PORT", raising=False)
    args = app.parse_args(["--port", "7999", "--share", "--device", "cpu", "--llm-model", "embedded",
                           "--stt-engine", "openai-whisper", "--tts-engine", "piper", "--set", "llm.temperature=0"])
    cfg = app.config_from_args(args)
    assert cfg.server.port == 7999 and cfg.server.share is True and cfg.device == "cpu"
    assert cfg.llm.model == "embedded" and cfg.stt.engine == "openai-whisper" and cfg.tts.engine == "piper"
    assert cfg.llm.temperature == 0.0


def test_bad_set_flag_is_reported():
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        app.config_from_args(app.parse_args(["--set", "llm.temperature"]))
