"""A real OpenAI-compatible server for the tests: llama-cpp-python's, serving the embedded SmolLM2 GGUF."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx

from chatbot.llm.embedded import embedded_gguf

ALIAS = "smollm2"


class LlamaServer:
    def __init__(self, port: int, log_path):
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 90) -> "LlamaServer":
        command = [sys.executable, "-m", "llama_cpp.server", "--model", str(embedded_gguf()),
                   "--model_alias", ALIAS, "--host", "127.0.0.1", "--port", str(self.port),
                   "--n_ctx", "2048", "--n_threads", str(min(2, os.cpu_count() or 1)),
                   # The wheel built here (llama.cpp's native CPU flags: AVX-512, AMX) segfaults decoding more
                   # than one token per batch on this machine; one token per batch is stable, and fast enough.
                   "--n_ubatch", "1"]
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"llama_cpp.server exited ({self.process.returncode}); see {self.log_path}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"llama_cpp.server did not answer within {timeout_s} s; see {self.log_path}")

    def kill(self) -> None:
        """Die at once, as a crashed server does: no goodbye to open connections."""
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(10)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()
