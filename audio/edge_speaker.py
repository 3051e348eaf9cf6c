"""edge-tts: Microsoft Edge's online neural voices, through the package's in-process async API."""

from __future__ import annotations

import asyncio
import math
from typing import Iterator

from audio.decode import decode_bytes
from audio.embedded import require
from audio.tts import SpeechChunk, VoiceOptions

EDGE_SAMPLE_RATE = 24_000  # Hz: edge-tts streams 24 kHz MP3


class EdgeSpeaker:
    def __init__(self, voice: str, voices: tuple[str, ...], *, pitch_hz: int, connect_timeout_s: float,
                 receive_timeout_s: float):
        self._edge_tts = require("edge_tts", "edge-tts", "The edge-tts engine")
        self._voice = voice
        self._voices = list(dict.fromkeys((voice, *voices)))
        self._pitch = f"{pitch_hz:+d}Hz"
        self._connect_timeout_s = connect_timeout_s
        self._receive_timeout_s = receive_timeout_s
        self.description = f"edge-tts {voice}"

    def voices(self) -> list[str]:
        return list(self._voices)

    async def _fetch_mp3(self, text: str, voice: str, rate_percent: int) -> bytes:
        communicate = self._edge_tts.Communicate(
            text, voice, rate=f"{rate_percent:+d}%", pitch=self._pitch,
            connect_timeout=max(1, math.ceil(self._connect_timeout_s)),  # edge-tts takes whole seconds
            receive_timeout=max(1, math.ceil(self._receive_timeout_s)),
        )
        data = bytearray()
        async for event in communicate.stream():
            if event["type"] == "audio":
                data.extend(event["data"])
        return bytes(data)

    def speak(self, text: str, options: VoiceOptions) -> Iterator[SpeechChunk]:
        voice = options.voice or self._voice
        # Own event loop: this runs in a worker thread of the web server, never inside a running loop.
        # The overall bound covers a service that accepts the connection and then trickles bytes.
        deadline = self._connect_timeout_s + 4 * self._receive_timeout_s
        loop = asyncio.new_event_loop()
        try:
            mp3 = loop.run_until_complete(
                asyncio.wait_for(self._fetch_mp3(text, voice, options.rate_percent), timeout=deadline))
        finally:
            loop.close()
        yield SpeechChunk(EDGE_SAMPLE_RATE, decode_bytes(mp3, EDGE_SAMPLE_RATE), f"edge-tts {voice}")
