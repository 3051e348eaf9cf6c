"""Keeping the voice ahead (`tts.lead_s`): the reply's writing waits for the piece being spoken while less than
lead_s of speech is ready ahead of what plays (the first piece always). Does it bring the first sound sooner, and
gaps fewer? Each setting on the same questions, in rotating order, in one run, on the embedded models (the CPU
face: model and voice share the cores).

    .venv/bin/python bench/speech_lead.py [--questions 12] [--leads 0,1.0,2.0] [--busy 1]

`--busy N` keeps N other processes spinning on the CPU meanwhile, as Chromium (capturing, rendering, playing)
does beside the server in bench/browser.py: that is when a voice falls behind.

Text turns, greedy decoding (both settings write the same reply). For each turn: first token and first audio
(from the question sent), and the gaps a listener would hear if each piece played as soon as it was ready and
right after the previous one (a piece that comes after the previous ones have finished playing leaves silence).
The last line is
    RESULT first_audio_ratio=<config lead / no wait, medians> first_audio_lead_s=X first_audio_nowait_s=Y
           longest_gap_lead_s=Z longest_gap_nowait_s=W
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.latency import QUESTIONS, p90  # noqa: E402


def turn_figures(assistant, question: str) -> dict:
    from chatbot.turn import TurnOptions

    started = time.perf_counter()
    first_token = first_audio = None
    play_end = None  # when the audio so far would finish playing, had each piece played as soon as it came
    gaps: list[float] = []
    for update in assistant.text_turn(assistant.new_session(), question, TurnOptions()):
        now = time.perf_counter() - started
        if first_token is None and update.stage == "thinking" and update.messages[-1]["content"]:
            first_token = now
        for chunk in update.speech:
            if first_audio is None:
                first_audio, play_end = now, now
            elif now > play_end:
                gaps.append(now - play_end)
                play_end = now
            play_end += len(chunk.samples) / chunk.sample_rate
    final = update
    return {"first_token": first_token, "first_audio": first_audio, "longest_gap": max(gaps, default=0.0),
            "total_gap": sum(gaps), "stage": final.stage}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--questions", type=int, default=12)
    parser.add_argument("--leads", default="0,1.0,2.0", help="tts.lead_s values to compare (0: never waits)")
    parser.add_argument("--busy", type=int, default=0, help="processes spinning on the CPU meanwhile")
    args = parser.parse_args()
    spinners = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.busy)]
    try:
        compare(args)
    finally:
        for spinner in spinners:
            spinner.kill()


def compare(args) -> None:

    from audio.store import AudioStore
    from chatbot.assistant import Assistant
    from chatbot.config import load_config
    from chatbot.engines import build_engines

    cfg = load_config(overrides={"device": "cpu", "llm.model": "embedded", "stt.model": "embedded",
                                 "tts.engine": "piper", "llm.temperature": "0", "llm.max_new_tokens": "96"})
    engines = build_engines(cfg)
    assistant = Assistant(cfg, engines, AudioStore(Path(tempfile.mkdtemp()), cfg.files.max_age_s))
    leads = [float(v) for v in args.leads.split(",")]
    settings = {f"lead {lead:g} s": dataclasses.replace(cfg.tts, lead_s=lead) for lead in leads}
    print(f"engines: {engines.status_line()}; tts.lead_wait_s {cfg.tts.lead_wait_s:g}, config lead_s "
          f"{cfg.tts.lead_s:g}; {args.busy} process(es) spinning beside")
    turn_figures(assistant, "Hello!")  # warm-up, not counted
    results: dict[str, list[dict]] = {name: [] for name in settings}
    names = list(settings)
    for i in range(args.questions):
        question = QUESTIONS[i % len(QUESTIONS)]
        for name in names[i % len(names):] + names[:i % len(names)]:
            assistant.speech = settings[name]
            figures = turn_figures(assistant, question)
            results[name].append(figures)
            print(f"{i + 1:2d} {name:10s} first token {figures['first_token']:.2f} s  first audio "
                  f"{figures['first_audio']:.2f} s  longest gap {figures['longest_gap']:.2f} s  "
                  f"({figures['stage']})  {question}", flush=True)

    print(f"\n{'seconds':40s} {'n':>3s} {'median':>7s} {'p90':>7s} {'max':>7s}")
    for name, rows in results.items():
        for figure in ("first_token", "first_audio", "longest_gap", "total_gap"):
            values = [r[figure] for r in rows]
            print(f"{name + ': ' + figure.replace('_', ' '):40s} {len(values):3d} {statistics.median(values):7.2f} "
                  f"{p90(values):7.2f} {max(values):7.2f}")
    config, never = f"lead {cfg.tts.lead_s:g} s", "lead 0 s"
    first = {name: statistics.median(r["first_audio"] for r in rows) for name, rows in results.items()}
    gap = {name: max(r["longest_gap"] for r in rows) for name, rows in results.items()}
    if config in results and never in results:
        print(f"RESULT first_audio_ratio={first[config] / first[never]:.2f} first_audio_lead_s={first[config]:.2f} "
              f"first_audio_nowait_s={first[never]:.2f} longest_gap_lead_s={gap[config]:.2f} "
              f"longest_gap_nowait_s={gap[never]:.2f}")


if __name__ == "__main__":
    main()
