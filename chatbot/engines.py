"""Start-up: pick the device and the models, load them once, and say what was chosen and why."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from audio.stt import Transcriber, create_transcriber, model_label
from audio.tts import FallbackSpeaker, Speaker, VoiceOptions, create_speaker
from chatbot.config import Config, LLMConfig, STTConfig, TTSConfig
from chatbot.embedded_llm import prepare_embedded_llm
from chatbot.generator import GenerationSettings, MissingPackageError, ReplyError, ReplyGenerator

log = logging.getLogger(__name__)

EMBEDDED = "embedded"


@dataclass
class Engines:
    """The models every session shares, loaded once."""

    device: str
    transcriber: Transcriber
    generator: ReplyGenerator
    speaker: Speaker
    notes: list[str] = field(default_factory=list)  # start-up fallbacks, shown to users

    def status_line(self) -> str:
        return (f"LLM {self.generator.description} | STT {self.transcriber.description} "
                f"| TTS {self.speaker.description}")


def resolve_device(requested: str) -> tuple[str, str]:
    """("cuda" | "cpu", why)."""
    import torch

    available = torch.cuda.is_available()
    if requested == "auto":
        if available:
            return "cuda", f"CUDA is available ({torch.cuda.get_device_name(0)})"
        return "cpu", "no CUDA device found: using the CPU and the embedded models"
    if requested == "cuda" and not available:
        return "cpu", "device: cuda was asked for but no CUDA device is available: using the CPU"
    return requested, f"device: {requested} was asked for"


def choose_model(model: str, gpu_model: str, device: str) -> str:
    if model == "auto":
        return gpu_model if device == "cuda" else EMBEDDED
    return model


def _load_failure_advice(model: str, error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    if "out of memory" in text.lower():
        return f"{model} does not fit in memory ({text}). Choose a smaller model or free GPU memory."
    return (f"{model} could not be loaded ({text}). If it comes from the Hugging Face hub, check the network "
            f"(and HF_TOKEN for gated models), or download it once and point the config at the local folder.")


def choose_engine(engine: str, cpu_engine: str, device: str) -> str:
    if engine == "auto":
        return "transformers" if device == "cuda" else cpu_engine
    return engine


def _model_folder(model: str) -> Path:
    """A local folder for `model`: itself if it exists, else a download from the hub (hub id[/subfolder])."""
    from chatbot.model_cache import hub_folder

    folder = Path(model).expanduser()
    return folder if folder.is_dir() else hub_folder(model)


def _load_local_engine(engine: str, model: str, cfg: LLMConfig, device: str, cache_dir: Path,
                       settings: GenerationSettings) -> ReplyGenerator:
    """`model` ("embedded", a folder, a hub id) on one of the in-process engines."""
    if engine == "transformers":
        import torch

        from chatbot.transformers_engine import TransformersGenerator, choose_attention, choose_dtype, load_causal_lm

        if cfg.cpu_threads > 0:
            torch.set_num_threads(cfg.cpu_threads)
        source = prepare_embedded_llm(cache_dir) if model == EMBEDDED else model
        tokenizer, lm = load_causal_lm(source, device=device, dtype=choose_dtype(cfg.dtype, device),
                                       attention=choose_attention(cfg.attention, device))
        return TransformersGenerator(tokenizer, lm, settings, name=_llm_name(model), device=device,
                                     context_window=cfg.context_window)
    if engine == "onnxruntime-genai":
        from chatbot.onnx_engine import OnnxGenAIGenerator, build_genai_folder, is_genai_folder

        folder = prepare_embedded_llm(cache_dir) if model == EMBEDDED else _model_folder(model)
        if not is_genai_folder(folder):  # transformers weights: build the ONNX model once
            folder = build_genai_folder(folder, cache_dir, precision=cfg.export_precision,
                                        block_size=cfg.export_block_size)
        return OnnxGenAIGenerator(folder, settings, name=_llm_name(model), context_window=cfg.context_window,
                                  threads=cfg.cpu_threads)
    if engine == "openvino":
        from chatbot.openvino_engine import OpenVINOGenerator, export_openvino_folder, is_openvino_folder

        folder = prepare_embedded_llm(cache_dir) if model == EMBEDDED else _model_folder(model)
        if not is_openvino_folder(folder):
            folder = export_openvino_folder(folder, cache_dir, precision=cfg.export_precision,
                                            group_size=cfg.export_block_size)
        return OpenVINOGenerator(folder, settings, name=_llm_name(model), context_window=cfg.context_window,
                                 threads=cfg.cpu_threads)
    raise ValueError(f"unknown LLM engine {engine!r}")


def _llm_name(model: str) -> str:
    from chatbot.embedded_llm import EMBEDDED_NAME

    return EMBEDDED_NAME if model == EMBEDDED else model_label(model)


def build_generator(cfg: LLMConfig, device: str, cache_dir: Path) -> tuple[ReplyGenerator, str]:
    """The reply generator the config asks for, and a note for users when something else had to be started."""
    settings = GenerationSettings(cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.repetition_penalty)
    engine = choose_engine(cfg.engine, cfg.cpu_engine, device)
    if engine == "openai":
        from chatbot.openai_engine import OpenAIChatGenerator

        api_key = cfg.openai_api_key or os.environ.get("OPENAI_API_KEY", "")
        generator = OpenAIChatGenerator(cfg.openai_base_url, cfg.model, settings, api_key=api_key,
                                        connect_timeout_s=cfg.openai_connect_timeout_s,
                                        read_timeout_s=cfg.openai_read_timeout_s, context_window=cfg.context_window)
        try:
            generator.model_name()
        except ReplyError as e:  # the server may come up later (vLLM loads for minutes): each turn asks again
            log.warning("LLM: %s Each message will try again.", e)
            return generator, f"{e} Each message will try again."
        return generator, ""
    notes = []
    if engine != "transformers":
        try:
            _require_runtime(engine)
        except MissingPackageError as e:
            if cfg.engine != "auto":
                raise  # asked for by name: say what to install rather than run something else
            notes.append(f"{e}. Started on transformers instead (slower).")
            log.error("LLM: %s", notes[-1])
            engine = "transformers"
    model = choose_model(cfg.model, cfg.gpu_model, device)
    if model != EMBEDDED:
        try:
            return _load_local_engine(engine, model, cfg, device, cache_dir, settings), " ".join(notes)
        except MissingPackageError:
            raise
        except Exception as e:  # no network, gated model, out of memory, bad folder: all end the same way
            notes.append(_load_failure_advice(model, e) + " Started on the embedded SmolLM2-135M-Instruct instead.")
            log.error("LLM: %s", notes[-1])
            _free_cuda(device)
    return _load_local_engine(engine, EMBEDDED, cfg, device, cache_dir, settings), " ".join(notes)


def _require_runtime(engine: str) -> None:
    """Import the engine's runtime package now, so that a missing one is reported before any model work."""
    if engine == "onnxruntime-genai":
        from chatbot.onnx_engine import runtime
    else:
        from chatbot.openvino_engine import runtime
    runtime()


