"""Streaming voice activity detection: Silero VAD v6, the ONNX file faster-whisper ships, fed chunk by chunk.

The model reads 32 ms frames of 16 kHz audio, each preceded by the last 4 ms of the frame before it, and
carries a recurrent state (h, c) from frame to frame; it answers one speech probability per frame. One
`SileroVAD` (the ONNX session) is loaded once and shared by every stream; each stream owns a `StreamingVAD`
(its state, its unfinished frame). A batch of frames goes through the session in one call, in order, the
state flowing from each frame to the next: about 1 ms per 0.5 s of audio here.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from audio.decode import SAMPLE_RATE
from audio.packages import require

FRAME_SAMPLES = 512  # 32 ms at 16 kHz: the only frame size Silero v6 takes at this rate
CONTEXT_SAMPLES = 64  # 4 ms: the end of the previous frame, prepended to each frame
STATE_SHAPE = (1, 1, 128)  # the LSTM's hidden and cell state, each
FRAME_S = FRAME_SAMPLES / SAMPLE_RATE  # 0.032 s
SESSION_THREADS = 1  # a 32 ms frame is far too small to split across cores


def silero_vad_path() -> Path:
    """The Silero VAD v6 ONNX file inside the installed faster-whisper package."""
    faster_whisper = require("faster_whisper", "faster-whisper", "Voice activity detection")
    path = Path(faster_whisper.__file__).parent / "assets" / "silero_vad_v6.onnx"
    if not path.is_file():
        raise FileNotFoundError(f"Silero VAD model not found at {path}: reinstall faster-whisper (scripts/setup.sh)")
    return path


class SileroVAD:
    """The Silero ONNX session: stateless itself, safe to share between streams and threads."""

    def __init__(self, path: Path | None = None):
        ort = require("onnxruntime", "onnxruntime", "Voice activity detection")
        options = ort.SessionOptions()
        options.intra_op_num_threads = SESSION_THREADS
        options.inter_op_num_threads = SESSION_THREADS
        options.enable_cpu_mem_arena = False  # its buffers are tiny; an arena would only keep memory
        options.log_severity_level = 3  # errors only
        source = path or silero_vad_path()
        try:
            self._session = ort.InferenceSession(str(source), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own, unexported, exception types
            raise RuntimeError(f"could not load the Silero VAD model {source}: {e}") from e

    def run(self, frames: np.ndarray, h: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """frames [n, CONTEXT_SAMPLES + FRAME_SAMPLES] float32, in time order -> (probabilities [n], h, c)."""
        try:
            probabilities, h, c = self._session.run(None, {"input": frames, "h": h, "c": c})
        except Exception as e:  # onnxruntime's Fail, InvalidArgument, ... derive from Exception only
            raise RuntimeError(f"Silero VAD failed on {len(frames)} frame(s): {e}") from e
        return np.asarray(probabilities, dtype=np.float32).reshape(-1), h, c


class StreamingVAD:
    """One audio stream's VAD: feed 16 kHz mono float32 in chunks of any size, get one probability per frame.

    Samples that do not fill a frame yet wait for the next chunk, so the frames (and their probabilities)
    are the same whatever the chunking.
    """

    def __init__(self, model: SileroVAD):
        self._model = model
        self._lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        """Forget the stream: fresh state, no unfinished frame."""
        self._h = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._c = np.zeros(STATE_SHAPE, dtype=np.float32)
        self._context = np.zeros(CONTEXT_SAMPLES, dtype=np.float32)
        self._pending = np.zeros(0, dtype=np.float32)
        self.frames_done = 0  # frames scored since the last reset

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Speech probabilities (float32, 0..1) for each frame completed by `samples`; may be empty."""
        samples = np.asarray(samples, dtype=np.float32).reshape(-1)
        with self._lock:
            audio = np.concatenate([self._pending, samples])
            count = len(audio) // FRAME_SAMPLES
            self._pending = audio[count * FRAME_SAMPLES:].copy()
            if count == 0:
                return np.zeros(0, dtype=np.float32)
            frames = audio[:count * FRAME_SAMPLES].reshape(count, FRAME_SAMPLES)
            contexts = np.concatenate([self._context[None, :], frames[:-1, -CONTEXT_SAMPLES:]])
            self._context = frames[-1, -CONTEXT_SAMPLES:].copy()
            batch = np.ascontiguousarray(np.concatenate([contexts, frames], axis=1))
            probabilities, self._h, self._c = self._model.run(batch, self._h, self._c)
            self.frames_done += count
            return probabilities
