"""edge-tts: Microsoft Edge's online neural voices, through the package's in-process async API."""

from __future__ import annotations

import asyncio
import logging
import math
import threading
from typing import TYPE_CHECKING, Awaitable, Callable, Iterator

from audio.decode import decode_bytes
from audio.packages import require
from audio.tts.base import SpeechChunk, VoiceOptions

if TYPE_CHECKING:
    from chatbot.config import TTSConfig

log = logging.getLogger(__name__)


def run_coroutine(make_coroutine: Callable[[], Awaitable], timeout_s: float):
    """Run an edge-tts coroutine to completion, within `timeout_s`, from synchronous code.

    It runs on a thread of its own with a fresh event loop, so it works whether or not the calling thread
    already runs a loop (a web server's worker thread does not; some test drivers' main threads do).
    """
    outcome: dict = {}

    def target() -> None:
        loop = asyncio.new_event_loop()
        try:
            outcome["value"] = loop.run_until_complete(asyncio.wait_for(make_coroutine(), timeout=timeout_s))
        except BaseException as e:  # handed to the caller's thread
            outcome["error"] = e
        finally:
            loop.close()

    thread = threading.Thread(target=target, name="edge-tts", daemon=True)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


EDGE_SAMPLE_RATE = 24_000  # Hz: edge-tts streams 24 kHz MP3


class EdgeSpeaker:
    def __init__(self, cfg: TTSConfig):
        self._edge_tts = require("edge_tts", "edge-tts", "The edge-tts engine")
        self._voice = cfg.voice
        self._voices = list(dict.fromkeys((cfg.voice, *cfg.voices)))
        self._listed = False  # the service's full voice list is asked for once, on first use
        self._pitch = f"{cfg.pitch_hz:+d}Hz"
        self._connect_timeout_s = cfg.connect_timeout_s
        self._receive_timeout_s = cfg.receive_timeout_s
        self._proxy = cfg.proxy or None  # an http:// proxy to reach Microsoft's service through (never logged)
        self.description = f"edge-tts {cfg.voice}"

    def voices(self) -> list[str]:
        """The configured voices first, then every voice the service lists (when it can be reached)."""
        if not self._listed:
            self._listed = True
            try:
                listed = run_coroutine(lambda: self._edge_tts.list_voices(proxy=self._proxy), self._connect_timeout_s)
                self._voices = list(dict.fromkeys([*self._voices, *sorted(v["ShortName"] for v in listed)]))
            except Exception as e:  # offline: the configured voices are offered
                log.info("edge-tts voice list unavailable (%s): offering the configured voices", type(e).__name__)
        return list(self._voices)

    async def _fetch_mp3(self, text: str, voice: str, rate_percent: int) -> bytes:
        communicate = self._edge_tts.Communicate(
            text, voice, rate=f"{rate_percent:+d}%", pitch=self._pitch, proxy=self._proxy,
            connect_timeout=max(1, math.ceil(self._connect_timeout_s)),  # edge-tts takes whole seconds
            receive_timeout=max(1, math.ceil(self._receive_timeout_s)),
        )
        events = communicate.stream()
        data = bytearray()
        # Until the first audio, connecting (through a proxy, TLS, the websocket handshake) and the service
        # starting to speak; then, between events, the service stalling mid-stream. aiohttp alone does not bound
        # every step: a proxy that never answers CONNECT would hold the turn until the overall deadline.
        wait = self._connect_timeout_s + self._receive_timeout_s
        try:
            while True:
                try:
                    event = await asyncio.wait_for(anext(events), wait)
                except StopAsyncIteration:
                    break
                if event["type"] == "audio":
                    data.extend(event["data"])
                    wait = self._receive_timeout_s
        finally:
            await events.aclose()
        return bytes(data)

    def speak(self, text: str, options: VoiceOptions) -> Iterator[SpeechChunk]:
        voice = options.voice or self._voice
        # The overall bound covers a service that trickles bytes, each within the receive timeout.
        deadline = self._connect_timeout_s + 4 * self._receive_timeout_s
        mp3 = run_coroutine(lambda: self._fetch_mp3(text, voice, options.rate_percent), deadline)
        yield SpeechChunk(EDGE_SAMPLE_RATE, decode_bytes(mp3, EDGE_SAMPLE_RATE), f"edge-tts {voice}")
