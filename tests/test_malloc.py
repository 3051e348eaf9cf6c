"""server.malloc_arenas and server.malloc_trim, measured in fresh processes: glibc gives each allocating thread its
own arena unless capped (counted with malloc_info), and keeps memory freed between live blocks resident until it
is trimmed (resident size before and after)."""

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


# Many blocks below malloc's mmap threshold fill the heap; every 50th stays alive, so the freed space lies between
# live blocks and glibc's automatic trim (free space at the top of the heap only) can give almost none of it back.
_FRAGMENT_THEN_RELEASE = r"""
import sys
sys.path.insert(0, sys.argv[1])
from chatbot.malloc import release_free_memory
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
blocks = [bytearray(2000) for _ in range(100_000)]
kept = blocks[::50]
del blocks
before = rss_mb()
released = release_free_memory()
print(before, rss_mb(), released, len(kept))
"""


def test_trim_hands_memory_freed_between_live_blocks_back_to_the_system():
    out = subprocess.run([sys.executable, "-c", _FRAGMENT_THEN_RELEASE, str(ROOT)], capture_output=True, text=True,
                         check=True, timeout=60).stdout.split()
    before, after, released = float(out[0]), float(out[1]), out[2]
    assert released == "True"
    assert before - after > 100, f"resident {before:.0f} MB before the trim, {after:.0f} MB after"


def test_the_default_config_trims_after_each_turn_and_false_turns_it_off():
    from chatbot.config import load_config
    from chatbot.malloc import release_free_memory
    from chatbot.assistant import Assistant

    on = Assistant(load_config(), engines=None, store=None)
    off = Assistant(load_config(overrides={"server.malloc_trim": "false"}), engines=None, store=None)
    assert on.after_turn is release_free_memory and off.after_turn is not release_free_memory
