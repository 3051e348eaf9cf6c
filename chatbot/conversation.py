"""One conversation per browser session: what the model sees, trimmed to fit its context window."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from chatbot.language import language_of, reply_language
from chatbot.llm.base import Message


class PromptTooLongError(ValueError):
    """Even alone, the new message does not fit the model's context window; the text is for the user."""


@dataclass
class Conversation:
    system_prompt: str
    turns: list[tuple[str, str]] = field(default_factory=list)  # completed (user, assistant) exchanges
    # The language line each turn was asked with (None: none), kept and repeated in later prompts so that a
    # turn's part of the prompt never changes: an engine that keeps the processed prefix (llama.cpp) then
    # processes only the new message.
    reply_languages: list[str | None] = field(default_factory=list)

    def commit(self, user: str, assistant: str, reply_in: str | None = None) -> None:
        """Record a finished exchange; failed or cancelled turns are never committed."""
        self.turns.append((user, assistant))
        self.reply_languages.append(reply_in)

    def drop_last(self) -> None:
        """Forget the latest exchange (its answer is being asked for again)."""
        if self.turns:
            self.turns.pop()
            self.reply_languages.pop()

    def clear(self) -> None:
        self.turns.clear()
        self.reply_languages.clear()

    def language_line(self, text: str) -> str | None:
        """The language to name right before message `text`, or None where the model follows by itself: an
        English message after an English answer (or opening the conversation) needs no line, and every token of
        the new message costs time before the first word (llama.cpp processes only the new message)."""
        language = reply_language(text)
        previous = language_of(self.turns[-1][1]) if self.turns else "English"
        return None if language == "English" and previous in ("English", None) else language

    def _exchanges(self) -> list[tuple[str, str, str | None]]:
        languages = self.reply_languages + [None] * (len(self.turns) - len(self.reply_languages))
        return [(user, assistant, language) for (user, assistant), language in zip(self.turns, languages)]

    def messages(self, user: str, first_turn: int = 0, *, exchanges: list[tuple[str, str, str | None]] | None = None,
                 reply_in: str | None = None) -> list[Message]:
        """System prompt, the exchanges from `first_turn` on (default all), the new message; with `reply_in`, a
        system line naming the language to answer in goes right before it (as it went before earlier ones)."""
        out: list[Message] = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        for past_user, past_assistant, past_language in (self._exchanges() if exchanges is None
                                                          else exchanges)[first_turn:]:
            out.extend(_user_messages(past_user, past_language))
            out.append({"role": "assistant", "content": past_assistant})
        out.extend(_user_messages(user, reply_in))
        return out

    def prompt(self, user: str, count_tokens: Callable[[list[Message]], int], budget: int, *,
               reply_in: str | None = None, same_language_only: bool = False) -> list[Message]:
        """The messages for the model: system prompt, as many of the latest turns as fit, the new message.

        `budget` is the context window minus the tokens reserved for the reply. The oldest turns are dropped
        first; the system prompt always stays. `reply_in` names the language to answer in; with
        `same_language_only`, turns answered in another language are left out (a small model copies them).
        """
        turns = self._exchanges()
        if reply_in and same_language_only:
            turns = [turn for turn in turns if language_of(turn[1]) in (reply_in, None)]

        def fits(first: int) -> bool:
            return count_tokens(self.messages(user, first, exchanges=turns, reply_in=reply_in)) <= budget

        # Binary search for the first turn to keep: token counts grow monotonically with kept turns.
        low, high = 0, len(turns)
        if fits(0):
            return self.messages(user, 0, exchanges=turns, reply_in=reply_in)
        while low < high:
            middle = (low + high) // 2
            if fits(middle):
                high = middle
            else:
                low = middle + 1
        messages = self.messages(user, low, exchanges=turns, reply_in=reply_in)
        needed = count_tokens(messages)
        if needed > budget:
            raise PromptTooLongError(
                f"Your message is too long for the model: {needed} tokens with the instructions, "
                f"and at most {budget} fit. Please shorten it.")
        return messages


def _user_messages(user: str, reply_in: str | None) -> list[Message]:
    language: list[Message] = [{"role": "system", "content": f"Answer in {reply_in}."}] if reply_in else []
    return [*language, {"role": "user", "content": user}]
