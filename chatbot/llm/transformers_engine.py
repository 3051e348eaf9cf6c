"""The transformers reply generator: Phi-3-mini on CUDA (bf16, flash-attn), SmolLM2 on CPU; one loader for both."""

from __future__ import annotations

import importlib.util
import logging
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, StoppingCriteria, StoppingCriteriaList, TextStreamer

from chatbot.llm.base import GenerationSettings, Message, ReplyError
from chatbot.llm.threaded import Emit, stream_in_thread

if TYPE_CHECKING:
    from chatbot.config import LLMConfig

log = logging.getLogger(__name__)

_DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}
_DTYPE_LABELS = {torch.bfloat16: "bf16", torch.float16: "fp16", torch.float32: "fp32"}
_ATTENTION_LABELS = {"flash_attention_2": "flash-attn", "sdpa": "sdpa", "eager": "eager"}
# How long the consumer waits for the next token before deciding generation died. Generous: a cold
# CUDA kernel compile or a swapped-out model can stall the first token for many seconds.
_TOKEN_TIMEOUT_S = 120.0


def flash_attn_available() -> bool:
    return importlib.util.find_spec("flash_attn") is not None


def choose_attention(requested: str, device: str, flash_available: bool | None = None) -> str:
    """flash_attention_2 only on CUDA with the flash-attn package present; sdpa otherwise."""
    if flash_available is None:
        flash_available = flash_attn_available()
    if requested == "auto":
        return "flash_attention_2" if device == "cuda" and flash_available else "sdpa"
    if requested == "flash_attention_2" and not (device == "cuda" and flash_available):
        why = "it needs CUDA" if device != "cuda" else "the flash-attn package is not installed"
        log.warning("attention flash_attention_2 was asked for but %s; using sdpa", why)
        return "sdpa"
    return requested


def choose_dtype(requested: str, device: str) -> torch.dtype:
    """bf16 on CUDA; fp32 on CPU, where bf16 matmuls are slower on most processors."""
    if requested == "auto":
        return torch.bfloat16 if device == "cuda" else torch.float32
    return _DTYPES[requested]


def load_causal_lm(source: str | Path, *, device: str, dtype: torch.dtype, attention: str,
                   gguf_file: str | None = None):
    """Tokenizer and model from a hub id or a local folder: the one path for Phi-3-mini and every other model."""
    extra = {"gguf_file": gguf_file} if gguf_file else {}
    tokenizer = AutoTokenizer.from_pretrained(source, **extra)
    model = AutoModelForCausalLM.from_pretrained(
        source,
        dtype=dtype,
        attn_implementation=attention,
        device_map="auto" if device == "cuda" else None,  # accelerate places the layers on the GPU(s)
        **extra,
    )
    model.eval()
    return tokenizer, model


class _Cancelled(StoppingCriteria):
    """Stops generation at the next token once any of the events is set."""

    def __init__(self, *events: threading.Event):
        self.events = events

    def __call__(self, input_ids: torch.LongTensor, scores, **kwargs) -> torch.BoolTensor:
        stop = any(event.is_set() for event in self.events)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class TransformersGenerator:
    def __init__(self, tokenizer, model, settings: GenerationSettings, *, name: str, device: str,
                 context_window: int = 0):
        if not tokenizer.chat_template:
            raise ValueError(f"{name}: the tokenizer has no chat template, so prompts cannot be formatted")
        self.tokenizer = tokenizer
        self.model = model
        self.settings = settings
        self.context_window = context_window or int(model.config.max_position_embeddings)
        self._device = device
        self._lock = threading.Lock()  # one generation at a time per model: no interleaved kv-caches or OOM
        dtype = _DTYPE_LABELS.get(model.dtype, str(model.dtype))
        attention = _ATTENTION_LABELS.get(model.config._attn_implementation, model.config._attn_implementation)
        self.description = f"{name} · {device} {dtype} {attention}"

    def prompt_ids(self, messages: list[Message]) -> torch.Tensor:
        ids = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, return_tensors="pt",
                                                 return_dict=True)["input_ids"]
        return ids

    def prompt_text(self, messages: list[Message]) -> str:
        return self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)

    def count_tokens(self, messages: list[Message]) -> int:
        return int(self.prompt_ids(messages).shape[-1])

    def _generate_kwargs(self, input_ids: torch.Tensor, streamer, *stops: threading.Event) -> dict:
        s = self.settings
        sampling = s.temperature > 0
        kwargs = dict(
            input_ids=input_ids,
            attention_mask=torch.ones_like(input_ids),
            max_new_tokens=s.max_new_tokens,
            do_sample=sampling,
            repetition_penalty=s.repetition_penalty,
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([_Cancelled(*stops)]),
            pad_token_id=self.tokenizer.pad_token_id or self.tokenizer.eos_token_id,
        )
        if sampling:
            kwargs.update(temperature=s.temperature, top_p=s.top_p)
        else:  # greedy: unset the model's own sampling defaults so transformers does not warn about them
            kwargs.update(temperature=None, top_p=None, top_k=None)
        return kwargs

    def stream(self, messages: list[Message], cancel: threading.Event | None = None) -> Iterator[str]:
        cancel = cancel or threading.Event()  # the caller's: Stop, a new message
        input_ids = self.prompt_ids(messages).to(self.model.device)

        def generate(emit: Emit, closed: threading.Event) -> None:
            with self._lock, torch.inference_mode():
                self.model.generate(**self._generate_kwargs(input_ids, _Emitter(self.tokenizer, emit), cancel, closed))

        try:
            yield from stream_in_thread(generate, token_timeout_s=_TOKEN_TIMEOUT_S, on_failure=self._free_memory)
        except torch.OutOfMemoryError as e:
            where = "The GPU" if self._device == "cuda" else "The computer"
            raise ReplyError(f"{where} ran out of memory for this answer; the memory was freed. Send a shorter "
                             "message, or clear the conversation.") from e

    def _free_memory(self, _error: BaseException) -> None:
        if self._device == "cuda":
            torch.cuda.empty_cache()  # after an out-of-memory error the next turn starts clean


class _Emitter(TextStreamer):
    """Hands each decoded piece of the reply (never the prompt, never special tokens) to `emit`."""

    def __init__(self, tokenizer, emit: Emit):
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self._emit = emit

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self._emit(text)


def load(source: str | Path, name: str, cfg: LLMConfig, device: str, settings: GenerationSettings,
         cache_dir: Path) -> TransformersGenerator:
    """The engine table's entry: a hub id or a folder of transformers weights, on `device`."""
    if cfg.cpu_threads > 0:
        torch.set_num_threads(cfg.cpu_threads)
    tokenizer, lm = load_causal_lm(source, device=device, dtype=choose_dtype(cfg.dtype, device),
                                   attention=choose_attention(cfg.attention, device))
    return TransformersGenerator(tokenizer, lm, settings, name=name, device=device, context_window=cfg.context_window)


def require_runtime() -> None:
    """torch and transformers are always installed (requirements.txt): nothing to check."""
