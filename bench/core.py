"""Start-up and first-reply figures for the app as a user meets it: a real server process, driven over HTTP.

    .venv/bin/python bench/core.py            # embedded models on this machine's CPU

Measures: time until the server answers HTTP (a "second start": the embedded LLM is already prepared), the
first text reply (first streamed text, whole reply with audio), the first voice reply (transcript shown,
first reply text, whole reply with audio), and the server's peak resident memory (VmHWM).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import free_port, peak_rss_mb, wait_ready  # noqa: E402

TEXT_PROMPTS = ["What is the capital of France?", "Give me a tip for sleeping better.",
                "Translate 'good morning' into Spanish."]
VOICE_PROMPTS = ["What is the weather like in London today?", "Could you explain how a rainbow forms?"]


def has_text(message: dict) -> bool:
    return any(item.get("type") == "text" and item["text"].strip() for item in message["content"])


def timed_turn(client, payload, api_name: str) -> dict:
    started = time.perf_counter()
    marks: dict[str, float] = {}
    job = client.submit(payload, api_name=api_name)
    for history, _audio in job:
        now = time.perf_counter() - started
        if api_name == "/send_audio" and history and has_text(history[0]):
            marks.setdefault("transcript_s", now)
        if history and history[-1]["role"] == "assistant" and has_text(history[-1]):
            marks.setdefault("first_text_s", now)
    history, audio = job.result()
    marks["total_s"] = time.perf_counter() - started
    marks["has_audio"] = bool(audio)
    return marks


def main() -> None:
    from gradio_client import Client, handle_file

    from audio.tts.piper_speaker import PiperSpeaker
    from tests.media import speak, write_wav

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONUNBUFFERED="1")
    log = open(Path(tempfile.gettempdir()) / "bench-core-app.log", "w")
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, str(ROOT / "app.py"), "--port", str(port)], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_ready(url, process)
        ready_s = time.perf_counter() - started
        print(f"start-up (second start, until HTTP answers): {ready_s:.1f} s")
        client = Client(url, verbose=False)
        text = [timed_turn(client, prompt, "/send_text") for prompt in TEXT_PROMPTS]
        piper = PiperSpeaker("embedded")
        folder = Path(tempfile.mkdtemp())
        voice = []
        for i, prompt in enumerate(VOICE_PROMPTS):
            wav = write_wav(folder / f"q{i}.wav", *speak(piper, prompt))
            voice.append(timed_turn(Client(url, verbose=False), handle_file(str(wav)), "/send_audio"))
        peak = peak_rss_mb(process.pid)
    finally:
        process.terminate()
        process.wait(timeout=30)
    for name, turns in (("text", text), ("voice", voice)):
        for i, t in enumerate(turns):
            print(f"{name} turn {i + 1}: " + ", ".join(f"{k}={v:.2f}" if isinstance(v, float) else f"{k}={v}"
                                                       for k, v in t.items()))
    first_text = text[0]
    first_voice = voice[0]
    print(f"first text reply: first text {first_text['first_text_s']:.2f} s, with audio {first_text['total_s']:.2f} s")
    print(f"first voice reply: transcript {first_voice['transcript_s']:.2f} s, first text "
          f"{first_voice['first_text_s']:.2f} s, with audio {first_voice['total_s']:.2f} s")
    print(f"median text turn {statistics.median(t['total_s'] for t in text):.2f} s; "
          f"median voice turn {statistics.median(t['total_s'] for t in voice):.2f} s; server peak RSS {peak:.0f} MB")
    print(f"RESULT startup_s={ready_s:.1f} first_text_token_s={first_text['first_text_s']:.2f} "
          f"first_text_reply_s={first_text['total_s']:.2f} first_voice_reply_s={first_voice['total_s']:.2f} "
          f"peak_rss_mb={peak:.0f}")


if __name__ == "__main__":
    main()
