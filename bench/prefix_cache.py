"""Does a turn's first token cost only its new message? (issue 21) One 10-turn conversation through the app's own
Assistant (text turns, speech off, greedy) on the embedded LLM, with llama.cpp keeping the processed prompt, and
beside it, turn for turn, the same conversation with the prompt processed afresh each turn (`cache_prompt` off
for its requests only), in the same process and on the same model.

    .venv/bin/python bench/prefix_cache.py
    .venv/bin/python bench/prefix_cache.py --model qwen2.5-coder-0.5b --sessions 20

Printed per turn: the first token's delay from the turn's start (the Assistant's `first_token_s`) and llama.cpp's
prompt tokens processed / taken from the cache, for both. `--sessions N` first warms N other conversations (as
many users would), so that the measured one competes for the slots and the RAM prompt cache.
Last line: RESULT prefix_first_token_s_turn1=… turn5=… turn10=… uncached_turn10=… prompt_tokens_turn10=…
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUESTIONS = ["Hi! My name is Nadia and I live in Lisbon.", "What is the capital of Australia?",
             "How many legs does a spider have?", "What is 17 times 3?",
             "Translate 'good morning, my friend' into Portuguese.", "Who wrote Romeo and Juliet?",
             "How many minutes are in three hours?", "Which is the largest ocean on Earth?",
             "What is the boiling point of water in Fahrenheit?", "What is my name, and where do I live?"]


class Uncached:
    """The generator, its requests sent with cache_prompt off: every turn processes its whole prompt."""

    def __init__(self, generator):
        self._generator = generator

    def __getattr__(self, name):
        return getattr(self._generator, name)

    def stream(self, messages, cancel=None, timings=None):
        request = self._generator._request

        def uncached(messages_):
            return {**request(messages_), "cache_prompt": False}

        self._generator._request = uncached
        try:
            yield from self._generator.stream(messages, cancel, timings)
        finally:
            self._generator._request = request


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="qwen2.5-coder-1.5b")
    parser.add_argument("--sessions", type=int, default=0, help="other conversations warmed first")
    args = parser.parse_args()

    import dataclasses
    import logging

    from audio.store import AudioStore
    from chatbot.assistant import Assistant
    from chatbot.config import load_config
    from chatbot.engines import build_engines
    from chatbot.turn import TurnOptions

    logging.basicConfig(level=logging.WARNING)
    cfg = load_config(overrides={"device": "cpu", "llm.model": "embedded", "llm.embedded_model": args.model,
                                 "stt.model": "embedded", "llm.temperature": "0", "llm.max_new_tokens": "64",
                                 "tools.enabled": "false"})
    engines = build_engines(cfg)
    print(f"engines: {engines.status_line()}")
    store = AudioStore(None, cfg.files.max_age_s)
    cached = Assistant(cfg, engines, store)
    uncached = Assistant(cfg, dataclasses.replace(engines, generator=Uncached(engines.generator)), store)
    for i in range(args.sessions):
        session = cached.new_session()
        list(cached.text_turn(session, f"My lucky number is {i}. Say OK.", TurnOptions(speak=False)))
    sessions = {"kept": (cached, cached.new_session()), "afresh": (uncached, uncached.new_session())}
    rows: dict[str, list[tuple[float, dict]]] = {"kept": [], "afresh": []}
    generator = engines.generator
    for number, question in enumerate(QUESTIONS, start=1):
        for name, (assistant, session) in sessions.items():
            timings: dict = {}
            original = generator.stream if name == "kept" else None
            if original is not None:  # catch llama.cpp's figures for this turn
                generator.stream = lambda m, c=None, t=None, _o=original, _t=timings: _o(m, c, _t)
            try:
                final = list(assistant.text_turn(session, question, TurnOptions(speak=False)))[-1]
            finally:
                if original is not None:
                    del generator.stream
            rows[name].append((final.timings.get("first_token_s", float("nan")), timings))
        (kept_s, kept_t), (fresh_s, _) = rows["kept"][-1], rows["afresh"][-1]
        print(f"turn {number:2d}: first token {kept_s:5.2f} s kept (prompt {kept_t.get('prompt_n', '?'):>4} new, "
              f"{kept_t.get('cache_n', '?'):>4} cached)   {fresh_s:5.2f} s processed afresh   {question[:40]}",
              flush=True)
    store.close()
    kept = [s for s, _ in rows["kept"]]
    fresh = [s for s, _ in rows["afresh"]]
    print(f"turns 2-10 median: kept {statistics.median(kept[1:]):.2f} s, afresh {statistics.median(fresh[1:]):.2f} s")
    print(f"RESULT prefix_first_token_s_turn1={kept[0]:.2f} turn5={kept[4]:.2f} turn10={kept[9]:.2f} "
          f"uncached_turn10={fresh[9]:.2f} prompt_tokens_turn10={rows['kept'][9][1].get('prompt_n', -1)}")


if __name__ == "__main__":
    main()
