"""Soak: many turns in a row against the running app; the server's memory, open files, threads and the served
audio directories must stay flat.

    .venv/bin/python bench/soak.py                      # 200 turns, replies up to 64 tokens
    .venv/bin/python bench/soak.py --turns 200 --max-age 60 --set llm.max_new_tokens=256
    .venv/bin/python bench/soak.py --set server.malloc_arenas=0   # glibc's default arenas, for comparison
    .venv/bin/python bench/soak.py --turns 80 --long-every 10     # every 10th turn a recording left running 2 h

Turns alternate text and voice (with speech), and a new client session starts every 10 turns, as visitors come
and go. With --long-every N, turns 1, N+1, 2N+1, ... send a spoken question followed by --long-hours of Opus
silence (2 h: 6.6 MB, under server.max_upload_mb) instead: the app uses its first limits.max_audio_s.
The app runs with `files.max_age_s` short enough (--max-age) that reply audio expires during the run, both the
app's own files and Gradio's served copies. Figures at start (after 10 warm-up turns) and end.

Last line: RESULT soak_turns=<n> rss_start_mb=<a> rss_end_mb=<b> files_start=<c> files_end=<d>
           threads_start=<e> threads_end=<f> ... long_turns=<g> long_p50_s=<h> long_max_s=<i>
           long_peak_growth_mb=<j> peak_rss_mb=<k>
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import (  # noqa: E402
    folder_size_mb,
    peak_rss_mb,
    percentile,
    process_stats,
    reset_peak_rss,
    running_app,
    spoken_questions,
)

QUESTIONS = ["What is a good breakfast before a run?", "Why is the sky blue?", "How do plants drink water?",
             "Give me a tip for learning a language.", "What is the capital of France?"]
SPOKEN = ["How can I sleep better at night?", "Why do cats purr?"]
WARM_UP = 10
SESSION_TURNS = 10
LONG_BITRATE = 16_000  # bit/s: the spoken question stays clear; the silence after it costs 110 bytes a packet


def long_recording(recording: Path, hours: float) -> Path:
    """The spoken question in `recording`, then `hours` of silence: a recording left running, as Opus in WebM."""
    from audio.decode import SAMPLE_RATE, decode_file
    from tests.media import long_opus

    lead = (SAMPLE_RATE, decode_file(recording))
    return long_opus(recording.with_name(f"left-running-{hours:g}h.webm"), hours * 3600, lead=lead,
                     bitrate=LONG_BITRATE)


def main() -> int:
    import httpx
    from gradio_client import Client, handle_file

    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=200)
    parser.add_argument("--max-age", type=int, default=60, help="files.max_age_s for the app, seconds")
    parser.add_argument("--minutes", type=float, default=0, help="stop after this long (0: no limit); the RESULT "
                                                                 "line then gives the turns actually made")
    parser.add_argument("--every", type=int, default=25, help="print the server's figures every this many turns")
    parser.add_argument("--long-every", type=int, default=0, help="every this many turns, a recording left "
                                                                  "running for --long-hours (0: none)")
    parser.add_argument("--long-hours", type=float, default=2.0)
    parser.add_argument("--set", action="append", default=["llm.max_new_tokens=64"], metavar="KEY=VALUE",
                        help="passed to app.py (default: llm.max_new_tokens=64, short replies: many turns)")
    args = parser.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="soak-"))
    # The app as configured by default (its reply audio in a private temporary directory), with that directory
    # and Gradio's served copies placed where they can be measured.
    audio_dir, gradio_dir = scratch / "tmp", scratch / "gradio"
    audio_dir.mkdir()
    recordings = spoken_questions(SPOKEN, scratch)
    long = long_recording(recordings[0], args.long_hours) if args.long_every else None
    if long:
        print(f"long recording: {args.long_hours:g} h in {long.stat().st_size / 1e6:.1f} MB", flush=True)
    flags = ["--set", f"files.max_age_s={args.max_age}", *[f for item in args.set for f in ("--set", item)]]
    env = {"GRADIO_TEMP_DIR": str(gradio_dir), "TMPDIR": str(audio_dir)}
    with running_app(*flags, env=env, log_name="bench-soak-app.log") as (url, process):
        latencies, long_latencies, failures, start = [], [], 0, None
        growth, long_growth, top_peak = [], [], 0.0  # MB: each turn's peak over the RSS it started from
        client = None
        started = time.perf_counter()
        done = 0
        for turn in range(WARM_UP + args.turns):
            if args.minutes and time.perf_counter() - started > args.minutes * 60 and turn > WARM_UP:
                print(f"time budget of {args.minutes} min reached after {done} turns", flush=True)
                break
            if turn == WARM_UP:
                start = {**process_stats(process.pid), "audio_mb": folder_size_mb(audio_dir),
                         "gradio_mb": folder_size_mb(gradio_dir), "peak_rss_mb": peak_rss_mb(process.pid)}
                print(f"start (after {WARM_UP} warm-up turns): {start}", flush=True)
            if turn % SESSION_TURNS == 0:
                client = Client(url, verbose=False, download_files=False)  # a new visitor (links, not downloads)
            rss_before = process_stats(process.pid)["rss_mb"]
            peak_known = reset_peak_rss(process.pid)  # VmHWM from here is this turn's peak
            t0 = time.perf_counter()
            is_long = long is not None and turn % args.long_every == 1
            try:
                if is_long:
                    history, audio = client.predict(handle_file(str(long)), api_name="/send_audio")
                elif turn % 2:
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
            elapsed, peak = time.perf_counter() - t0, peak_rss_mb(process.pid)
            if turn >= WARM_UP:
                (long_latencies if is_long else latencies).append(elapsed)
                if peak_known:
                    (long_growth if is_long else growth).append(peak - rss_before)
                top_peak = max(top_peak, peak)
                done += 1
            if is_long:
                print(f"turn {turn} ({args.long_hours:g} h recording, {'ok' if ok else 'FAILED'}): {elapsed:.1f} s, "
                      f"peak {peak:.0f} MB from {rss_before:.0f} MB, then {process_stats(process.pid)}", flush=True)
            if turn % args.every == 0:
                print(f"turn {turn}: {process_stats(process.pid)} audio {folder_size_mb(audio_dir):.1f} MB "
                      f"gradio {folder_size_mb(gradio_dir):.1f} MB, {time.perf_counter() - started:.0f} s", flush=True)
        end = {**process_stats(process.pid), "audio_mb": folder_size_mb(audio_dir),
               "gradio_mb": folder_size_mb(gradio_dir)}
    print(f"end: {end}")
    print(f"{done} turns (+{WARM_UP} warm-up) in {time.perf_counter() - started:.0f} s, {failures} failed; "
          f"turn latency p50 {percentile(latencies, 0.5):.1f} s, p95 {percentile(latencies, 0.95):.1f} s")
    if growth:
        print(f"peak memory of a turn over its start: p50 +{percentile(growth, 0.5):.0f} MB, "
              f"max +{max(growth):.0f} MB")
    long_figures = ""
    if long_latencies:
        print(f"{len(long_latencies)} of them with {args.long_hours:g} h recordings: latency p50 "
              f"{percentile(long_latencies, 0.5):.1f} s, max {max(long_latencies):.1f} s; peak memory over the "
              f"turn's start p50 +{percentile(long_growth, 0.5):.0f} MB, max +{max(long_growth):.0f} MB")
        long_figures = (f"long_turns={len(long_latencies)} long_p50_s={percentile(long_latencies, 0.5):.1f} "
                        f"long_max_s={max(long_latencies):.1f} long_peak_growth_mb={max(long_growth):.0f} ")
    print(f"RESULT soak_turns={done} rss_start_mb={start['rss_mb']:.0f} rss_end_mb={end['rss_mb']:.0f} "
          f"files_start={start['files']} files_end={end['files']} threads_start={start['threads']} "
          f"threads_end={end['threads']} audio_mb_start={start['audio_mb'] + start['gradio_mb']:.1f} "
          f"audio_mb_end={end['audio_mb'] + end['gradio_mb']:.1f} {long_figures}peak_rss_mb={top_peak:.0f}")
    return 0 if failures == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
