"""Load: many sessions at once against the running app, text and voice turns mixed, through gradio_client.

    .venv/bin/python bench/load.py                      # 16 sessions x 3 turns, the default config
    .venv/bin/python bench/load.py --sessions 16 --turns 3 --set server.queue_size=8

Every session has its own code word, says it in each text turn, and checks every history it gets back: only
its own messages, and no other session's code word (a crosstalk otherwise). A turn is answered (a reply with
text), busy (the server's "queue is full": the client is told to retry) or an error. Latency is per turn, from
submit to the final result (reply text and its audio).

Last line: RESULT sessions=<n> turns=<n> answered=<n> busy=<n> crosstalk=<n> p95_s=<x>
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.harness import percentile, process_stats, running_app, spoken_questions  # noqa: E402

QUESTIONS = ["What is a good breakfast before a run?", "Why is the sky blue?", "How do plants drink water?",
             "What makes a good friend?", "How does a bicycle stay upright?", "Why do cats purr?"]
SPOKEN = ["How can I sleep better at night?", "What is the weather like in London today?"]
WORDS = ["apricot", "bramble", "cobalt", "dulcimer", "ember", "fjord", "garnet", "hazel", "indigo", "juniper",
         "kestrel", "lantern", "marble", "nutmeg", "orchid", "pebble", "quartz", "saffron", "thistle", "umber"]


def texts_of(message: dict) -> str:
    content = message["content"]
    if isinstance(content, str):
        return content
    return " ".join(item.get("text", "") for item in content if isinstance(item, dict))


def run_session(url: str, index: int, turns: int, recordings: list[Path], all_words: list[str]) -> list[dict]:
    from gradio_client import Client, handle_file

    word = all_words[index]
    others = [w for w in all_words if w != word]
    client = Client(url, verbose=False)
    results, mine = [], 0  # mine: messages this session has put in its history
    for turn in range(turns):
        spoken = (index + turn) % 2 == 1
        started = time.perf_counter()
        outcome = {"session": index, "spoken": spoken}
        try:
            if spoken:
                history, audio = client.predict(handle_file(str(recordings[turn % len(recordings)])),
                                                api_name="/send_audio")
            else:
                question = QUESTIONS[(index + turn) % len(QUESTIONS)]
                history, audio = client.predict(f"My code word is {word}. {question}", api_name="/send_text")
        except Exception as e:  # gradio_client raises for a full queue; anything else is an error
            outcome["latency_s"] = time.perf_counter() - started
            outcome["status"] = "busy" if "queue is full" in str(e).lower() else "error"
            outcome["error"] = str(e)[:120]
            results.append(outcome)
            print(f"session {index:2d} turn {turn + 1}: {outcome['status']}: {outcome['error']}", flush=True)
            continue
        outcome["latency_s"] = time.perf_counter() - started
        mine += 2
        everything = " ".join(texts_of(m) for m in history)
        user_texts = [texts_of(m) for m in history if m["role"] == "user"]
        foreign = [w for w in others if w in everything]
        typed_not_mine = [t for t in user_texts if "code word" in t and word not in t]
        outcome["crosstalk"] = bool(foreign or typed_not_mine or len(history) != mine)
        reply = texts_of(history[-1]) if history and history[-1]["role"] == "assistant" else ""
        outcome["status"] = "answered" if reply.strip() and not reply.startswith("⚠️") else "failed"
        outcome["audio"] = bool(audio)
        results.append(outcome)
        print(f"session {index:2d} turn {turn + 1}: {outcome['status']} in {outcome['latency_s']:.1f} s", flush=True)
    return results


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sessions", type=int, default=16)
    parser.add_argument("--turns", type=int, default=3, help="turns per session")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="passed to app.py")
    args = parser.parse_args()
    words = (WORDS * (args.sessions // len(WORDS) + 1))[: args.sessions]
    words = [f"{w}{i}" for i, w in enumerate(words)]
    recordings = spoken_questions(SPOKEN, Path(tempfile.mkdtemp()))
    flags = [f for item in args.set for f in ("--set", item)]
    with running_app(*flags, log_name="bench-load-app.log") as (url, process):
        before = process_stats(process.pid)
        started = time.perf_counter()
        barrier = threading.Barrier(args.sessions)

        def session(i: int) -> list[dict]:
            barrier.wait()  # all sessions start together
            return run_session(url, i, args.turns, recordings, words)

        with ThreadPoolExecutor(args.sessions) as pool:
            outcomes = [o for result in pool.map(session, range(args.sessions)) for o in result]
        wall = time.perf_counter() - started
        after = process_stats(process.pid)
    answered = [o for o in outcomes if o["status"] == "answered"]
    busy = [o for o in outcomes if o["status"] == "busy"]
    other = [o for o in outcomes if o["status"] not in ("answered", "busy")]
    crosstalk = sum(1 for o in outcomes if o.get("crosstalk"))
    latencies = [o["latency_s"] for o in answered]
    for kind, spoken in (("text", False), ("voice", True)):
        lat = [o["latency_s"] for o in answered if o["spoken"] is spoken]
        if lat:
            print(f"{kind:5} turns answered {len(lat):3}: p50 {statistics.median(lat):6.1f} s, "
                  f"p95 {percentile(lat, 0.95):6.1f} s, max {max(lat):6.1f} s")
    print(f"{len(outcomes)} turns from {args.sessions} sessions in {wall:.0f} s: {len(answered)} answered "
          f"({sum(1 for o in answered if o['audio'])} with audio), {len(busy)} busy, {len(other)} failed/error, "
          f"{crosstalk} crosstalk")
    for o in other[:5]:
        print("  not answered:", o)
    print(f"server before: {before}; after: {after}")
    p95 = percentile(latencies, 0.95) if latencies else float("nan")
    print(f"RESULT sessions={args.sessions} turns={len(outcomes)} answered={len(answered)} busy={len(busy)} "
          f"crosstalk={crosstalk} p95_s={p95:.1f}")
    return 0 if not other and not crosstalk else 1


if __name__ == "__main__":
    sys.exit(main())
