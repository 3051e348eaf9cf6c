"""A conversation as a plain record: kept in the browser across reloads, and downloaded as JSON or Markdown.

The record is rendered from the session's exchanges and holds text only (messages, with voice messages as their
transcripts), never file paths: a record comes back from the browser, and a path in it would let a client ask
the server for any file. Restoring turns a record back into exchanges.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
import secrets
import time
from pathlib import Path

from chatbot.session import (FAILED_MARK, SPOKEN, STOPPED_MARK, ChatSession, Exchange, Reply, ToolNote, UserInput,
                             reply_message)

log = logging.getLogger(__name__)

FORMAT = "voice-chatbot.conversation.v1"
SEALED = "voice-chatbot.sealed.v1"  # what the browser keeps: the record as JSON text, and the server's HMAC of it
_MAX_ENTRIES = 1000  # a restored record larger than this is cut to its latest entries
_MAX_TEXT = 50_000  # characters per message in a restored record
EMPTY_RECORD = {"format": FORMAT, "messages": [], "turns": []}


def _entries(exchange: Exchange) -> list[dict]:
    user = {"role": "user", "text": exchange.user.text}
    if exchange.user.spoken:
        user["spoken"] = True
    entries = [user]
    reply = reply_message(exchange)
    if reply is not None:
        entry = {"role": "assistant", "text": exchange.reply.text if exchange.reply else ""}
        if exchange.status == "failed":
            entry.update(text=reply["content"], failed=True)
        elif exchange.status == "stopped":
            entry["text"] = reply["content"]
        if exchange.reply is not None and exchange.reply.tool is not None and exchange.status != "failed":
            entry["tool"] = {"source": exchange.reply.tool.source, "facts": exchange.reply.tool.facts}
        entries.append(entry)
    return entries


def to_record(session: ChatSession) -> dict:
    """What the chat panel shows and what the model remembers, as JSON-safe plain data."""
    entries = [entry for exchange in session.exchanges for entry in _entries(exchange)]
    return {"format": FORMAT, "messages": entries, "turns": [list(turn) for turn in session.conversation.turns]}


def _exchange(user: dict, reply: dict | None) -> Exchange:
    """An exchange from a user entry and the assistant entry after it (if any)."""
    spoken = user["spoken"]
    exchange = Exchange(UserInput(text=user["text"].removeprefix(SPOKEN), spoken=spoken, restored=spoken))
    if reply is None:
        return exchange
    text = reply["text"]
    if reply["failed"]:
        exchange.fail(text.removeprefix(FAILED_MARK.strip()).strip())
    elif text.endswith(STOPPED_MARK.strip()):
        exchange.reply, exchange.status = Reply(text.removesuffix(STOPPED_MARK.strip()).rstrip()), "stopped"
    else:
        exchange.reply, exchange.status = Reply(text), "answered"
    if reply["tool"] is not None and exchange.reply is not None:
        exchange.reply.tool = ToolNote(*reply["tool"])
    return exchange


def restore(session: ChatSession, record) -> bool:
    """Fill an empty session from a record saved in the browser. A malformed record is ignored (logged)."""
    try:
        messages, turns = _validated(record)
    except ValueError as e:
        log.warning("ignoring a saved conversation: %s", e)
        return False
    pending: dict | None = None  # a user entry waiting for its reply
    for entry in messages:
        if entry["role"] == "user":
            if pending is not None:
                session.exchanges.append(_exchange(pending, None))
            pending = entry
        elif pending is not None:
            session.exchanges.append(_exchange(pending, entry))
            pending = None
        else:
            log.warning("ignoring a saved reply that follows no message")
    if pending is not None:
        session.exchanges.append(_exchange(pending, None))
    for user, reply in turns:
        session.conversation.commit(user, reply)
    return True


def _validated(record) -> tuple[list[dict], list[tuple[str, str]]]:
    if not isinstance(record, dict) or record.get("format") != FORMAT:
        raise ValueError("not a conversation record")
    messages, turns = record.get("messages"), record.get("turns")
    if not isinstance(messages, list) or not isinstance(turns, list):
        raise ValueError("messages and turns must be lists")
    clean = []
    for entry in messages[-_MAX_ENTRIES:]:
        if not (isinstance(entry, dict) and entry.get("role") in ("user", "assistant")
                and isinstance(entry.get("text"), str)):
            raise ValueError(f"bad message entry {str(entry)[:80]!r}")
        clean.append({"role": entry["role"], "text": entry["text"][:_MAX_TEXT],
                      "spoken": entry.get("spoken") is True, "failed": entry.get("failed") is True,
                      "tool": _tool_of(entry.get("tool"))})
    clean_turns = []
    for turn in turns[-_MAX_ENTRIES:]:
        if not (isinstance(turn, list) and len(turn) == 2 and all(isinstance(t, str) for t in turn)):
            raise ValueError(f"bad turn {str(turn)[:80]!r}")
        clean_turns.append((turn[0][:_MAX_TEXT], turn[1][:_MAX_TEXT]))
    return clean, clean_turns


def _tool_of(tool) -> tuple[str, str] | None:
    """(source, facts) of a restored answer's tool, or None when it has none (or a malformed one)."""
    if isinstance(tool, dict) and isinstance(tool.get("source"), str) and isinstance(tool.get("facts"), str):
        return tool["source"][:_MAX_TEXT], tool["facts"][:_MAX_TEXT]
    return None


