"""The llama.cpp reply generator: a GGUF model in this process, through xllamacpp's prebuilt wheel.

xllamacpp runs llama.cpp's own server engine in-process (continuous batching of `parallel` replies at once);
nothing is compiled and the GGUF is read as it is (no conversion). On the 2-core machines here the embedded
Qwen2.5-Coder-1.5B Q4_K_M decodes ~29 tokens/s (bench/results.md "The embedded LLM").

Each conversation's processed prefix is kept between turns, so a turn's first token costs only its new
message, not the whole history again:
- `parallel` slots share one KV cache (`kv_unified`); a turn goes to the slot that holds most of its prompt
  (its conversation's last turn) when that is at least half of it (`slot_prompt_similarity` 0.5);
- otherwise the least recently used slot takes it: what that slot held is first saved to a prompt cache in RAM
  (`prompt_cache_mib`, least recently used prompts dropped beyond it), and the cached prompt that shares most
  of the new one is loaded back. A conversation whose cache was dropped is processed again, transparently.
KV entries are reused only for an identical token prefix, so one conversation's cache never reaches another's
answer; a new conversation reuses only the shared system prompt.

The engine's HTTP listener (xllamacpp always opens one, on 127.0.0.1 and a free port) is used to count tokens
and is locked with a random key that never leaves this process.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import httpx

from audio.packages import require
from chatbot.llm.base import GenerationSettings, Message, ReplyError
from chatbot.llm.model_cache import split_hub_spec
from chatbot.llm.threaded import Emit, stream_in_thread

if TYPE_CHECKING:
    from chatbot.config import LLMConfig

log = logging.getLogger(__name__)

_TOKEN_TIMEOUT_S = 120.0  # the longest wait for the next token before generation is taken for dead
DEFAULT_CONTEXT_WINDOW = 4096  # tokens per conversation when llm.context_window is 0
_SLOT_SIMILARITY = 0.5  # a slot is reused for a prompt when it holds at least this share of it (module doc)


def runtime():
    """The xllamacpp module, or a MissingPackageError that says what to install."""
    return require("xllamacpp", "xllamacpp==2026.10.11549", "llm.engine llama.cpp")


def require_runtime() -> None:
    runtime()


class LlamaCppGenerator:
    def __init__(self, gguf: Path, settings: GenerationSettings, *, name: str, context_window: int = 0,
                 threads: int = 0, parallel: int = 1, prompt_cache_mib: int = 0, gpu_layers: int = 0):
        xlc = runtime()
        self.settings = settings
        self.context_window = context_window or DEFAULT_CONTEXT_WINDOW
        self.parallel = max(1, parallel)
        threads = threads or os.cpu_count() or 1
        params = xlc.CommonParams()
        params.model.path = str(gguf)
        params.n_ctx = self.context_window * self.parallel  # one shared KV cache: room for every slot's turn
        params.n_parallel = self.parallel
        params.kv_unified = True
        params.slot_prompt_similarity = _SLOT_SIMILARITY
        params.cache_ram_mib = prompt_cache_mib
        params.cpuparams.n_threads = threads
        params.cpuparams_batch.n_threads = threads
        params.n_gpu_layers = gpu_layers
        params.warmup = True
        params.ctx_shift = False  # a reply never silently forgets the start of its prompt: we trim instead
        params.endpoint_slots = False  # nothing of a cached conversation is served over HTTP
        params.endpoint_metrics = False
        params.ui = False  # llama.cpp's own chat page
        self._key = secrets.token_urlsafe(32)
        params.api_keys = [self._key]
        params.verbosity = -1 if log.getEffectiveLevel() > logging.DEBUG else 1
        self._server = xlc.Server(params)
        self._http = httpx.Client(base_url=self._server.listening_address,
                                  headers={"Authorization": f"Bearer {self._key}"}, timeout=30)
        device = "cpu" if gpu_layers == 0 else "gpu"
        self.description = f"{name} · {device} llama.cpp {_quantisation(gguf)}"

    # -- prompt size ---------------------------------------------------------------------------------------

    def _post(self, path: str, body: dict) -> dict:
        try:
            response = self._http.post(path, json=body)
            response.raise_for_status()
            return response.json()
        except httpx.HTTPError as e:
            raise ReplyError("The language model is not answering. Please try again.") from e

    def prompt_text(self, messages: list[Message]) -> str:
        """The prompt exactly as the model sees it (its chat template, generation prompt included)."""
        return self._post("/apply-template", {"messages": messages})["prompt"]

    def count_tokens(self, messages: list[Message]) -> int:
        return len(self._post("/tokenize", {"content": self.prompt_text(messages), "parse_special": True})["tokens"])

    # -- generation ----------------------------------------------------------------------------------------

    def _request(self, messages: list[Message]) -> dict:
        s = self.settings
        request = {"messages": messages, "stream": True, "max_tokens": s.max_new_tokens, "cache_prompt": True,
                   "temperature": s.temperature, "repeat_penalty": s.repetition_penalty}
        if s.temperature > 0:
            request["top_p"] = s.top_p
        return request

    def stream(self, messages: list[Message], cancel: threading.Event | None = None,
               timings: dict | None = None) -> Iterator[str]:
        """Text deltas of the reply. `timings`, if given, receives llama.cpp's figures for this reply when it
        ends: prompt_n (prompt tokens processed), cache_n (prompt tokens reused from a cache), predicted_n..."""
        request = self._request(messages)
        failure: list[str] = []

        def generate(emit: Emit, closed: threading.Event) -> None:
            def on_chunk(chunk) -> bool:
                if isinstance(chunk, (str, bytes)):
                    chunk = json.loads(chunk)
                if "error" in chunk:
                    failure.append(str(chunk["error"].get("message", chunk["error"]))
                                   if isinstance(chunk["error"], dict) else str(chunk["error"]))
                    return True
                for choice in chunk.get("choices") or ():
                    emit((choice.get("delta") or {}).get("content") or "")
                if timings is not None and chunk.get("timings"):
                    timings.update(chunk["timings"])
                # True stops generation: the reader is gone (Stop, a closed tab) or the turn was cancelled.
                return closed.is_set() or (cancel is not None and cancel.is_set())

            result = self._server.handle_chat_completions(request, on_chunk)
            if isinstance(result, dict) and "error" in result:
                failure.append(str(result["error"]))

        yield from stream_in_thread(generate, token_timeout_s=_TOKEN_TIMEOUT_S)
        if failure:
            log.error("llama.cpp: %s", failure[0])
            raise ReplyError("The language model could not answer this message. Please try again.")


def _quantisation(gguf: Path) -> str:
    """Q4_K_M / Q4_1 / F16 from the file's name, for the status line."""
    found = re.search(r"(?i)(?:^|[-_.])(q\d(?:_[0-9a-z]+)*|bf16|f16|f32)(?:$|[-_.])", gguf.stem)
    return found.group(1).upper() if found else "GGUF"


def gguf_file(source: str | Path) -> Path:
    """A local GGUF file, or one from the hub named `owner/repo/file.gguf` (downloaded once)."""
    path = Path(source).expanduser()
    if path.is_file():
        return path
    from huggingface_hub import hf_hub_download

    repo_id, file_name = split_hub_spec(str(source))
    if not file_name.endswith(".gguf"):
        raise FileNotFoundError(f"{source}: the llama.cpp engine takes a .gguf file, or owner/repo/file.gguf")
    return Path(hf_hub_download(repo_id, file_name))


def load(source: str | Path, name: str, cfg: LLMConfig, device: str, settings: GenerationSettings,
         cache_dir: Path) -> LlamaCppGenerator:
    """The engine table's entry: a GGUF file (the embedded models are GGUF files already)."""
    gpu_layers = 999 if device == "cuda" else 0
    return LlamaCppGenerator(gguf_file(source), settings, name=name, context_window=cfg.context_window,
                             threads=cfg.cpu_threads, parallel=cfg.parallel, prompt_cache_mib=cfg.prompt_cache_mib,
                             gpu_layers=gpu_layers)
