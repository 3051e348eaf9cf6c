"""A real OpenAI-compatible server for the tests: llama.cpp's own server (through xllamacpp, in a process of its
own), serving the embedded SmolLM2 GGUF on 127.0.0.1.

`python -m tests.llama_server PORT` runs it until it is terminated."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import httpx

ALIAS = "smollm2"


class LlamaServer:
    def __init__(self, port: int, log_path):
        self.port = port
        self.base_url = f"http://127.0.0.1:{port}/v1"
        self.log_path = log_path
        self.process: subprocess.Popen | None = None

    def start(self, timeout_s: float = 90) -> "LlamaServer":
        command = [sys.executable, "-m", "tests.llama_server", str(self.port)]
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the llama.cpp server exited ({self.process.returncode}); see {self.log_path}")
            try:
                if httpx.get(f"{self.base_url}/models", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"the llama.cpp server did not answer within {timeout_s} s; see {self.log_path}")

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


def serve(port: int) -> None:
    import xllamacpp

    from chatbot.llm.embedded import embedded_gguf

    params = xllamacpp.CommonParams()
    params.model.path = str(embedded_gguf("smollm2-135m"))
    params.model_alias = {ALIAS}
    params.hostnames = ["127.0.0.1"]
    params.port = port
    params.n_ctx = 2048
    params.cpuparams.n_threads = params.cpuparams_batch.n_threads = min(2, os.cpu_count() or 1)
    server = xllamacpp.Server(params)
    print(f"serving {ALIAS} at {server.listening_address}", flush=True)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    stop.wait()


if __name__ == "__main__":
    serve(int(sys.argv[1]))
