import dataclasses
import threading
import time

import numpy as np
import pytest

from audio.tts.edge_speaker import EdgeSpeaker
from audio.tts.base import VoiceOptions
from audio.tts.fallback import FallbackSpeaker

pytestmark = pytest.mark.slow


def test_piper_speaks_at_its_rate(piper):
    chunks = list(piper.speak("Hello there. How are you today?", VoiceOptions()))
    assert len(chunks) == 2  # one chunk per sentence
    assert all(c.sample_rate == 22050 and c.samples.dtype == np.float32 for c in chunks)
    seconds = sum(len(c.samples) for c in chunks) / 22050
    faster = sum(len(c.samples) for c in piper.speak("Hello there. How are you today?", VoiceOptions(rate_percent=50)))
    assert 1.0 < seconds < 5.0 and faster / 22050 < seconds * 0.9  # pauses are not scaled


def edge_voice(cfg, **timeouts) -> EdgeSpeaker:
    """edge-tts with the default voice and these timeouts (and proxy)."""
    return EdgeSpeaker(dataclasses.replace(cfg.tts, voice="en-US-AriaNeural", voices=(), pitch_hz=0, **timeouts))


def test_edge_tts_real_call_fails_fast_offline_and_piper_speaks(piper, cfg):
    """The real edge-tts request is made; with no route to Microsoft it fails within the connect timeout,
    Piper speaks instead, the status says so, and the dead service is not retried on the next turn."""
    edge = edge_voice(cfg, connect_timeout_s=3, receive_timeout_s=5)
    speaker = FallbackSpeaker(edge, piper, retry_after_s=60)
    assert speaker.description == "edge-tts en-US-AriaNeural (Piper joe when offline)"

    started = time.perf_counter()
    chunks = list(speaker.speak("The weather is lovely today.", VoiceOptions(voice="en-GB-SoniaNeural")))
    first_s = time.perf_counter() - started
    assert chunks and chunks[0].spoken_by == "Piper joe"
    assert "edge-tts en-US-AriaNeural unavailable" in chunks[0].note and "Piper joe" in chunks[0].note
    assert first_s < 3 + 2.0  # the connect timeout bounds it (offline DNS fails at once here)
    assert speaker.description.startswith("Piper joe (fallback: edge-tts")

    edge_calls = []
    original = edge.speak
    edge.speak = lambda *a, **k: edge_calls.append(1) or original(*a, **k)
    list(speaker.speak("Second turn.", VoiceOptions()))
    assert edge_calls == []  # within retry_after_s the dead service is skipped


class SilentProxy:
    """A proxy on 127.0.0.1 that accepts connections, reads the request and never answers: edge-tts's service
    when it stalls. It records what it was asked for."""

    def __init__(self):
        import socket

        self.requests: list[bytes] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._server.getsockname()[1]}"
        self._open: list = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                connection, _ = self._server.accept()
            except OSError:  # closed
                return
            self._open.append(connection)
            self.requests.append(connection.recv(4096))

    def close(self):
        self._server.close()
        for connection in self._open:
            connection.close()


def test_edge_tts_that_stalls_is_given_up_within_its_timeouts_and_piper_speaks(piper, cfg):
    """The real edge-tts request goes to a server that never answers: the receive timeout ends it, Piper
    speaks, and one failure is all it costs (no retry storm)."""
    proxy = SilentProxy()
    try:
        edge = edge_voice(cfg, connect_timeout_s=1, receive_timeout_s=1, proxy=proxy.url)
        speaker = FallbackSpeaker(edge, piper, retry_after_s=60)
        started = time.perf_counter()
        chunks = list(speaker.speak("Is anybody there?", VoiceOptions()))
        waited = time.perf_counter() - started
        assert chunks and chunks[0].spoken_by == "Piper joe" and "unavailable" in chunks[0].note
        assert len(proxy.requests) == 1 and b"speech.platform.bing.com" in proxy.requests[0]  # really asked
        assert waited < 1 + 1 + 1.5  # the connect and receive timeouts bound it (edge-tts's own did not)
        for _ in range(3):
            list(speaker.speak("Still there?", VoiceOptions()))
        assert len(proxy.requests) == 1  # later turns skip the stalled service until retry_after_s
    finally:
        proxy.close()


def test_edge_tts_is_tried_again_after_the_retry_period(piper, cfg):
    edge = edge_voice(cfg, connect_timeout_s=1, receive_timeout_s=1)
    speaker = FallbackSpeaker(edge, piper, retry_after_s=0.2)
    list(speaker.speak("One.", VoiceOptions()))
    time.sleep(0.3)
    assert speaker.description.startswith("edge-tts")  # back to trying the configured engine


# Resident memory kept after one long sentence, once the turn's malloc_trim has run: ONNX Runtime's arena keeps
# its largest buffers, which tts.piper_arena false avoids. In a fresh process, so the figures are Piper's own.
_MEMORY_KEPT_AFTER_A_LONG_SENTENCE = r"""
import sys
sys.path.insert(0, sys.argv[2])
from audio.tts.piper_speaker import PiperSpeaker
from audio.tts.base import VoiceOptions
from chatbot.malloc import release_free_memory
def rss_mb():
    return int(open("/proc/self/statm").read().split()[1]) * 4096 / 2**20
piper = PiperSpeaker("embedded", arena=sys.argv[1] == "on")
list(piper.speak("Hello there.", VoiceOptions()))
release_free_memory()
before = rss_mb()
list(piper.speak(" ".join(["the quick brown fox jumps over the lazy dog"] * 8) + ".", VoiceOptions()))
release_free_memory()
print(rss_mb() - before)
"""


def memory_kept_mb(arena: bool) -> float:
    import subprocess
    import sys
    from pathlib import Path

    out = subprocess.run([sys.executable, "-c", _MEMORY_KEPT_AFTER_A_LONG_SENTENCE, "on" if arena else "off",
                          str(Path(__file__).resolve().parent.parent)], capture_output=True, text=True, check=True,
                         timeout=120).stdout
    return float(out.split()[-1])


def test_piper_without_its_arena_gives_a_long_sentences_memory_back():
    kept_without, kept_with = memory_kept_mb(arena=False), memory_kept_mb(arena=True)
    assert kept_without < 25, f"{kept_without:.0f} MB kept after one long sentence"
    assert kept_with > 50, f"the arena kept only {kept_with:.0f} MB: this test no longer shows what it avoids"
