"""One browser session: its exchanges, the single truth of what was said, and the chat panel rendered from them.

An `Exchange` is what the user sent (text, or a recording and its transcript) and the reply (text, audio) with
its status. The chat panel's messages (Gradio's messages format) and the record kept in the browser are both
rendered from the exchanges; nothing is ever read back out of display markup. Sessions are never shared: two
sessions never see each other's exchanges.
"""

from __future__ import annotations

import threading
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator, Literal, NotRequired, TypedDict

from chatbot.conversation import Conversation

Status = Literal["pending", "answered", "stopped", "failed"]  # pending: not answered (yet)

STOPPED_MARK = " ⏹️"  # ends the text of a reply the user stopped
FAILED_MARK = "⚠️ "  # starts the message that says why a turn failed
NOT_ANSWERED = "Not answered"  # the title of that message; the user's message stays above it
SPOKEN = "🎙️ "  # marks a restored voice message: its transcript, its audio gone
TOOL_MARK = "🔧 "  # starts the title of the folded detail that says which tool an answer used


class ChatMessage(TypedDict):
    """A message of the chat panel, in Gradio's messages format."""

    role: Literal["user", "assistant"]
    content: str | list  # text, or [text, {"path": audio file}] / [{"path": ...}]
    metadata: NotRequired[dict]


@dataclass
class UserInput:
    text: str = ""  # what was typed, or the transcript once made ("" before)
    audio: Path | None = None  # the recording, while its file is on the server
    spoken: bool = False  # said rather than typed
    restored: bool = False  # came back from the record kept in the browser: its audio was never here


@dataclass(frozen=True)
class ToolNote:
    """A tool the reply used: shown folded above the answer."""

    source: str  # "Weather for Paris, France — Open-Meteo"
    facts: str  # what it returned


@dataclass
class Reply:
    text: str = ""
    audio: Path | None = None  # the whole reply's speech, once spoken
    tool: ToolNote | None = None


@dataclass(eq=False)  # compared by identity: two exchanges may say the same
class Exchange:
    user: UserInput
    reply: Reply | None = None  # None until the reply starts
    status: Status = "pending"
    reason: str = ""  # why it failed, in words for the user

    def fail(self, reason: str) -> None:
        self.reply, self.status, self.reason = None, "failed", reason

    @property
    def answered(self) -> bool:
        """Whether the conversation committed this exchange: a finished or stopped reply with text."""
        return self.status in ("answered", "stopped") and self.reply is not None and bool(self.reply.text)

    def forget_missing_audio(self) -> None:
        """Audio files that are gone (expired after files.max_age_s) are forgotten; the text stays."""
        if self.user.audio is not None and not self.user.audio.exists():
            self.user.audio = None
        if self.reply is not None and self.reply.audio is not None and not self.reply.audio.exists():
            self.reply.audio = None


# -- rendering ----------------------------------------------------------------------------------------------


def _content(text: str, audio: Path | None) -> str | list:
    items: list = [text] if text else []
    if audio is not None:
        items.append({"path": str(audio)})
    return items[0] if len(items) == 1 and isinstance(items[0], str) else (items or "")


def user_message(user: UserInput) -> ChatMessage:
    if user.restored and user.spoken:
        return {"role": "user", "content": SPOKEN + user.text}
    return {"role": "user", "content": _content(user.text, user.audio)}


def reply_message(exchange: Exchange) -> ChatMessage | None:
    """The assistant's message of an exchange: its reply, the failure, or none yet."""
    if exchange.status == "failed":
        return {"role": "assistant", "content": FAILED_MARK + exchange.reason, "metadata": {"title": NOT_ANSWERED}}
    reply = exchange.reply
    if reply is None:
        return None
    if exchange.status == "stopped":
        return {"role": "assistant", "content": reply.text + STOPPED_MARK}
    return {"role": "assistant", "content": _content(reply.text, reply.audio)}


def tool_message(exchange: Exchange) -> ChatMessage | None:
    """The folded detail above an answer that used a tool: its source as the title, its facts inside."""
    tool = exchange.reply.tool if exchange.reply is not None and exchange.status != "failed" else None
    if tool is None:
        return None
    return {"role": "assistant", "content": tool.facts, "metadata": {"title": TOOL_MARK + tool.source,
                                                                      "status": "done"}}


def render_panel(exchanges: list[Exchange]) -> list[ChatMessage]:
    """The chat panel's messages for these exchanges."""
    messages: list[ChatMessage] = []
    for exchange in exchanges:
        messages.append(user_message(exchange.user))
        tool = tool_message(exchange)
        if tool is not None:
            messages.append(tool)
        reply = reply_message(exchange)
        if reply is not None:
            messages.append(reply)
    return messages


# -- the session --------------------------------------------------------------------------------------------


@dataclass
class ChatSession:
    """Everything one browser tab (or API client) owns."""

    conversation: Conversation  # what the model remembers
    exchanges: list[Exchange] = field(default_factory=list)  # what was said, shown and kept
    cancel: threading.Event = field(default_factory=threading.Event)  # the running turn's
    notices_shown: set[str] = field(default_factory=set)  # what the user was already told
    turn_times: deque = field(default_factory=deque)  # time.monotonic() of recent turns, for the rate limit
    running: int = 0  # turns of this session not yet ended (a stopped one ends at its next token)
    live: object | None = None  # the browser tab's live voice link (chatbot/live.py), once it has one
    _ended: threading.Condition = field(default_factory=threading.Condition, repr=False)

    @property
    def messages(self) -> list[ChatMessage]:
        """The chat panel, rendered from the exchanges."""
        return render_panel(self.exchanges)

    def tracked(self, updates: Iterator) -> Iterator:
        """A turn's updates, counted in `running` until the turn ends, however it ends."""
        with self._ended:
            self.running += 1
        try:
            yield from updates
        finally:
            with self._ended:
                self.running -= 1
                self._ended.notify_all()

    def wait_until_idle(self, timeout_s: float) -> bool:
        """Wait for this session's running turns to end (after `stop`); False if one is still running."""
        with self._ended:
            return self._ended.wait_for(lambda: self.running == 0, timeout_s)

    def begin_turn(self) -> threading.Event:
        """Stop the turn still running (a new message interrupts the old reply) and start a new one."""
        self.cancel.set()
        self.cancel = threading.Event()
        self.forget_expired_audio()
        return self.cancel

    def forget_expired_audio(self) -> None:
        """A panel that names a deleted file would make every later update of this chat fail to be served."""
        for exchange in self.exchanges:
            exchange.forget_missing_audio()

    def stop(self) -> None:
        self.cancel.set()

    def clear(self) -> None:
        self.stop()
        self.conversation.clear()
        self.exchanges.clear()
