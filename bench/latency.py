"""Voice-to-voice latency: the streaming pipeline (speak while generating) against the sequential one
(the original notebook: whole transcript, then the whole reply, then the whole reply spoken), on the same
spoken questions, in the same run, on the embedded models.

    .venv/bin/python bench/latency.py [--questions 10] [--e2e 5]

The questions are spoken by Piper (joe) and, when it is installed (apt-get install espeak-ng), espeak-ng,
and saved as WAV files. Times count from the end of the user's audio (the file is complete). Greedy decoding,
so both pipelines generate the same reply. The last line is
    RESULT ttfa_ratio=<streaming median / sequential median> ttfa_median_s=<streaming median>
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

QUESTIONS = [
    "Can you tell me how a rainbow forms?",
    "Why is the sky blue during the day?",
    "What should I pack for a weekend hiking trip?",
    "How do I make a good cup of tea?",
    "What are some tips for learning a new language?",
    "Why do cats purr?",
    "How does a bicycle stay upright?",
    "What is the difference between weather and climate?",
    "How can I sleep better at night?",
    "What makes bread rise when it bakes?",
    "How do bees make honey?",
    "Tell me about the history of the printing press.",
]


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.9 * (len(ordered) - 1)))]


def make_questions(count: int, folder: Path) -> list[tuple[str, Path, str]]:
    from audio.tts.piper_speaker import PiperSpeaker
    from tests.media import speak, write_wav

    piper = PiperSpeaker("embedded")
    espeak = shutil.which("espeak-ng")
    out = []
    for i, question in enumerate(QUESTIONS[:count]):
        path = folder / f"question-{i:02d}.wav"
        if espeak and i % 2 == 1:
            subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(path), question], check=True)
            out.append((question, path, "espeak-ng"))
        else:
            write_wav(path, *speak(piper, question))
            out.append((question, path, "piper"))
    if not espeak:
        print("note: espeak-ng is not installed; all questions are spoken by Piper")
    return out


def streaming_turn(assistant, wav: Path) -> dict:
    from chatbot.turn import TurnOptions

    started = time.perf_counter()
    first_audio = None
    for update in assistant.voice_turn(assistant.new_session(), wav, TurnOptions()):
        if update.speech and first_audio is None:
            first_audio = time.perf_counter() - started
    t = update.timings
    reply = update.messages[-1]["content"][0]
    return {"stt_s": t["stt_s"], "first_token_s": t["first_token_s"], "ttfa_s": first_audio,
            "total_s": time.perf_counter() - started, "generate_s": t["generate_s"], "reply": reply,
            "tts_rtf": t["tts_s"] / t["speech_audio_s"]}


def sequential_turn(assistant, wav: Path) -> dict:
    """What the notebook did: transcribe, generate the whole reply, speak the whole reply, then play it."""
    import numpy as np

    from audio.decode import decode_file
    from audio.speech.for_the_ear import clean_for_speech
    from audio.tts.base import VoiceOptions

    engines = assistant.engines
    started = time.perf_counter()
    transcript = engines.transcriber.transcribe(decode_file(wav))
    stt_s = time.perf_counter() - started
    messages = assistant.new_session().conversation.messages(transcript.text)
    reply, first_token = "", None
    for delta in engines.generator.stream(messages):
        first_token = first_token or time.perf_counter() - started
        reply += delta
    generated = time.perf_counter()
    chunks = list(engines.speaker.speak(clean_for_speech(reply), VoiceOptions()))
    assistant.store.save_wav(chunks[0].sample_rate, np.concatenate([c.samples for c in chunks]))
    ready = time.perf_counter() - started
    audio_s = sum(len(c.samples) / c.sample_rate for c in chunks)
    return {"stt_s": stt_s, "first_token_s": first_token, "ttfa_s": ready, "total_s": ready,
            "generate_s": generated - started - stt_s, "reply": reply.strip(),
            "tts_rtf": (ready - (generated - started)) / audio_s}


def e2e_turns(cfg, engines, questions, count: int) -> list[float]:
    """Through the running server with gradio_client: submit the audio, wait for the first audio chunk."""
    import app
    from gradio_client import Client, handle_file

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cfg = dataclasses.replace(cfg, server=dataclasses.replace(cfg.server, host="127.0.0.1", port=port, share=False))
    demo, assistant = app.create_app(cfg, engines)
    app.launch(demo, cfg, block=False)
    times = []
    try:
        for _question, wav, _voice in questions[:count]:
            client = Client(demo.local_url, verbose=False)
            started = time.perf_counter()
            # An undocumented endpoint: the client does not know its defaults, so every input is given.
            job = client.submit(handle_file(str(wav)), cfg.tts.voice, cfg.tts.rate_percent,
                                engines.transcriber.languages()[0], True, api_name="/stream_audio")
            first = None
            for outputs in job:  # (chat history, player, progress)
                player = outputs[1]
                if isinstance(player, str) and first is None:  # a skipped output comes as an update dict
                    first = time.perf_counter() - started
            job.result()
            times.append(first)
    finally:
        demo.close()
        assistant.store.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--questions", type=int, default=10)
    parser.add_argument("--e2e", type=int, default=5, help="questions also sent through the server")
    args = parser.parse_args()

    import logging

    from audio.store import AudioStore
    from chatbot.config import load_config
    from chatbot.engines import build_engines
    from chatbot.assistant import Assistant

    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(overrides={"device": "cpu", "llm.model": "embedded", "stt.model": "embedded",
                                 "llm.temperature": "0"})  # greedy: both pipelines produce the same reply
    engines = build_engines(cfg)
    print(f"engines: {engines.status_line()}")
    from transformers import AutoTokenizer

    from chatbot.llm.embedded import prepare_embedded_llm

    # Replies are counted with the model's own tokenizer, whichever engine generated them.
    tokenizer = AutoTokenizer.from_pretrained(prepare_embedded_llm(cfg.cache_path))
    store = AudioStore(None, cfg.files.max_age_s)
    assistant = Assistant(cfg, engines, store)
    questions = make_questions(args.questions, Path(tempfile.mkdtemp(prefix="latency-questions-")))

    rows = {"streaming": [], "sequential": []}
    for i, (question, wav, voice) in enumerate(questions):
        order = ("streaming", "sequential") if i % 2 == 0 else ("sequential", "streaming")
        for name in order:
            turn = streaming_turn if name == "streaming" else sequential_turn
            result = turn(assistant, wav)
            result["tokens"] = len(tokenizer(result["reply"], add_special_tokens=False)["input_ids"])
            result["tok_s"] = result["tokens"] / result["generate_s"]
            rows[name].append(result)
        s, q = rows["streaming"][-1], rows["sequential"][-1]
        print(f"{i + 1:2d} [{voice:9s}] {question[:42]:42s} ttfa streaming {s['ttfa_s']:5.2f} s, "
              f"sequential {q['ttfa_s']:5.2f} s ({s['tokens']} tokens)")
    print()
    print(f"{'':10s} {'median / p90 (s)':>18s} {'stt':>13s} {'first token':>13s} {'first audio':>13s} "
          f"{'total':>13s} {'tok/s':>7s} {'TTS RTF':>7s}")
    for name, results in rows.items():
        cells = []
        for key in ("stt_s", "first_token_s", "ttfa_s", "total_s"):
            values = [r[key] for r in results]
            cells.append(f"{statistics.median(values):5.2f} / {p90(values):5.2f}")
        print(f"{name:10s} {'':18s} " + " ".join(f"{c:>13s}" for c in cells)
              + f" {statistics.median(r['tok_s'] for r in results):7.1f}"
              + f" {statistics.median(r['tts_rtf'] for r in results):7.2f}")
    streaming = statistics.median(r["ttfa_s"] for r in rows["streaming"])
    sequential = statistics.median(r["ttfa_s"] for r in rows["sequential"])
    first_sentence = statistics.median(r["ttfa_s"] - r["first_token_s"] for r in rows["streaming"])
    print(f"streaming time to first audio: stt {statistics.median(r['stt_s'] for r in rows['streaming']):.2f} s"
          f" + to first token {statistics.median(r['first_token_s'] - r['stt_s'] for r in rows['streaming']):.2f} s"
          f" + first piece generated and spoken {first_sentence:.2f} s")
    if args.e2e:
        e2e = e2e_turns(cfg, engines, questions, args.e2e)
        print(f"through the server (gradio_client, submit -> first audio chunk): median {statistics.median(e2e):.2f} s,"
              f" p90 {p90(e2e):.2f} s over {len(e2e)} turns")
    store.close()
    print(f"RESULT ttfa_ratio={streaming / sequential:.3f} ttfa_median_s={streaming:.2f}")


if __name__ == "__main__":
    main()
