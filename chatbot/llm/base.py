"""Reply generation: the streaming interface every LLM engine implements, and what it takes."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Iterator, Literal, Protocol, TypedDict


class Message(TypedDict):
    """One message of a prompt, in the chat-completions shape every engine's chat template reads."""

    role: Literal["system", "user", "assistant"]
    content: str


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int
    temperature: float  # 0 = greedy
    top_p: float
    repetition_penalty: float


class ReplyError(RuntimeError):
    """Generation failed for a reason the user can act on; the message is written for them (no secrets)."""


class ReplyGenerator(Protocol):
    """Streams a reply to a list of chat messages. Never mutates the messages; safe to share."""

    @property
    def description(self) -> str:
        """What runs and where, for the status line: `Phi-3-mini-4k-instruct · cuda bf16 flash-attn`."""
        ...

    @property
    def context_window(self) -> int:
        """Tokens the model can attend to: prompt and reply together."""
        ...

    @property
    def settings(self) -> GenerationSettings:
        ...

    def count_tokens(self, messages: list[Message]) -> int:
        """Prompt tokens for `messages` in the model's own chat format, generation prompt included."""
        ...

    def stream(self, messages: list[Message], cancel: threading.Event | None = None) -> Iterator[str]:
        """Text deltas of the reply, as they are generated. Setting `cancel`, or closing the iterator,
        stops generation and frees the model. Raises `ReplyError` for failures the user can act on."""
        ...