def _free_cuda(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


def build_transcriber(cfg: STTConfig, device: str, cache_dir: Path) -> tuple[Transcriber, str]:
    model = choose_model(cfg.model, cfg.gpu_model, device)
    options = dict(language=cfg.language, vad_filter=cfg.vad_filter, beam_size=cfg.beam_size,
                   compute_type=cfg.compute_type, cache_dir=cache_dir)
    note = ""
    if model != EMBEDDED:
        try:
            return create_transcriber(cfg.engine, model, device, **options), note
        except ImportError:
            raise  # a missing package: its message says what to install, and no model would help
        except Exception as e:
            note = _load_failure_advice(f"Whisper {model}", e) + " Started on the embedded tiny.en instead."
            log.error("STT: %s", note)
    return create_transcriber(cfg.engine, EMBEDDED, device, **options), note


def build_speaker(cfg: TTSConfig) -> Speaker:
    return create_speaker(cfg.engine, voice=cfg.voice, voices=cfg.voices, pitch_hz=cfg.pitch_hz,
                          connect_timeout_s=cfg.connect_timeout_s, receive_timeout_s=cfg.receive_timeout_s,
                          retry_after_s=cfg.retry_after_s, fallback=cfg.fallback, piper_model=cfg.piper_model,
                          piper_arena=cfg.piper_arena, proxy=cfg.proxy)


def warm_up(engines: Engines) -> None:
    """Run each local model once so that the first user does not pay for lazy initialisation."""
    from chatbot.openai_engine import OpenAIChatGenerator

    if not isinstance(engines.generator, OpenAIChatGenerator):  # a server warms itself (and may be down now)
        stream = engines.generator.stream([{"role": "user", "content": "Hi"}])
        next(stream, None)
        stream.close()  # cancels the rest of the reply
    engines.transcriber.transcribe(np.zeros(8000, dtype=np.float32))
    from audio.piper_speaker import PiperSpeaker

    # Only an offline engine is warmed: warming edge-tts would spend its connect timeout at every start.
    speaker = engines.speaker.fallback if isinstance(engines.speaker, FallbackSpeaker) else engines.speaker
    if isinstance(speaker, PiperSpeaker):
        for _chunk in speaker.speak("Ready.", VoiceOptions()):
            pass


def build_engines(cfg: Config) -> Engines:
    started = time.perf_counter()
    device, why = resolve_device(cfg.device)
    log.info("device: %s (%s)", device, why)
    cache_dir = cfg.cache_path
    generator, llm_note = build_generator(cfg.llm, device, cache_dir)
    log.info("LLM: %s (context %d tokens, reply up to %d)", generator.description, generator.context_window,
             cfg.llm.max_new_tokens)
    transcriber, stt_note = build_transcriber(cfg.stt, device, cache_dir)
    log.info("STT: %s", transcriber.description)
    speaker = build_speaker(cfg.tts)
    log.info("TTS: %s", speaker.description)
    engines = Engines(device, transcriber, generator, speaker, [n for n in (llm_note, stt_note) if n])
    warm_up(engines)
    log.info("models loaded and warmed up in %.1f s", time.perf_counter() - started)
    return engines
