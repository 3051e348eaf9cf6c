"""Soak: many turns in a row against the running app; the server's memory, open files, threads and the served
audio directories must stay flat.

    .venv/bin/python bench/soak.py                      # 200 turns, replies up to 64 tokens
    .venv/bin/python bench/soak.py --turns 200 --max-age 60 --set llm.max_new_tokens=256
    .venv/bin/python bench/soak.py --set server.malloc_arenas=0   # glibc's default arenas, for comparison

Turns alternate text and voice (with speech), and a new client session starts every 10 turns, as visitors come
and go. The app runs with `files.max_age_s` short enough (--max-age) that reply audio expires during the run,
both the app's own files and Gradio's served copies. Figures at start (after 10 warm-up turns) and end.

Last line: RESULT soak_turns=<n> rss_start_mb=<a> rss_end_mb=<b> files_start=<c> files_end=<d>
           threads_start=<e> threads_end=<f>
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import folder_size_mb, percentile, process_stats, running_app, spoken_questions  # noqa: E402

QUESTIONS = ["What is a good breakfast before a run?", "Why is the sky blue?", "How do plants drink water?",
             "Give me a tip for learning a language.", "What is the capital of France?"]
SPOKEN = ["How can I sleep better at night?", "Why do cats purr?"]
WARM_UP = 10
SESSION_TURNS = 10


def main() -> int:
    import httpx
    from gradio_client import Client, handle_file

    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--max-age", type=int, default=60, help="files.max_age_s for the app, seconds")
    parser.add_argument("--minutes", type=float, default=0, help="stop after this long (0: no limit); the RESULT "
                                                                 "line then gives the turns actually made")
    parser.add_argument("--every", type=int, default=25, help="print the server's figures every this many turns")
    parser.add_argument("--set", action="append", default=["llm.max_new_tokens=64"], metavar="KEY=VALUE",
                        help="passed to app.py (default: llm.max_new_tokens=64, short replies: many turns)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="soak-"))
    # The app as configured by default (its reply audio in a private temporary directory), with that directory
    # and Gradio's served copies placed where they can be measured.
    audio_dir, gradio_dir = scratch / "tmp", scratch / "gradio"
    audio_dir.mkdir()
    recordings = spoken_questions(SPOKEN, scratch)
    flags = ["--set", f"files.max_age_s={args.max_age}", *[f for item in args.set for f in ("--set", item)]]
    env = {"GRADIO_TEMP_DIR": str(gradio_dir), "TMPDIR": str(audio_dir)}
    with running_app(*flags, env=env, log_name="bench-soak-app.log") as (url, process):
        latencies, failures, start = [], 0, None
        client = None
        started = time.perf_counter()
        done = 0
        for turn in range(WARM_UP + args.turns):
            if args.minutes and time.perf_counter() - started > args.minutes * 60 and turn > WARM_UP:
                print(f"time budget of {args.minutes} min reached after {done} turns", flush=True)
                break
            if turn == WARM_UP:
                start = {**process_stats(process.pid), "audio_mb": folder_size_mb(audio_dir),
                         "gradio_mb": folder_size_mb(gradio_dir)}
                print(f"start (after {WARM_UP} warm-up turns): {start}", flush=True)
            if turn % SESSION_TURNS == 0:
                client = Client(url, verbose=False, download_files=False)  # a new visitor (links, not downloads)
            t0 = time.perf_counter()
            try:
                if turn % 2:
                    history, audio = client.predict(handle_file(str(recordings[turn % len(recordings)])),
                                                    api_name="/send_audio")
                else:
                    history, audio = client.predict(QUESTIONS[turn % len(QUESTIONS)], api_name="/send_text")
                ok = bool(audio) and history[-1]["role"] == "assistant"
                if ok and turn % 10 == 0:  # fetch one reply's audio now and then: the file route is exercised
                    ok = httpx.get(audio["url"], timeout=30).status_code == 200
            except Exception as e:
                print(f"turn {turn}: {type(e).__name__}: {str(e)[:100]}", flush=True)
                ok = False
            failures += not ok
            if turn >= WARM_UP:
                latencies.append(time.perf_counter() - t0)
                done += 1
            if turn % args.every == 0:
                print(f"turn {turn}: {process_stats(process.pid)} audio {folder_size_mb(audio_dir):.1f} MB "
                      f"gradio {folder_size_mb(gradio_dir):.1f} MB, {time.perf_counter() - started:.0f} s", flush=True)
        end = {**process_stats(process.pid), "audio_mb": folder_size_mb(audio_dir),
               "gradio_mb": folder_size_mb(gradio_dir)}
    print(f"end: {end}")
    print(f"{done} turns (+{WARM_UP} warm-up) in {time.perf_counter() - started:.0f} s, {failures} failed; "
          f"turn latency p50 {percentile(latencies, 0.5):.1f} s, p95 {percentile(latencies, 0.95):.1f} s")
    print(f"RESULT soak_turns={done} rss_start_mb={start['rss_mb']:.0f} rss_end_mb={end['rss_mb']:.0f} "
          f"files_start={start['files']} files_end={end['files']} threads_start={start['threads']} "
          f"threads_end={end['threads']} audio_mb_start={start['audio_mb'] + start['gradio_mb']:.1f} "
          f"audio_mb_end={end['audio_mb'] + end['gradio_mb']:.1f}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
