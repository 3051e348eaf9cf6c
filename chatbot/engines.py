"""Start-up wiring: pick the device and the models, build each engine from its config section, say what was
chosen and why. Engines are chosen by table, keyed by the config's names; their modules are imported only
when chosen (each pulls in heavy packages)."""

from __future__ import annotations

import dataclasses
import importlib
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from audio.decode import SAMPLE_RATE
from audio.packages import MissingPackageError
from audio.stt.base import Transcriber, model_label
from audio.tts.base import Speaker, VoiceOptions
from chatbot.config import Config, LLMConfig, STTConfig, TalkConfig, TTSConfig
from chatbot.llm.base import GenerationSettings, ReplyError, ReplyGenerator
from chatbot.llm.embedded import MODELS, EmbeddedModelError, embedded_gguf, model_info, prepare_embedded_llm
from chatbot.tools import Toolbox

log = logging.getLogger(__name__)

EMBEDDED = "embedded"
WARM_UP_CLIP_S = 0.5  # seconds of silence transcribed once at start, so that the first user pays no lazy set-up

# llm.engine -> the module whose load(source, name, cfg, device, settings, cache_dir) builds it.
LLM_ENGINES = {
    "llama.cpp": "chatbot.llm.llamacpp_engine",
    "transformers": "chatbot.llm.transformers_engine",
    "onnxruntime-genai": "chatbot.llm.onnx_engine",
    "openvino": "chatbot.llm.openvino_engine",
    "openai": "chatbot.llm.openai_engine",
}
# stt.engine -> "module:class", constructed as Class(model, device, cfg.stt, cache_dir).
STT_ENGINES = {
    "faster-whisper": "audio.stt.faster_whisper_stt:FasterWhisperTranscriber",
    "openai-whisper": "audio.stt.openai_whisper_stt:OpenAIWhisperTranscriber",
}


@dataclass(frozen=True)
class Listening:
    """The models talk mode listens with (voice activity, end of turn), shared by every session's Listener."""

    talk: TalkConfig  # as in force: end_of_turn is "silence" when the Smart Turn model could not be loaded
    vad: object  # audio.listen.vad.SileroVAD
    turn_model: object | None  # audio.listen.end_of_turn.SmartTurn, for talk.end_of_turn smart-turn
    max_audio_s: float  # an utterance longer than limits.max_audio_s ends its turn

    def listener(self, transcribe=None, *, ends_turns: bool = True):
        """A new Listener for one microphone stream; `transcribe(audio) -> Future` transcribes at each pause.
        `ends_turns=False` (push-to-talk, where the button ends the turn): it only hears pauses."""
        from audio.listen.listener import Listener

        never = self.max_audio_s + 1  # seconds of silence: more than a recording may last
        talk = self.talk if ends_turns else dataclasses.replace(
            self.talk, end_of_turn="silence", silence_timeout_s=never, max_wait_s=never)
        return Listener(talk, self.vad, self.turn_model if ends_turns else None, max_audio_s=self.max_audio_s,
                        transcribe=transcribe)


@dataclass
class Engines:
    """The models every session shares, loaded once."""

    device: str
    transcriber: Transcriber
    generator: ReplyGenerator
    speaker: Speaker
    notes: list[str] = field(default_factory=list)  # start-up fallbacks, shown to users
    listening: Listening | None = None  # None: talk mode is unavailable (see notes)
    toolbox: Toolbox | None = None  # weather and time; None: every question goes to the model alone
    tool_answers: Literal["model", "summary"] = "model"  # who words a tool's answer (tools.answer_by, resolved)
    follow_language: Literal["off", "hint", "strict"] = "hint"  # llm.follow_language, resolved

    def status_line(self) -> str:
        return (f"LLM {self.generator.description} | STT {self.transcriber.description} "
                f"| TTS {self.speaker.description}")


def _class(spec: str):
    module, name = spec.split(":")
    return getattr(importlib.import_module(module), name)


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


def choose_engine(engine: str, cpu_engine: str, device: str) -> str:
    if engine == "auto":
        return "transformers" if device == "cuda" else cpu_engine
    return engine


def _load_failure_advice(model: str, error: BaseException) -> str:
    text = f"{type(error).__name__}: {error}".splitlines()[0][:300]
    if "out of memory" in text.lower():
        return f"{model} does not fit in memory ({text}). Choose a smaller model or free GPU memory."
    return (f"{model} could not be loaded ({text}). If it comes from the Hugging Face hub, check the network "
            f"(and HF_TOKEN for gated models), or download it once and point the config at the local folder.")


# -- the reply generator ------------------------------------------------------------------------------------


def _load_llm(engine: str, model: str, cfg: LLMConfig, device: str, cache_dir: Path) -> ReplyGenerator:
    """`model` ("embedded", a folder, a hub id, a .gguf, a server's model name) on `engine`."""
    if model == EMBEDDED:  # llama.cpp reads the GGUF; the other engines need transformers weights made from it
        key = cfg.embedded_model
        source = embedded_gguf(key, cache_dir) if engine == "llama.cpp" else prepare_embedded_llm(cache_dir, key)
        name = model_info(key).name
    else:
        source, name = model, model_label(model)
    return importlib.import_module(LLM_ENGINES[engine]).load(source, name, cfg, device, _settings(cfg), cache_dir)


