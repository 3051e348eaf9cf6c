"""What the benchmarks share: the app started as a real server process, and what /proc says about it."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def proc_status(pid: int, field: str) -> int:
    """A number from /proc/PID/status, e.g. VmHWM or VmRSS (kB), Threads."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise KeyError(field)


def peak_rss_mb(pid: int) -> float:
    return proc_status(pid, "VmHWM") / 1024


def reset_peak_rss(pid: int) -> bool:
    """Start the process's VmHWM again from its present VmRSS (Linux 4.0+); False where that is not allowed."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def process_stats(pid: int) -> dict:
    """Resident memory (MB), open file descriptors and threads of a running process."""
    return {"rss_mb": proc_status(pid, "VmRSS") / 1024, "files": len(os.listdir(f"/proc/{pid}/fd")),
            "threads": proc_status(pid, "Threads")}


def folder_size_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) / 1e6 if folder.exists() else 0.0


def wait_ready(url: str, process: subprocess.Popen, timeout_s: float = 600) -> None:
    import httpx

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited with code {process.returncode}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass  # not listening yet
        time.sleep(0.2)
    raise TimeoutError("the app did not start")


@contextlib.contextmanager
def running_app(*flags: str, env: dict | None = None, log_name: str = "bench-app.log"):
    """The app on a free port on 127.0.0.1, as `python app.py` runs it: yields (url, process)."""
    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    environment = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1", **(env or {}))
    log_path = Path(tempfile.gettempdir()) / log_name
    with open(log_path, "w") as log:
        process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port), *flags], cwd=ROOT,
                                   env=environment, stdout=log, stderr=subprocess.STDOUT)
        try:
            wait_ready(url, process)
            yield url, process
        finally:
            process.terminate()
            process.wait(timeout=60)
    print(f"(app log: {log_path})")


def spoken_questions(questions: list[str], folder: Path) -> list[Path]:
    """Each question spoken by the embedded Piper voice, as a WAV file: what a recording sends."""
    from audio.tts.piper_speaker import PiperSpeaker
    from tests.media import speak, write_wav

    piper = PiperSpeaker("embedded")
    return [write_wav(folder / f"question-{i}.wav", *speak(piper, q)) for i, q in enumerate(questions)]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]
