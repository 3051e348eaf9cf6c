"""glibc malloc settings for the server process: how many arenas, and handing freed memory back.

glibc gives each thread that allocates its own arena, up to 8 per core. The server runs every step of a
streamed reply on whichever of Gradio's worker threads is free, so memory freed in one arena is not reused by
the next step's allocations in another. In a 60-turn run of the soak's loop the server grew 37 MB with 2
arenas against 144 MB with glibc's default, at the same turn latency.

Memory a turn frees inside an arena stays resident: glibc gives back only the free space at the very top of
each heap, and a turn's buffers (audio, token arrays, the models' scratch space) are freed below the few
long-lived blocks allocated meanwhile. malloc_trim hands every free page in every arena back to the system;
after each turn it takes 3-11 ms here. Over 48 turns of the app in one process (gradio_client sessions, glibc's
default arenas) resident memory grew 372 MB without it against 56 MB with it (bench/results.md, "Soak").
"""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
from functools import cache

log = logging.getLogger(__name__)

_M_ARENA_MAX = -8  # from glibc's malloc.h


@cache
def _glibc() -> ctypes.CDLL | None:
    """The C library if it is glibc (it has mallopt and malloc_trim), else None (musl, macOS, Windows)."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.malloc_trim.argtypes = [ctypes.c_size_t]
    except (OSError, AttributeError, TypeError):
        log.info("malloc left as it is: this C library has no mallopt/malloc_trim")
        return None
    return libc


def limit_arenas(arenas: int) -> bool:
    """Cap malloc arenas for the threads created from now on (0: glibc's default). True if applied."""
    libc = _glibc() if arenas > 0 else None
    if libc is None:
        return False
    if libc.mallopt(_M_ARENA_MAX, arenas) != 1:
        log.warning("mallopt(M_ARENA_MAX, %d) was refused; malloc arenas left as they are", arenas)
        return False
    log.debug("malloc arenas capped at %d", arenas)
    return True


def release_free_memory() -> bool:
    """Give the free pages of every malloc arena back to the system. True if any were given back."""
    libc = _glibc()
    return bool(libc.malloc_trim(0)) if libc is not None else False