def to_json(record: dict, *, model: str) -> str:
    exported = {"format": FORMAT, "exported_at": _now(), "model": model, "messages": record["messages"]}
    return json.dumps(exported, ensure_ascii=False, indent=2) + "\n"


def to_markdown(record: dict, *, model: str) -> str:
    lines = [f"# Conversation, {_now()}", "", f"_Model: {model}_", ""]
    for entry in record["messages"]:
        if entry["role"] == "user":
            who = "**You** (spoken)" if entry.get("spoken") else "**You**"
            text = entry["text"]
        else:
            who = "**Assistant** (not answered)" if entry.get("failed") else "**Assistant**"
            text = entry["text"].replace(STOPPED_MARK, " _(stopped)_")
            if entry.get("tool"):
                text += f" _({entry['tool']['source']})_"
        lines += [f"{who}: {text}", ""]
    return "\n".join(lines)


def export_names() -> tuple[str, str]:
    stamp = time.strftime("%Y-%m-%d-%H%M", time.gmtime())
    return f"conversation-{stamp}.json", f"conversation-{stamp}.md"


def _now() -> str:
    return time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())


class SealError(ValueError):
    """A conversation from a browser that is refused: forged, altered, or larger than allowed."""


def seal(record: dict, key: str, *, max_bytes: int, max_turns: int) -> dict:
    """The record as the browser keeps it: readable there (it is that browser's own conversation), and signed
    with the server's key, which never leaves the server, so that no altered or made-up record is taken back.
    A conversation past the bounds `unseal` keeps is saved from its newest part that fits them, so that a reload
    brings back its latest turns rather than refusing it whole."""
    record = {**record, "turns": record["turns"][-max_turns:] if max_turns else []}
    data = _dumps(record)
    while len(data) > max_bytes and record["messages"]:
        messages, turns = record["messages"], record["turns"]
        drop = max(1, len(messages) // 10)  # the oldest tenth, then again: a few passes at most
        kept = messages[drop:]
        while kept and kept[0]["role"] != "user":  # it starts with a message of the user's
            kept = kept[1:]
        record = {**record, "messages": kept, "turns": turns[max(1, len(turns) // 10):] if turns else turns}
        data = _dumps(record)
    return {"format": SEALED, "data": data, "mac": _mac(data, key)}


def _dumps(record: dict) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))


def unseal(value, key: str, *, max_bytes: int, max_turns: int) -> dict:
    """The record in a sealed value from a browser. Checked in the order that costs least: its shape and size
    (before anything is parsed), its signature, then the number of turns. O(size); raises SealError."""
    if not isinstance(value, dict) or value.get("format") != SEALED:
        raise SealError("not a sealed conversation")
    data, mac = value.get("data"), value.get("mac")
    if not isinstance(data, str) or not isinstance(mac, str):
        raise SealError("a sealed conversation without its data or signature")
    if len(data) > max_bytes:  # characters: at least as many bytes
        raise SealError(f"a saved conversation of {len(data) // 1024} KB, over the {max_bytes // 1024} KB allowed")
    if not hmac.compare_digest(mac.encode(), _mac(data, key).encode()):  # bytes: any text a forger sends
        raise SealError("a saved conversation whose signature does not match: altered or forged")
    record = json.loads(data)
    if isinstance(record, dict) and len(record.get("turns") or ()) > max_turns:
        raise SealError(f"a saved conversation of {len(record['turns'])} turns, more than the model can hold")
    return record


def _mac(data: str, key: str) -> str:
    return hmac.new(key.encode(), data.encode(), hashlib.sha256).hexdigest()


def storage_secret(key: str) -> str:
    """The secret Gradio encrypts the kept conversation with in the browser: it reaches the page, so it is derived
    from the signing key one way (the key cannot be had from it), and fixed with it (a restart keeps it)."""
    return hmac.new(key.encode(), b"browser storage", hashlib.sha256).hexdigest()[:32]


def browser_secret(cache_dir: Path) -> str:
    """The key that signs conversations kept in browsers; kept in the cache so that they survive restarts."""
    path = cache_dir / "browser-state.key"
    if not path.is_file():
        cache_dir.mkdir(parents=True, exist_ok=True)
        try:
            descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)  # readable by us only
        except FileExistsError:
            pass  # another process made it a moment ago
        else:
            with os.fdopen(descriptor, "w") as f:
                f.write(secrets.token_urlsafe(32))
    return path.read_text().strip()
