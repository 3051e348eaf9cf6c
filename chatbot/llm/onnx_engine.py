"""The ONNX Runtime GenAI reply generator: int8/int4 models on a CPU, several times faster than transformers.

It loads an ORT GenAI model folder (`genai_config.json` + `model.onnx`): a local one, one from the hub
(Microsoft publishes Phi-3-mini-4k-instruct for it), or one built once from transformers weights by
onnxruntime-genai's model builder (the embedded SmolLM2 is built this way, int8, in ~30 s) and cached.
"""

from __future__ import annotations

import importlib.metadata
import json
import logging
import os
import sys
import tempfile
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from audio.packages import require
from chatbot.llm.base import GenerationSettings, Message
from chatbot.llm.model_cache import folder_id, local_folder, prepare_once, run_tool, short_hash, weights_label

if TYPE_CHECKING:
    from chatbot.config import LLMConfig

log = logging.getLogger(__name__)


def runtime():
    """The onnxruntime_genai module, or a MissingPackageError that says what to install."""
    return require("onnxruntime_genai", "onnxruntime-genai==0.18.0", "llm.engine onnxruntime-genai")


def require_runtime() -> None:
    runtime()


def is_genai_folder(folder: Path) -> bool:
    return (folder / "genai_config.json").is_file()


def build_genai_folder(source: Path, cache_dir: Path, *, precision: str, block_size: int) -> Path:
    """An ORT GenAI model built from a transformers folder, once; later calls return the cached folder."""
    runtime()  # say what to install before building anything
    source_id = {"source": folder_id(source), "precision": precision, "block_size": block_size,
                 "builder": importlib.metadata.version("onnxruntime-genai")}
    target = cache_dir / "onnxruntime-genai" / f"{source.name}-{precision}-{short_hash(source_id)}"

    def build(staging: Path) -> None:
        # onnxruntime-genai's model builder peaks near 2 GB: run_tool keeps that out of the app's process.
        log.info("building an ONNX Runtime GenAI %s model from %s (about 30 s for SmolLM2)...", precision, source)
        with tempfile.TemporaryDirectory(prefix="ort-builder-") as scratch:
            run_tool([sys.executable, "-m", "onnxruntime_genai.models.builder", "-i", str(source), "-o", str(staging),
                      "-p", precision, "-e", "cpu", "-c", scratch, "--extra_options", f"block_size={block_size}"],
                     "the ONNX Runtime GenAI model builder")

    return prepare_once(target, source_id, build, f"an ONNX Runtime GenAI {precision} model of {source.name}")


class OnnxGenAIGenerator:
    def __init__(self, folder: Path, settings: GenerationSettings, *, name: str, context_window: int = 0,
                 threads: int = 0):
        og = runtime()
        self._og = og
        config = og.Config(str(folder))
        # ONNX Runtime GenAI's own default ran on one core here (45 tok/s against 77 with both): ask for them all.
        threads = threads or os.cpu_count() or 1
        config.overlay(json.dumps({"model": {"decoder": {"session_options": {"intra_op_num_threads": threads}}}}))
        self._model = og.Model(config)
        self._tokenizer = og.Tokenizer(self._model)
        genai = json.loads((folder / "genai_config.json").read_text())
        self.settings = settings
        self.context_window = context_window or int(genai["model"]["context_length"])
        self.description = f"{name} · {self._model.device_type.lower()} onnxruntime-genai {weights_label(folder)}"

    def prompt_ids(self, messages: list[Message]):
        text = self._tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
        return self._tokenizer.encode(text)

    def count_tokens(self, messages: list[Message]) -> int:
        return len(self.prompt_ids(messages))

    def _search_options(self, prompt_tokens: int) -> dict:
        s = self.settings
        options = dict(max_length=min(prompt_tokens + s.max_new_tokens, self.context_window),
                       repetition_penalty=s.repetition_penalty, do_sample=s.temperature > 0)
        if s.temperature > 0:
            options.update(temperature=s.temperature, top_p=s.top_p)
        return options

    def stream(self, messages: list[Message], cancel: threading.Event | None = None) -> Iterator[str]:
        # Generation runs in the consumer's thread, one token per step: stopping pulling (Stop, a closed tab,
        # a cancel) stops generating, and no thread or lock outlives the iterator. Each call has its own
        # generator state; the model itself is shared and safe to use from several threads.
        og = self._og
        ids = self.prompt_ids(messages)
        params = og.GeneratorParams(self._model)
        params.set_search_options(**self._search_options(len(ids)))
        generator = og.Generator(self._model, params)
        decoder = self._tokenizer.create_stream()
        generator.append_tokens(ids)  # the prompt's forward pass
        while not generator.is_done():
            if cancel is not None and cancel.is_set():
                return
            generator.generate_next_token()
            text = decoder.decode(generator.get_next_tokens()[0])
            if text:
                yield text


def load(source: str | Path, name: str, cfg: LLMConfig, device: str, settings: GenerationSettings,
         cache_dir: Path) -> OnnxGenAIGenerator:
    """The engine table's entry: an ORT GenAI folder, or transformers weights built into one once (cached)."""
    folder = local_folder(source)
    if not is_genai_folder(folder):
        folder = build_genai_folder(folder, cache_dir, precision=cfg.export_precision, block_size=cfg.export_block_size)
    return OnnxGenAIGenerator(folder, settings, name=name, context_window=cfg.context_window, threads=cfg.cpu_threads)
