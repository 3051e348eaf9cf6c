"""The reply generator that asks a server: any OpenAI-compatible chat-completions API, streamed.

vLLM (many users, many GPUs), Ollama, llama.cpp's server and TGI all speak it. The server owns the model and
its batching; this process only streams tokens through. Failures come back as `ReplyError`s that say what is
wrong in words (server down, too slow, died mid-reply, refused the request) and never carry the API key.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

import httpx

from chatbot.llm.base import GenerationSettings, Message, ReplyError

if TYPE_CHECKING:
    from chatbot.config import LLMConfig

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_WINDOW = 4096  # what a server's model is assumed to take when llm.context_window is 0
_CHARS_PER_TOKEN = 3  # a cautious estimate (English averages ~4): the history is trimmed a little early


class OpenAIChatGenerator:
    def __init__(self, cfg: LLMConfig, settings: GenerationSettings):
        self.base_url = cfg.openai_base_url.rstrip("/")
        self.settings = settings
        self.context_window = cfg.context_window or DEFAULT_CONTEXT_WINDOW
        self._model = "" if cfg.model in ("auto", "") else cfg.model
        self._read_timeout_s = cfg.openai_read_timeout_s
        # Only ever sent in the Authorization header; redacted from server messages.
        self._api_key = cfg.openai_api_key or os.environ.get("OPENAI_API_KEY", "")
        headers = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else {}
        self._client = httpx.Client(base_url=self.base_url + "/", headers=headers,
                                    timeout=httpx.Timeout(cfg.openai_read_timeout_s,
                                                          connect=cfg.openai_connect_timeout_s))

    @property
    def description(self) -> str:
        return f"{self._model or 'the default model'} · OpenAI-compatible server at {self.base_url}"

    def model_name(self) -> str:
        """The configured model, or the server's first one (`auto`), asked once."""
        if not self._model:
            with self._errors("list its models"):
                response = self._client.get("models")
                self._check(response)
                models = response.json().get("data") or []
            if not models:
                raise ReplyError(f"The LLM server at {self.base_url} serves no model; set llm.model.")
            self._model = str(models[0]["id"])
            log.info("LLM server at %s serves %s", self.base_url, self._model)
        return self._model

    def count_tokens(self, messages: list[Message]) -> int:
        # The chat-completions API has no tokenizer endpoint: estimate generously from the characters.
        chars = sum(len(str(m.get("content", ""))) for m in messages)
        return chars // _CHARS_PER_TOKEN + 8 * len(messages) + 8

    def _body(self, messages: list[Message]) -> dict:
        s = self.settings
        body = {"model": self.model_name(), "messages": messages, "stream": True, "max_tokens": s.max_new_tokens,
                "temperature": s.temperature}
        if s.temperature > 0:
            body["top_p"] = s.top_p
        return body

    def stream(self, messages: list[Message], cancel: threading.Event | None = None) -> Iterator[str]:
        body = self._body(messages)
        with self._errors("answer"):
            # Leaving this block (the reply is done, Stop, a closed tab, an error) closes the connection,
            # which tells the server to stop generating.
            with self._client.stream("POST", "chat/completions", json=body) as response:
                self._check(response)
                finished = False
                for line in response.iter_lines():
                    if cancel is not None and cancel.is_set():
                        return
                    if not line.startswith("data:"):
                        continue  # blank separators, ": keep-alive" comments, "event:" lines
                    data = line[len("data:"):].strip()
                    if data == "[DONE]":
                        return
                    chunk = json.loads(data)
                    if chunk.get("error"):
                        raise ReplyError(f"The LLM server at {self.base_url} failed: {_error_text(chunk)}")
                    for choice in chunk.get("choices") or []:
                        text = (choice.get("delta") or {}).get("content")
                        if text:
                            yield text
                        finished = finished or bool(choice.get("finish_reason"))
                if not finished:
                    raise ReplyError(f"The LLM server at {self.base_url} stopped in the middle of the answer.")

    def _check(self, response: httpx.Response) -> None:
        if response.status_code == 200:
            return
        response.read()
        try:
            detail = _error_text(response.json())
        except ValueError:
            detail = response.text[:200]
        if self._api_key:  # some servers quote the key they refused
            detail = detail.replace(self._api_key, "[API key]")
        hint = " Check llm.openai_api_key." if response.status_code in (401, 403) else ""
        raise ReplyError(f"The LLM server at {self.base_url} refused the request "
                         f"(HTTP {response.status_code}: {detail}).{hint}")

    def _errors(self, doing: str):
        return _HTTPErrors(self.base_url, doing, self._read_timeout_s)


class _HTTPErrors:
    """Turns transport failures into ReplyErrors that say what happened, in words."""

    def __init__(self, base_url: str, doing: str, read_timeout_s: float):
        self.base_url, self.doing, self.read_timeout_s = base_url, doing, read_timeout_s

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb) -> bool:
        where = f"The LLM server at {self.base_url}"
        if isinstance(error, httpx.ConnectTimeout):
            raise ReplyError(f"{where} did not accept a connection in time. Is it running?") from error
        if isinstance(error, httpx.ConnectError):
            raise ReplyError(f"{where} is not reachable ({_reason(error)}). Start it, or set "
                             f"llm.openai_base_url.") from error
        if isinstance(error, httpx.ReadTimeout):
            raise ReplyError(f"{where} did not {self.doing} within {self.read_timeout_s:.0f} s.") from error
        if isinstance(error, (httpx.RemoteProtocolError, httpx.ReadError)):
            raise ReplyError(f"{where} closed the connection in the middle of the answer.") from error
        if isinstance(error, httpx.HTTPError):
            raise ReplyError(f"{where} could not {self.doing} ({type(error).__name__}).") from error
        if isinstance(error, (json.JSONDecodeError, KeyError, TypeError)):
            raise ReplyError(f"{where} sent something that is not an OpenAI chat-completions "
                             f"stream ({type(error).__name__}).") from error
        return False


def load(source: str | Path, name: str, cfg: LLMConfig, device: str, settings: GenerationSettings,
         cache_dir: Path) -> OpenAIChatGenerator:
    """The engine table's entry: the server owns the model, so `source` is its model name (cfg.model)."""
    return OpenAIChatGenerator(cfg, settings)


def require_runtime() -> None:
    """httpx comes with Gradio: nothing to check."""


def _reason(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.split("] ")[-1][:120]  # "[Errno 111] Connection refused" -> "Connection refused"


def _error_text(payload: dict) -> str:
    error = payload.get("error", payload)
    if isinstance(error, dict):
        return str(error.get("message") or error)[:200]
    return str(error)[:200]
