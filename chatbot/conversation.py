"""One conversation per browser session: what the model sees, trimmed to fit its context window."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from chatbot.language import language_of
from chatbot.llm.base import Message


class PromptTooLongError(ValueError):
    """Even alone, the new message does not fit the model's context window; the text is for the user."""


@dataclass
class Conversation:
    system_prompt: str
    turns: list[tuple[str, str]] = field(default_factory=list)  # completed (user, assistant) exchanges

    def commit(self, user: str, assistant: str) -> None:
        """Record a finished exchange; failed or cancelled turns are never committed."""
        self.turns.append((user, assistant))

    def drop_last(self) -> None:
        """Forget the latest exchange (its answer is being asked for again)."""
        if self.turns:
            self.turns.pop()

    def clear(self) -> None:
        self.turns.clear()

    def messages(self, user: str, first_turn: int = 0, *, turns: list[tuple[str, str]] | None = None,
                 reply_in: str | None = None) -> list[Message]:
        """System prompt, the turns from `first_turn` on (of `turns`, default all), the new message; with
        `reply_in`, a system line naming the language to answer in goes right before it."""
        out: list[Message] = [{"role": "system", "content": self.system_prompt}] if self.system_prompt else []
        for past_user, past_assistant in (self.turns if turns is None else turns)[first_turn:]:
            out.append({"role": "user", "content": past_user})
            out.append({"role": "assistant", "content": past_assistant})
        if reply_in:
            out.append({"role": "system", "content": f"Answer in {reply_in}."})
        out.append({"role": "user", "content": user})
        return out

    def prompt(self, user: str, count_tokens: Callable[[list[Message]], int], budget: int, *,
               reply_in: str | None = None, same_language_only: bool = False) -> list[Message]:
        """The messages for the model: system prompt, as many of the latest turns as fit, the new message.

        `budget` is the context window minus the tokens reserved for the reply. The oldest turns are dropped
        first; the system prompt always stays. `reply_in` names the language to answer in; with
        `same_language_only`, turns answered in another language are left out (a small model copies them).
        """
        turns = self.turns
        if reply_in and same_language_only:
            turns = [turn for turn in turns if language_of(turn[1]) in (reply_in, None)]

        def fits(first: int) -> bool:
            return count_tokens(self.messages(user, first, turns=turns, reply_in=reply_in)) <= budget

        # Binary search for the first turn to keep: token counts grow monotonically with kept turns.
        low, high = 0, len(turns)
        if fits(0):
            return self.messages(user, 0, turns=turns, reply_in=reply_in)
        while low < high:
            middle = (low + high) // 2
            if fits(middle):
                high = middle
            else:
                low = middle + 1
        messages = self.messages(user, low, turns=turns, reply_in=reply_in)
        needed = count_tokens(messages)
        if needed > budget:
            raise PromptTooLongError(
                f"Your message is too long for the model: {needed} tokens with the instructions, "
                f"and at most {budget} fit. Please shorten it.")
        return messages
