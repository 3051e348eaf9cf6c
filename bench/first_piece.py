"""Does pausing the reply's writing while its first piece is spoken (`tts.first_piece_wait_s`) bring the first
sound sooner, and does it make gaps later? Both settings on the same questions, alternating, in one run, on the
embedded models (the CPU face: model and voice share the cores).

    .venv/bin/python bench/first_piece.py [--questions 12] [--wait 1.0]

Text turns, greedy decoding (both settings write the same reply). For each turn: first token and first audio
(from the question sent), and the gaps a listener would hear if each piece played as soon as it was ready and
right after the previous one (a piece that comes after the previous ones have finished playing leaves silence).
The last line is
    RESULT first_audio_ratio=<with wait / without, medians> first_audio_wait_s=X first_audio_nowait_s=Y
           longest_gap_wait_s=Z longest_gap_nowait_s=W
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
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
    parser.add_argument("--wait", type=float, default=1.0, help="tts.first_piece_wait_s when on")
    args = parser.parse_args()

    from audio.store import AudioStore
    from chatbot.assistant import Assistant
    from chatbot.config import load_config
    from chatbot.engines import build_engines

    cfg = load_config(overrides={"device": "cpu", "llm.model": "embedded", "stt.model": "embedded",
                                 "tts.engine": "piper", "llm.temperature": "0", "llm.max_new_tokens": "96"})
    engines = build_engines(cfg)
    assistant = Assistant(cfg, engines, AudioStore(Path(tempfile.mkdtemp()), cfg.files.max_age_s))
    settings = {"wait": dataclasses.replace(cfg.tts, first_piece_wait_s=args.wait),
                "no wait": dataclasses.replace(cfg.tts, first_piece_wait_s=0.0)}
    print(f"engines: {engines.status_line()}")
    assistant.speech = settings["no wait"]
    turn_figures(assistant, "Hello!")  # warm-up, not counted
    results: dict[str, list[dict]] = {name: [] for name in settings}
    for i in range(args.questions):
        question = QUESTIONS[i % len(QUESTIONS)]
        order = list(settings) if i % 2 == 0 else list(reversed(settings))
        for name in order:
            assistant.speech = settings[name]
            figures = turn_figures(assistant, question)
            results[name].append(figures)
            print(f"{i + 1:2d} {name:8s} first token {figures['first_token']:.2f} s  first audio "
                  f"{figures['first_audio']:.2f} s  longest gap {figures['longest_gap']:.2f} s  "
                  f"({figures['stage']})  {question}", flush=True)

    print(f"\n{'seconds':40s} {'n':>3s} {'median':>7s} {'p90':>7s} {'max':>7s}")
    for name, rows in results.items():
        for figure in ("first_token", "first_audio", "longest_gap", "total_gap"):
            values = [r[figure] for r in rows]
            print(f"{name + ': ' + figure.replace('_', ' '):40s} {len(values):3d} {statistics.median(values):7.2f} "
                  f"{p90(values):7.2f} {max(values):7.2f}")
    median = {name: {f: statistics.median(r[f] for r in rows) for f in ("first_audio", "longest_gap")}
              for name, rows in results.items()}
    print(f"RESULT first_audio_ratio={median['wait']['first_audio'] / median['no wait']['first_audio']:.2f} "
          f"first_audio_wait_s={median['wait']['first_audio']:.2f} "
          f"first_audio_nowait_s={median['no wait']['first_audio']:.2f} "
          f"longest_gap_wait_s={max(r['longest_gap'] for r in results['wait']):.2f} "
          f"longest_gap_nowait_s={max(r['longest_gap'] for r in results['no wait']):.2f}")


if __name__ == "__main__":
    main()
