"""server.malloc_arenas: glibc gives each allocating thread its own arena unless capped; the cap keeps the
server's memory flat over many turns (bench/soak.py). Measured in a fresh process with malloc_info."""

from __future__ import annotations

import platform
import subprocess
import sys
from pathlib import Path

import pytest

from chatbot.malloc import limit_arenas

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="malloc arenas are glibc's")

# Eight threads allocate at the same time (blocks above pymalloc's 512 bytes go to malloc), then the arenas
# in use are counted from malloc_info's XML.
_COUNT_ARENAS = r"""
import ctypes, sys, tempfile, threading
sys.path.insert(0, sys.argv[2])
from chatbot.malloc import limit_arenas
print("applied" if limit_arenas(int(sys.argv[1])) else "default")
together = threading.Barrier(8)
def allocate():
    together.wait()
    kept = [bytearray(4096) for _ in range(2000)]
    together.wait()
threads = [threading.Thread(target=allocate) for _ in range(8)]
for t in threads: t.start()
for t in threads: t.join()
libc = ctypes.CDLL(None)
libc.fopen.restype = ctypes.c_void_p
libc.fopen.argtypes = [ctypes.c_char_p, ctypes.c_char_p]
libc.malloc_info.argtypes = [ctypes.c_int, ctypes.c_void_p]
libc.fclose.argtypes = [ctypes.c_void_p]
with tempfile.NamedTemporaryFile(suffix=".xml") as f:
    fp = libc.fopen(f.name.encode(), b"w")
    libc.malloc_info(0, fp)
    libc.fclose(fp)
    print(open(f.name).read().count("<heap nr="))
"""


def arenas_used(cap: int) -> tuple[str, int]:
    out = subprocess.run([sys.executable, "-c", _COUNT_ARENAS, str(cap), str(ROOT)], capture_output=True,
                         text=True, check=True, timeout=60).stdout.split()
    return out[0], int(out[1])


def test_the_cap_holds_threads_to_that_many_arenas():
    assert arenas_used(2) == ("applied", 2)


def test_without_a_cap_concurrent_threads_spread_over_more_arenas():
    mode, arenas = arenas_used(0)
    assert mode == "default" and arenas > 2  # what the cap prevents: without it, the test above means nothing


def test_zero_leaves_malloc_alone():
    assert limit_arenas(0) is False
