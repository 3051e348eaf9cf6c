"""Repeated log lines rate limited (issue 23, "log flooding"): 5,000 bad requests wrote 4,942 log lines in 28 s,
enough to fill a disk or bury what matters. `RepeatLimit` lets through `burst` records of one kind (logger, level
and message template, whatever the arguments) per `window_s`; the rest are counted, and the next one let through
after the window says how many were left out.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable

_KINDS_KEPT = 1000  # kinds remembered at once; the least recently seen are forgotten beyond


@dataclass
class _Kind:
    started: float  # when its current window began
    count: int = 0  # records of it in the window
    left_out: int = 0  # of those, not logged


class RepeatLimit(logging.Filter):
    def __init__(self, burst: int, window_s: float, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.burst = burst
        self.window_s = window_s
        self._clock = clock
        self._kinds: OrderedDict[tuple, _Kind] = OrderedDict()

    def filter(self, record: logging.LogRecord) -> bool:
        if self.burst <= 0:
            return True
        key = (record.name, record.levelno, str(record.msg)[:200])
        now = self._clock()
        kind = self._kinds.get(key)
        if kind is None or now - kind.started >= self.window_s:
            left_out = kind.left_out if kind is not None else 0
            kind = self._kinds[key] = _Kind(now)
            if left_out:
                record.msg = f"{record.getMessage()} ({left_out} more like this were not logged in the last " \
                             f"{self.window_s:g} s)"
                record.args = None
        self._kinds.move_to_end(key)
        while len(self._kinds) > _KINDS_KEPT:
            self._kinds.popitem(last=False)
        kind.count += 1
        if kind.count <= self.burst:
            return True
        kind.left_out += 1
        return False


def limit_repeats(burst: int, window_s: float) -> None:
    """Put the limit on every handler of the root logger (each record passes it once, whichever logger made it)."""
    for handler in logging.getLogger().handlers:
        handler.addFilter(RepeatLimit(burst, window_s))