def _load_embedded(engine: str, cfg: LLMConfig, device: str, cache_dir: Path, notes: list[str]) -> ReplyGenerator:
    """The configured embedded model; if it cannot be had (not fetched, no network, a corrupt file), the
    lightest one, which is installed with the app, and a note that says why."""
    try:
        return _load_llm(engine, EMBEDDED, cfg, device, cache_dir)
    except EmbeddedModelError as e:
        lightest = next(m for m in reversed(MODELS.values()) if m.package)
        if cfg.embedded_model == lightest.key:
            raise
        notes.append(f"{e}. Started on {lightest.name} instead, which answers far less well.")
        log.error("LLM: %s", notes[-1])
        return _load_llm(engine, EMBEDDED, dataclasses.replace(cfg, embedded_model=lightest.key), device, cache_dir)


def _settings(cfg: LLMConfig) -> GenerationSettings:
    return GenerationSettings(cfg.max_new_tokens, cfg.temperature, cfg.top_p, cfg.repetition_penalty)


def _openai_generator(cfg: LLMConfig, device: str, cache_dir: Path) -> tuple[ReplyGenerator, str]:
    """A server's model, by the server's name for it: nothing is loaded here."""
    engine = importlib.import_module(LLM_ENGINES["openai"])
    generator = engine.load(cfg.model, cfg.model, cfg, device, _settings(cfg), cache_dir)
    try:
        generator.model_name()
    except ReplyError as e:  # the server may come up later (vLLM loads for minutes): each turn asks again
        log.warning("LLM: %s Each message will try again.", e)
        return generator, f"{e} Each message will try again."
    return generator, ""


def _available_engine(cfg: LLMConfig, device: str, notes: list[str]) -> str:
    """The engine to run: the configured one, or transformers when an automatic choice's package is missing."""
    engine = choose_engine(cfg.engine, cfg.cpu_engine, device)
    try:
        importlib.import_module(LLM_ENGINES[engine]).require_runtime()
    except MissingPackageError as e:
        if cfg.engine != "auto":
            raise  # asked for by name: say what to install rather than run something else
        notes.append(f"{e}. Started on transformers instead (slower).")
        log.error("LLM: %s", notes[-1])
        return "transformers"
    return engine


def build_generator(cfg: LLMConfig, device: str, cache_dir: Path) -> tuple[ReplyGenerator, str]:
    """The reply generator the config asks for, and a note for users when something else had to be started."""
    if choose_engine(cfg.engine, cfg.cpu_engine, device) == "openai":
        return _openai_generator(cfg, device, cache_dir)
    notes: list[str] = []
    engine = _available_engine(cfg, device, notes)
    model = choose_model(cfg.model, cfg.gpu_model, device)
    if model != EMBEDDED:
        try:
            return _load_llm(engine, model, cfg, device, cache_dir), " ".join(notes)
        except MissingPackageError:
            raise
        except Exception as e:  # no network, gated model, out of memory, bad folder: all end the same way
            notes.append(_load_failure_advice(model, e)
                         + f" Started on the embedded {model_info(cfg.embedded_model).name} instead.")
            log.error("LLM: %s", notes[-1])
            _free_cuda(device)
    generator = _load_embedded(engine, cfg, device, cache_dir, notes)
    return generator, " ".join(notes)


def _free_cuda(device: str) -> None:
    if device == "cuda":
        import torch

        torch.cuda.empty_cache()


# -- speech to text and text to speech ----------------------------------------------------------------------


def build_transcriber(cfg: STTConfig, device: str, cache_dir: Path) -> tuple[Transcriber, str]:
    engine = _class(STT_ENGINES[cfg.engine])
    model = choose_model(cfg.model, cfg.gpu_model, device)
    note = ""
    if model != EMBEDDED:
        try:
            return engine(model, device, cfg, cache_dir), note
        except ImportError:
            raise  # a missing package: its message says what to install, and no model would help
        except Exception as e:
            note = _load_failure_advice(f"Whisper {model}", e) + " Started on the embedded tiny.en instead."
            log.error("STT: %s", note)
    return engine(EMBEDDED, device, cfg, cache_dir), note


def build_speaker(cfg: TTSConfig) -> Speaker:
    """The configured engine, with the offline Piper voice behind an online one (tts.fallback)."""
    from audio.tts.piper_speaker import PiperSpeaker

    if cfg.engine == "piper":
        return PiperSpeaker(cfg.piper_model, arena=cfg.piper_arena)
    from audio.tts.edge_speaker import EdgeSpeaker
    from audio.tts.fallback import FallbackSpeaker

    edge = EdgeSpeaker(cfg)
    if cfg.fallback == "none":
        return edge
    return FallbackSpeaker(edge, PiperSpeaker(cfg.piper_model, arena=cfg.piper_arena), cfg.retry_after_s)


