"""The reply generator that asks a server: any OpenAI-compatible chat-completions API, streamed.

vLLM (many users, many GPUs), Ollama, llama.cpp's server and TGI all speak it. The server owns the model and
its batching; this process only streams tokens through. Failures come back as `ReplyError`s that say what is
wrong in words (server down, too slow, died mid-reply, refused the request) and never carry the API key.

Given a `Toolbox` (chatbot.tools), the generator calls tools natively: it offers their schemas as the
request's `tools`, and when the model answers with tool calls it says each call's lead-in, runs it and sends
the facts back as `tool` messages (the standard chat-completions tool flow) for the model to phrase. A server
that refuses `tools` (vLLM without --enable-auto-tool-choice, llama.cpp without --jinja, an Ollama model without
tool support) is asked again without them, and from then on the deterministic parser decides instead.
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
from chatbot.tools import Toolbox, ToolError, ToolListener, facts_prompt, last_user_text, stream_with_tools

if TYPE_CHECKING:
    from chatbot.config import LLMConfig

log = logging.getLogger(__name__)

DEFAULT_CONTEXT_WINDOW = 4096  # what a server's model is assumed to take when llm.context_window is 0
_CHARS_PER_TOKEN = 3  # a cautious estimate (English averages ~4): the history is trimmed a little early
MAX_TOOL_ROUNDS = 2  # tool requests per answer; after that the model is asked without tools, so it answers


class _ToolsRefused(Exception):
    """The server turned down a request because it carried `tools`."""


class OpenAIChatGenerator:
    def __init__(self, cfg: LLMConfig, settings: GenerationSettings, toolbox: Toolbox | None = None):
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
        self._toolbox: Toolbox | None = None
        self._tools_refused = False  # the server said no to `tools` once: the parser decides from then on
        self.use_tools(toolbox)

    def use_tools(self, toolbox: Toolbox | None) -> None:
        """Call these tools from now on (None: none). Only a toolbox whose config allows native calling."""
        self._toolbox = toolbox if toolbox is not None and toolbox.native_calling else None

    @property
    def calls_tools(self) -> bool:
        """True when this generator handles tool questions itself (natively, or with the parser where the
        server refuses `tools`): the turn must not plan them again."""
        return self._toolbox is not None

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

    def stream(self, messages: list[Message], cancel: threading.Event | None = None,
               on_tool: ToolListener | None = None) -> Iterator[str]:
        """The reply's text deltas. With tools, a call's lead-in ("Checking the weather in Paris… ") comes
        first, then the model's answer from the facts, or the tool's failure in plain words (the model is not
        asked to answer without facts). `on_tool(call, result_or_error)` hears of each call."""
        toolbox = self._toolbox
        if toolbox is None:
            yield from self._stream_once(self._body(messages), cancel)
        elif self._tools_refused:
            yield from self._stream_planned(toolbox, messages, cancel, on_tool)
        else:
            yield from self._stream_with_native_tools(toolbox, messages, cancel, on_tool)

    def _stream_planned(self, toolbox: Toolbox, messages: list[Message], cancel: threading.Event | None,
                        on_tool: ToolListener | None) -> Iterator[str]:
        yield from stream_with_tools(toolbox, messages, lambda m: self._stream_once(self._body(m), cancel), on_tool)

    def _stream_with_native_tools(self, toolbox: Toolbox, messages: list[Message], cancel: threading.Event | None,
                                  on_tool: ToolListener | None) -> Iterator[str]:
        conversation = list(messages)
        # The parser is the net: a question it knows for a tool's must reach the tool. The model's text is held
        # back until it has called one; a server that silently ignores `tools` (llama.cpp's with a plain chat
        # format) would otherwise answer "it's sunny in Paris" from nothing.
        held: list[str] | None = [] if toolbox.plan(last_user_text(messages)) is not None else None
        for round_ in range(MAX_TOOL_ROUNDS + 1):
            body = self._body(conversation)
            if round_ < MAX_TOOL_ROUNDS:
                body["tools"], body["tool_choice"] = toolbox.schemas(), "auto"
            calls: list[dict] = []
            try:
                pieces = self._stream_once(body, cancel, calls)
                if held is None:
                    yield from pieces
                else:
                    held.extend(pieces)
            except _ToolsRefused as refused:
                log.warning("The LLM server at %s does not take tools (%s); weather and time questions are "
                            "recognised by the parser from now on", self.base_url, refused)
                self._tools_refused = True
                yield from self._stream_planned(toolbox, messages, cancel, on_tool)
                return
            if held is not None and not calls:
                log.warning("the model answered a tool question without calling its tool; the parser's call "
                            "is made instead (does the server at %s ignore `tools`?)", self.base_url)
                yield from self._stream_planned(toolbox, messages, cancel, on_tool)
                return
            if held:
                yield from held
            held = None
            if not calls or (cancel is not None and cancel.is_set()):
                return
            if not (yield from _run_calls(toolbox, calls, conversation, on_tool)):
                return

    def _stream_once(self, body: dict, cancel: threading.Event | None,
                     calls: list[dict] | None = None) -> Iterator[str]:
        """One streamed request: yields its text; tool-call fragments are gathered into `calls`."""
        with self._errors("answer"):
            # Leaving this block (the reply is done, Stop, a closed tab, an error) closes the connection,
            # which tells the server to stop generating.
            with self._client.stream("POST", "chat/completions", json=body) as response:
                self._check(response, offered_tools="tools" in body)
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
                        delta = choice.get("delta") or {}
                        text = delta.get("content")
                        if text:
                            yield text
                        if calls is not None:
                            _gather_tool_calls(calls, delta.get("tool_calls") or [])
                        finished = finished or bool(choice.get("finish_reason"))
                if not finished:
                    raise ReplyError(f"The LLM server at {self.base_url} stopped in the middle of the answer.")

    def _check(self, response: httpx.Response, offered_tools: bool = False) -> None:
        if response.status_code == 200:
            return
        response.read()
        try:
            detail = _error_text(response.json())
        except ValueError:
            detail = response.text[:200]
        if self._api_key:  # some servers quote the key they refused
            detail = detail.replace(self._api_key, "[API key]")
        if offered_tools and response.status_code in (400, 404, 422, 500, 501) and "tool" in detail.lower():
            raise _ToolsRefused(f"HTTP {response.status_code}: {detail}")
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


def _run_calls(toolbox: Toolbox, calls: list[dict], conversation: list, on_tool: ToolListener | None):
    """Run the model's tool calls, saying each lead-in, and add their facts to `conversation` for the next
    round; returns False (after saying why) when a call is unusable or a tool failed: no facts, no answer."""
    conversation.append({"role": "assistant", "content": None, "tool_calls": [
        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"]}}
        for c in calls]})
    for made in calls:
        try:
            call = toolbox.call(made["name"], made["arguments"])
        except ToolError as error:
            log.warning("unusable tool call from the model: %s(%s)", made["name"], made["arguments"][:200])
            yield str(error)
            return False
        if call.lead_in:
            yield call.lead_in + " "
        outcome = toolbox.attempt(call, on_tool)
        if isinstance(outcome, ToolError):
            yield str(outcome)  # the model is not asked to guess
            return False
        conversation.append({"role": "tool", "tool_call_id": made["id"], "content": facts_prompt(outcome)})
    return True


def _gather_tool_calls(calls: list[dict], fragments: list[dict]) -> None:
    """Streamed tool calls come in pieces keyed by `index`: the id and name once, the JSON arguments in
    fragments to be joined."""
    for fragment in fragments:
        index = int(fragment.get("index", len(calls)))
        while len(calls) <= index:
            calls.append({"id": f"call_{len(calls)}", "name": "", "arguments": ""})
        slot = calls[index]
        slot["id"] = fragment.get("id") or slot["id"]
        function = fragment.get("function") or {}
        slot["name"] = function.get("name") or slot["name"]
        slot["arguments"] += function.get("arguments") or ""


def _reason(error: Exception) -> str:
    text = str(error).strip() or type(error).__name__
    return text.split("] ")[-1][:120]  # "[Errno 111] Connection refused" -> "Connection refused"


def _error_text(payload: dict) -> str:
    error = payload.get("error", payload)
    if isinstance(error, dict):
        return str(error.get("message") or error)[:200]
    return str(error)[:200]
