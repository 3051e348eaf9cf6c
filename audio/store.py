"""Files served to browsers (reply audio, conversation downloads): one app-owned directory, random names,
bounded age, removed at shutdown."""

from __future__ import annotations

import logging
import os
import secrets
import shutil
import tempfile
import threading
import time
import wave
from pathlib import Path

import numpy as np

from audio.decode import to_pcm16

log = logging.getLogger(__name__)


class AudioStore:
    def __init__(self, directory: str | Path | None, max_age_s: float):
        if directory:
            self.root = Path(directory).expanduser().resolve()
            self.root.mkdir(parents=True, exist_ok=True)
            self._owned = False  # a user-given directory: only our files are removed, never the directory
        else:
            self.root = Path(tempfile.mkdtemp(prefix="voice-chatbot-audio-")).resolve()
            self._owned = True
        self.max_age_s = max_age_s
        self._lock = threading.Lock()

    def _new_path(self, kind: str, suffix: str) -> Path:
        # Random, never derived from the text: names reveal nothing and cannot be guessed.
        return self.root / f"{kind}-{secrets.token_urlsafe(16)}{suffix}"

    def save_wav(self, sample_rate: int, samples: np.ndarray, kind: str = "reply") -> Path:
        """Write mono float32 samples as 16-bit WAV; the file appears complete or not at all.
        `kind`: "reply" (an answer's speech) or "heard" (what the microphone streamed in)."""
        self.remove_expired()
        pcm = to_pcm16(samples)
        path = self._new_path(kind, ".wav")
        partial = path.with_suffix(".part")
        try:
            # The file is opened first: if that fails, no half-made wave writer is left to complain.
            with open(partial, "wb") as raw, wave.open(raw, "wb") as wav:
                wav.setnchannels(1)
                wav.setsampwidth(2)
                wav.setframerate(sample_rate)
                wav.writeframes(pcm.tobytes())
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return path

    def save_download(self, name: str, text: str) -> Path:
        """A text file for the user to download, under its readable `name` inside a random folder."""
        self.remove_expired()
        folder = self.root / f"download-{secrets.token_urlsafe(16)}"
        folder.mkdir()
        path = folder / name
        path.write_text(text, encoding="utf-8")
        return path

    def files(self) -> list[Path]:
        """Everything the store made: reply and microphone audio files, download folders."""
        if not self.root.is_dir():  # removed or replaced under us: nothing of ours is left to list
            return []
        return sorted(p for p in self.root.iterdir() if p.name.startswith(("reply-", "heard-", "download-")))

    def remove_expired(self, now: float | None = None) -> int:
        """Delete files older than max_age_s; returns how many were deleted."""
        cutoff = (time.time() if now is None else now) - self.max_age_s
        removed = 0
        with self._lock:
            for path in self.files():
                try:
                    if path.stat().st_mtime < cutoff:
                        _remove(path)
                        removed += 1
                except FileNotFoundError:
                    continue  # removed by a concurrent cleanup
        return removed

    def close(self) -> None:
        """Remove every reply file (and the directory if the store created it)."""
        with self._lock:
            if self._owned:
                shutil.rmtree(self.root, ignore_errors=True)
            else:
                for path in self.files():
                    _remove(path)
        log.info("removed reply audio in %s", self.root)


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