def build_listening(cfg: Config) -> tuple[Listening | None, str]:
    """Talk mode's models; without the Smart Turn file it listens by silence alone, and says so."""
    from audio.listen.end_of_turn import EndOfTurnModelMissing, SmartTurn
    from audio.listen.vad import SileroVAD

    talk = cfg.talk
    try:
        vad = SileroVAD()
    except (ImportError, FileNotFoundError, RuntimeError) as e:
        note = f"Talk mode is unavailable: {e}"
        log.error("talk: %s", note)
        return None, note
    turn_model, note = None, ""
    if talk.end_of_turn in ("smart-turn", "hybrid"):
        try:
            turn_model = SmartTurn.from_cache(cfg.cache_path, talk.end_of_turn_threads)
        except (EndOfTurnModelMissing, RuntimeError) as e:
            note = f"Talk mode ends a turn after {talk.silence_timeout_s:g} s of silence: {e}"
            log.error("talk: %s", note)
            talk = dataclasses.replace(talk, end_of_turn="silence")
    return Listening(talk, vad, turn_model, cfg.limits.max_audio_s), note


def _embedded(generator: ReplyGenerator) -> bool:
    """A model too small to follow instructions well (the embedded SmolLM2-135M), rather than a real one."""
    return any(generator.description.startswith(m.name) for m in MODELS.values() if not m.follows_instructions)


def follow_language(cfg: LLMConfig, generator: ReplyGenerator) -> Literal["off", "hint", "strict"]:
    if cfg.follow_language == "auto":
        return "strict" if _embedded(generator) else "hint"
    return cfg.follow_language


def build_toolbox(cfg: Config, generator: ReplyGenerator) -> tuple[Toolbox, Literal["model", "summary"]]:
    """The tools, handed to a generator that calls them natively; and who words their answers."""
    toolbox = Toolbox(cfg.tools)
    use_tools = getattr(generator, "use_tools", None)
    if use_tools is not None:
        use_tools(toolbox)
    answers = cfg.tools.answer_by
    if answers == "auto":  # the embedded 135M model garbles the numbers it is given (config.yaml)
        answers = "summary" if _embedded(generator) else "model"
    return toolbox, answers


def warm_up(engines: Engines, system_prompt: str = "") -> None:
    """Run each local model once so that the first user does not pay for lazy initialisation (llama.cpp also
    keeps the system prompt processed: every conversation starts with it)."""
    from audio.tts.fallback import FallbackSpeaker
    from audio.tts.piper_speaker import PiperSpeaker
    from chatbot.llm.openai_engine import OpenAIChatGenerator

    if not isinstance(engines.generator, OpenAIChatGenerator):  # a server warms itself (and may be down now)
        system: list = [{"role": "system", "content": system_prompt}] if system_prompt else []
        stream = engines.generator.stream([*system, {"role": "user", "content": "Hi"}])
        next(stream, None)
        stream.close()  # cancels the rest of the reply
    engines.transcriber.transcribe(np.zeros(int(WARM_UP_CLIP_S * SAMPLE_RATE), dtype=np.float32))
    # Only an offline engine is warmed: warming edge-tts would spend its connect timeout at every start.
    speaker = engines.speaker.fallback if isinstance(engines.speaker, FallbackSpeaker) else engines.speaker
    if isinstance(speaker, PiperSpeaker):
        for _chunk in speaker.speak("Ready.", VoiceOptions()):
            pass
    if engines.toolbox is not None:
        engines.toolbox.warm_up()
    if engines.listening is not None:  # the VAD's and the end-of-turn model's first calls
        engines.listening.listener().feed(SAMPLE_RATE, np.zeros(int(WARM_UP_CLIP_S * SAMPLE_RATE), np.float32))
        if engines.listening.turn_model is not None:
            engines.listening.turn_model.probability(np.zeros(int(WARM_UP_CLIP_S * SAMPLE_RATE), np.float32))


def build_engines(cfg: Config) -> Engines:
    started = time.perf_counter()
    device, why = resolve_device(cfg.device)
    log.info("device: %s (%s)", device, why)
    llm_cfg = cfg.llm if cfg.llm.parallel else dataclasses.replace(cfg.llm, parallel=cfg.server.concurrency)
    generator, llm_note = build_generator(llm_cfg, device, cfg.cache_path)
    log.info("LLM: %s (context %d tokens, reply up to %d)", generator.description, generator.context_window,
             cfg.llm.max_new_tokens)
    transcriber, stt_note = build_transcriber(cfg.stt, device, cfg.cache_path)
    log.info("STT: %s", transcriber.description)
    speaker = build_speaker(cfg.tts)
    log.info("TTS: %s", speaker.description)
    listening, talk_note = build_listening(cfg)
    log.info("talk: %s", f"end of turn by {listening.talk.end_of_turn}" if listening else "unavailable")
    toolbox, tool_answers = build_toolbox(cfg, generator)
    engines = Engines(device, transcriber, generator, speaker, [n for n in (llm_note, stt_note, talk_note) if n],
                      listening, toolbox, tool_answers, follow_language(llm_cfg, generator))
    warm_up(engines, cfg.llm.system_prompt)
    log.info("models loaded and warmed up in %.1f s", time.perf_counter() - started)
    return engines
