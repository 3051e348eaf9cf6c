"""Every in-process LLM engine streams a real, on-topic reply from the embedded model; engine choice and a
missing engine package are reported in words."""

import dataclasses
import sys
import threading

import pytest

import app
from chatbot.config import load_config
from chatbot.engines import build_generator, choose_engine
from audio.packages import MissingPackageError

LOCAL_ENGINES = ["llama.cpp", "transformers", "onnxruntime-genai", "openvino"]
QUESTION = "What is the capital of France?"


def greedy(cfg, engine: str, **changes):
    """The smallest embedded model (SmolLM2-135M) on `engine`: the others need it de-quantised and converted
    (a minute for this one; the 1.5B default runs on llama.cpp, tests/test_embedded_llm.py)."""
    settings = dict(engine=engine, model="embedded", embedded_model="smollm2-135m", temperature=0.0,
                    max_new_tokens=32, parallel=1)
    return dataclasses.replace(cfg.llm, **{**settings, **changes})


def chat(cfg, question: str = QUESTION) -> list[dict]:
    return [{"role": "system", "content": cfg.llm.system_prompt}, {"role": "user", "content": question}]


@pytest.fixture(scope="module", params=LOCAL_ENGINES)
def local_generator(request, cfg):
    generator, note = build_generator(greedy(cfg, request.param), "cpu", cfg.cache_path)
    assert note == ""
    return request.param, generator


@pytest.mark.slow
def test_engine_streams_an_on_topic_reply_in_pieces(local_generator, cfg):
    engine, generator = local_generator
    assert engine in generator.description or engine == "transformers"
    assert generator.description.startswith("SmolLM2-135M-Instruct · cpu")
    pieces = list(generator.stream(chat(cfg)))
    reply = "".join(pieces)
    assert len(pieces) >= 3, pieces  # streamed, not delivered at once
    assert "Paris" in reply, reply  # a broken quantisation or prompt format fails here
    honey = "".join(generator.stream(chat(cfg, "What do bees make?")))
    assert "honey" in honey.lower(), honey


@pytest.mark.slow
def test_engine_stops_when_cancelled_and_counts_prompt_tokens(local_generator, cfg):
    _engine, generator = local_generator
    threads_before = threading.active_count()
    cancel = threading.Event()
    pieces = []
    for piece in generator.stream(chat(cfg, "Tell me a long story about a dragon."), cancel):
        pieces.append(piece)
        if len(pieces) == 2:
            cancel.set()
    assert 2 <= len(pieces) <= 4  # a token or two may already be on its way
    assert threading.active_count() == threads_before  # nothing left generating
    short, longer = chat(cfg, "Hi"), chat(cfg, "Hi " * 50)
    assert 0 < generator.count_tokens(short) < generator.count_tokens(longer) < generator.context_window


def test_engine_choice():
    assert load_config(environ={}).llm.cpu_engine == "llama.cpp"  # measured best on 2 cores (bench/results.md)
    assert choose_engine("auto", "llama.cpp", "cpu") == "llama.cpp"
    assert choose_engine("auto", "onnxruntime-genai", "cpu") == "onnxruntime-genai"
    assert choose_engine("auto", "onnxruntime-genai", "cuda") == "transformers"  # Phi-3-mini bf16 + flash-attn
    assert choose_engine("openvino", "onnxruntime-genai", "cuda") == "openvino"


def test_engine_from_config_env_and_cli():
    assert load_config(environ={}).llm.engine == "auto"
    assert load_config(environ={"CHATBOT__LLM__ENGINE": "openvino"}).llm.engine == "openvino"
    env = {"CHATBOT__LLM__ENGINE": "openvino", "CHATBOT__LLM__OPENAI_API_KEY": "sk-test"}
    cfg = app.config_from_args(app.parse_args(["--llm-engine", "openai", "--llm-url", "http://10.0.0.5:8000/v1"]))
    assert cfg.llm.engine == "openai" and cfg.llm.openai_base_url == "http://10.0.0.5:8000/v1"
    cfg = load_config(overrides={"llm.engine": "openai"}, environ=env)
    assert cfg.llm.engine == "openai" and cfg.llm.openai_api_key == "sk-test"


@pytest.mark.slow
@pytest.mark.parametrize("engine,module,package", [("onnxruntime-genai", "onnxruntime_genai", "onnxruntime-genai"),
                                                   ("openvino", "openvino_genai", "openvino-genai")])
def test_missing_engine_package_says_what_to_install(cfg, monkeypatch, engine, module, package):
    monkeypatch.setitem(sys.modules, module, None)  # how Python marks a module that cannot be imported
    with pytest.raises(MissingPackageError, match=f"pip install {package}"):
        build_generator(greedy(cfg, engine), "cpu", cfg.cache_path)
    # Chosen automatically rather than by name: the app starts on transformers and says why.
    generator, note = build_generator(greedy(cfg, "auto", cpu_engine=engine), "cpu", cfg.cache_path)
    assert "fp32 sdpa" in generator.description
    assert f"pip install {package}" in note and "transformers instead" in note


@pytest.mark.slow
def test_onnx_model_from_the_hub_offline_falls_back_to_the_embedded_model(cfg):
    hub = "microsoft/Phi-3-mini-4k-instruct-onnx/cpu_and_mobile/cpu-int4-rtn-block-32-acc-level-4"
    generator, note = build_generator(greedy(cfg, "onnxruntime-genai", model=hub), "cpu", cfg.cache_path)
    assert generator.description.startswith("SmolLM2-135M-Instruct · cpu onnxruntime-genai int8")
    assert f"{hub} could not be loaded" in note and "check the network" in note


def test_engine_tables_name_every_engine_the_config_allows():
    """The config's Literal types are the one list of engine names: the tables and the CLI flags follow them."""
    import importlib

    from chatbot.config import LLMConfig, STTConfig, choices
    from chatbot.engines import LLM_ENGINES, STT_ENGINES

    assert set(LLM_ENGINES) | {"auto"} == set(choices(LLMConfig, "engine"))
    assert set(choices(LLMConfig, "cpu_engine")) <= set(LLM_ENGINES)
    assert set(STT_ENGINES) == set(choices(STTConfig, "engine"))
    for module in LLM_ENGINES.values():
        engine = importlib.import_module(module)
        assert callable(engine.load) and callable(engine.require_runtime)
    with pytest.raises(SystemExit):
        app.parse_args(["--llm-engine", "no-such-engine"])
