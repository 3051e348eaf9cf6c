"""How many glibc malloc arenas the server process may use.

glibc gives each thread that allocates its own arena, up to 8 per core. The server runs every step of a
streamed reply on whichever of Gradio's worker threads is free, so memory freed in one arena is not reused by
the next step's allocations in another. In a 60-turn run of the soak's loop the server grew 37 MB with 2
arenas against 144 MB with glibc's default, at the same turn latency; over 200 turns of bench/soak.py the
difference was within run-to-run variation (bench/results.md, "Soak").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # from glibc's malloc.h


def limit_arenas(arenas: int) -> bool:
    """Cap malloc arenas for the threads created from now on (0: glibc's default). True if applied."""
    if arenas <= 0:
        return False
    name = ctypes.util.find_library("c")
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError, TypeError):  # not glibc (musl, macOS, Windows): nothing to tune
        log.info("malloc arenas left as they are: this C library has no mallopt")
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    if mallopt(_M_ARENA_MAX, arenas) != 1:
        log.warning("mallopt(M_ARENA_MAX, %d) was refused; malloc arenas left as they are", arenas)
        return False
    log.debug("malloc arenas capped at %d", arenas)
    return True
