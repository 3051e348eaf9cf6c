"""The OpenVINO GenAI reply generator: int8/int4 models on Intel (and other x86) CPUs.

It loads an OpenVINO GenAI model folder (`openvino_model.xml` + converted tokenizer): a local one, one from
the hub (the OpenVINO organisation publishes Phi-3-mini-4k-instruct int4, for example), or one exported once
from transformers weights by `chatbot.openvino_export` and cached (the embedded SmolLM2: int8, ~1 min).
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import sys
import threading
from contextlib import closing
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from audio.packages import require
from chatbot.llm.base import GenerationSettings, Message
from chatbot.llm.threaded import Emit, stream_in_thread
from chatbot.llm.model_cache import folder_id, local_folder, prepare_once, run_tool, short_hash, weights_label

if TYPE_CHECKING:
    from chatbot.config import LLMConfig

log = logging.getLogger(__name__)

_TOKEN_TIMEOUT_S = 120.0  # the longest wait for the next token before generation is taken for dead


def runtime():
    """The openvino_genai module, or a MissingPackageError that says what to install."""
    return require("openvino_genai", "openvino-genai==2026.4.1.0", "llm.engine openvino")


def require_runtime() -> None:
    runtime()


def is_openvino_folder(folder: Path) -> bool:
    return (folder / "openvino_model.xml").is_file() and (folder / "openvino_tokenizer.xml").is_file()


def export_openvino_folder(source: Path, cache_dir: Path, *, precision: str, group_size: int) -> Path:
    """An OpenVINO GenAI model exported from a transformers folder, once; later calls return the cached one."""
    runtime()
    for module, package in (("nncf", "nncf==3.4.0"), ("openvino_tokenizers", "openvino-tokenizers==2026.4.1.0")):
        require(module, package, "llm.engine openvino")
    source_id = {"source": folder_id(source), "precision": precision, "group_size": group_size,
                 "openvino": importlib.metadata.version("openvino")}
    target = cache_dir / "openvino" / f"{source.name}-{precision}-{short_hash(source_id)}"

    def build(staging: Path) -> None:
        log.info("exporting %s to OpenVINO %s (about a minute for SmolLM2)...", source, precision)
        run_tool([sys.executable, "-m", "chatbot.llm.openvino_export", str(source), str(staging),
                  "--precision", precision, "--group-size", str(group_size)],
                 "the OpenVINO export", cwd=Path(__file__).resolve().parents[2])

    return prepare_once(target, source_id, build, f"an OpenVINO {precision} model of {source.name}")


class OpenVINOGenerator:
    def __init__(self, folder: Path, settings: GenerationSettings, *, name: str, context_window: int = 0,
                 threads: int = 0):
        og = runtime()
        self._og = og
        properties = {"INFERENCE_NUM_THREADS": threads} if threads > 0 else {}
        self._pipeline = og.LLMPipeline(str(folder), "CPU", **properties)
        self._tokenizer = self._pipeline.get_tokenizer()
        self.settings = settings
        self.context_window = context_window or _context_length(folder)
        self._lock = threading.Lock()  # one generation at a time: the pipeline keeps one KV-cache state
        self.description = f"{name} · cpu openvino {weights_label(folder)}".rstrip()

    def _prompt(self, messages: list[Message]) -> str:
        return self._tokenizer.apply_chat_template(messages, add_generation_prompt=True)

    def count_tokens(self, messages: list[Message]) -> int:
        return int(self._tokenizer.encode(self._prompt(messages)).input_ids.get_shape()[-1])

    def _config(self):
        s = self.settings
        config = self._og.GenerationConfig(max_new_tokens=s.max_new_tokens, repetition_penalty=s.repetition_penalty,
                                           do_sample=s.temperature > 0, apply_chat_template=False)
        if s.temperature > 0:
            config.temperature, config.top_p = s.temperature, s.top_p
        return config

    def stream(self, messages: list[Message], cancel: threading.Event | None = None) -> Iterator[str]:
        og = self._og
        cancel = cancel or threading.Event()  # the caller's: Stop, a new message
        prompt = self._prompt(messages)

        def generate(emit: Emit, closed: threading.Event) -> None:
            def on_text(text: str):
                # Called by the pipeline for each decoded piece; STOP ends generation at the next token.
                emit(text)
                stopped = cancel.is_set() or closed.is_set()
                return og.StreamingStatus.STOP if stopped else og.StreamingStatus.RUNNING

            with self._lock:
                self._pipeline.generate(prompt, self._config(), on_text)

        with closing(stream_in_thread(generate, token_timeout_s=_TOKEN_TIMEOUT_S)) as pieces:
            for text in pieces:
                if cancel.is_set():
                    return
                yield text


def load(source: str | Path, name: str, cfg: LLMConfig, device: str, settings: GenerationSettings,
         cache_dir: Path) -> OpenVINOGenerator:
    """The engine table's entry: an OpenVINO folder, or transformers weights exported once (cached)."""
    folder = local_folder(source)
    if not is_openvino_folder(folder):
        folder = export_openvino_folder(folder, cache_dir, precision=cfg.export_precision,
                                        group_size=cfg.export_block_size)
    return OpenVINOGenerator(folder, settings, name=name, context_window=cfg.context_window, threads=cfg.cpu_threads)


def _context_length(folder: Path) -> int:
    config = folder / "config.json"
    if config.is_file():
        return int(json.loads(config.read_text()).get("max_position_embeddings", 4096))
    return 4096

