"""A spoken turn that the server starts itself, the moment the microphone listener ends the user's turn (or
push-to-talk's last audio arrives), instead of waiting for the page's `utterance` event to ask for it: that
round trip (about 0.1 s) is no longer on the way to the first sound.

It runs in a thread of its own. Its speech goes to the tab's live link as it is made (in talk mode the page
hears of new pieces in the answers to its microphone audio, every 64 ms); its updates wait here for the page's
event, which shows them in the chat. A turn whose event never comes (the tab went away) ends as every turn
does: at its end, or when the tab's close stops the session.

In talk mode a turn can start tentatively, at a pause, while the end of the turn is still being decided
(`talk.speculate`): it transcribes, writes and speaks, but its speech is held and its exchange kept out of the
chat until the listener ends the turn with that very audio (`commit`); if the user goes on, it is discarded.
"""

from __future__ import annotations

import logging
import queue
import threading
from typing import TYPE_CHECKING, Iterator

import numpy as np

from chatbot.turn import TurnGate, TurnUpdate

if TYPE_CHECKING:
    from chatbot.live import LiveLink

log = logging.getLogger(__name__)

_DONE = object()


class EarlyTurn:
    def __init__(self, updates: Iterator[TurnUpdate], link: LiveLink, *, publish: bool,
                 gate: TurnGate | None = None, audio: np.ndarray | None = None):
        """`updates`: the turn (not started yet); `publish`: its speech is played as it comes (the page's
        autoplay), else only kept in the chat. `gate`: a tentative turn (started at a pause), whose speech is
        held until `commit()`; `discard()` stops it. `audio`: what it answers (to match the turn's end)."""
        self._updates = updates
        self._link = link
        self._publish = publish
        self._gate = gate
        self.audio = audio
        self._held: list = []  # speech made before the commit
        self._lock = threading.Lock()
        self.turn = link.begin_turn()  # the link's number for this turn's speech
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="early-turn", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            for update in self._updates:
                if update.speech and self._publish:
                    with self._lock:
                        if self._gate is None or self._gate.opened:
                            self._link.publish(self.turn, update.speech)
                        else:
                            self._held.extend(update.speech)
                if self._gate is None or self._gate.opened:  # (a pause is not "thinking" for the page)
                    self._link.note_stage(self.turn, update.stage)  # for the page's state
                self._queue.put(update)
        except Exception:  # a turn reports its own failures as updates; this is a bug, kept in the log
            log.exception("a spoken turn started by the server failed")
        finally:
            self._queue.put(_DONE)

    def updates(self) -> Iterator[TurnUpdate]:
        """The turn's updates from now on, for the page's `utterance` event. Those that piled up before it came
        are given as the latest of them (each carries the whole chat; the speech went to the link already),
        with every notice on the way: sent one by one, the backlog would hold up the page."""
        while True:
            batch = [self._queue.get()]
            while True:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            ended = batch[-1] is _DONE
            if ended:
                batch.pop()
            yield from (update for update in batch[:-1] if update.notice)
            if batch:
                yield batch[-1]
            if ended:
                return

    def commit(self) -> None:
        """The user had finished: the turn is confirmed, its speech so far goes to the page, the rest as made."""
        with self._lock:
            if self._gate is not None:
                self._gate.open()
            if self._held:
                self._link.publish(self.turn, tuple(self._held))
                self._held = []

    def discard(self) -> None:
        """The user went on: the turn stops and leaves nothing in the chat or the conversation."""
        if self._gate is not None:
            self._gate.close()

    def join(self, timeout_s: float | None = None) -> bool:
        self._thread.join(timeout_s)
        return not self._thread.is_alive()
