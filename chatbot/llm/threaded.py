"""Streaming from an engine whose generate() call blocks until the reply is done (transformers, OpenVINO).

The call runs in a thread of its own and hands each decoded piece to a queue; the consumer yields them. The
thread holds the engine's lock, not the consumer: a consumer that stops pulling (a cancelled web request)
cannot keep the model locked. Closing the iterator (Stop, a closed tab) sets `closed`, which the engine's own
stop hook reads, and waits for the thread: no orphan keeps the model busy. A failure in the thread is raised
again in the consumer's.
"""

from __future__ import annotations

import queue
import threading
from typing import Callable, Iterator

_DONE = object()

Emit = Callable[[str], None]


class TokenTimeout(RuntimeError):
    """No token came for the whole wait: the generation thread is stuck."""


def stream_in_thread(generate: Callable[[Emit, threading.Event], None], *, token_timeout_s: float,
                     on_failure: Callable[[BaseException], None] = lambda e: None) -> Iterator[str]:
    """Run `generate(emit, closed)` in a thread; yield what it emits, in order, until it returns.

    `on_failure` runs in the generation thread when `generate` raises (to free GPU memory, say)."""
    pieces: queue.Queue = queue.Queue()
    closed = threading.Event()  # the consumer stopped reading
    failure: list[BaseException] = []

    def run() -> None:
        try:
            generate(pieces.put, closed)
        except BaseException as e:  # re-raised in the consumer's thread below
            failure.append(e)
            on_failure(e)
        finally:
            pieces.put(_DONE)

    worker = threading.Thread(target=run, name="llm-generate", daemon=True)
    worker.start()
    try:
        while True:
            try:
                piece = pieces.get(timeout=token_timeout_s)
            except queue.Empty as e:
                raise TokenTimeout(f"no token for {token_timeout_s:.0f} s") from e
            if piece is _DONE:
                break
            if piece:
                yield piece
    finally:
        closed.set()
        worker.join()
    if failure:
        raise failure[0]
