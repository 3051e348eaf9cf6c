"""LLM engines side by side on one embedded model: load, first token, tokens/s, peak memory, right answers.

    .venv/bin/python bench/engines.py --model smollm2-135m            # every engine that runs here
    .venv/bin/python bench/engines.py --model qwen2.5-coder-1.5b --engines llama.cpp onnxruntime-genai/int8 \
        onnxruntime-genai/int4

Each in-process engine runs in its own process (so its peak memory is its own), loaded through the app's own
`build_generator`, greedy, 128 new tokens, on the same chat prompts; `ENGINE/int4` builds that engine's model
as int4 instead of llm.export_precision. The `openai` engine is measured against llama.cpp's server on the same
GGUF, started here (its peak memory is the server's). Tokens are counted by re-tokenising each reply with the
model's tokenizer, so every engine is counted the same way. "Correct" counts the factual checks answered right.

The last line: RESULT engine=<fastest correct in-process engine> tok_s=<its tokens/s> vs_transformers=<ratio>.
Only in-process engines can be the app's CPU default (llm.cpu_engine); the openai engine's figures are those
of whatever server it talks to, shown for comparison.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from bench.harness import free_port  # noqa: E402

ENGINES = ["llama.cpp", "transformers", "onnxruntime-genai", "onnxruntime-genai/int8", "onnxruntime-genai/int4",
           "openvino", "openai"]
PROMPTS = ["Tell me a story about a dragon who learns to bake bread.",
           "Explain how a rainbow forms, step by step.",
           "Describe a perfect day at the seaside."]
CHECKS = [("What is the capital of France?", "paris"), ("What is the capital of Australia?", "canberra"),
          ("How many legs does a spider have?", "eight|8"), ("What is 17 times 3?", "51"),
          ("Translate 'good morning' into Portuguese.", "bom dia")]
NEW_TOKENS = 128


def measure(spec: str, model: str, base_url: str = "") -> dict:
    """Runs in a child process: load the engine, then time every prompt."""
    from transformers import AutoTokenizer

    from chatbot.config import load_config
    from chatbot.llm.embedded import prepare_embedded_llm
    from chatbot.engines import build_generator

    cfg = load_config(environ={})
    engine, _, precision = spec.partition("/")
    llm = dataclasses.replace(cfg.llm, engine=engine, model="auto" if engine == "openai" else "embedded",
                              embedded_model=model, temperature=0.0, max_new_tokens=NEW_TOKENS,
                              repetition_penalty=1.0, parallel=1, export_precision=precision or cfg.llm.export_precision,
                              openai_base_url=base_url or cfg.llm.openai_base_url)
    tokenizer = AutoTokenizer.from_pretrained(prepare_embedded_llm(cfg.cache_path, model))
    started = time.perf_counter()
    generator, note = build_generator(llm, "cpu", cfg.cache_path)
    load_s = time.perf_counter() - started
    if note:
        raise RuntimeError(note)
    system = {"role": "system", "content": cfg.llm.system_prompt}
    runs = []
    for prompt in [PROMPTS[0], *PROMPTS]:  # the first run warms up and is not counted
        t0 = time.perf_counter()
        first = None
        text = ""
        for piece in generator.stream([system, {"role": "user", "content": prompt}]):
            first = first or time.perf_counter()
            text += piece
        end = time.perf_counter()
        tokens = len(tokenizer(text, add_special_tokens=False)["input_ids"])
        runs.append({"ttft_s": first - t0, "tokens": tokens, "tok_s": (tokens - 1) / (end - first)})
    runs = runs[1:]
    answers = ["".join(generator.stream([system, {"role": "user", "content": q}])).strip() for q, _ in CHECKS]
    right = [bool(re.search(expected, a.lower())) for a, (_, expected) in zip(answers, CHECKS)]
    return {"engine": spec, "description": generator.description, "load_s": load_s,
            "ttft_s": statistics.median(r["ttft_s"] for r in runs),
            "tok_s": statistics.median(r["tok_s"] for r in runs), "tokens": [r["tokens"] for r in runs],
            "peak_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
            "correct": all(right), "right": f"{sum(right)}/{len(right)}",
            "answer": "; ".join(a[:40] for a, ok in zip(answers, right) if not ok) or answers[0][:60]}


def run_child(engine: str, model: str, base_url: str = "") -> dict:
    command = [sys.executable, __file__, "--child", engine, "--model", model, "--base-url", base_url]
    done = subprocess.run(command, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        reason = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"engine": engine, "error": reason[:200]}
    return json.loads(lines[-1])


def run_openai(model: str) -> dict:
    from tests.llama_server import LlamaServer

    with tempfile.TemporaryDirectory() as scratch:
        server = LlamaServer(free_port(), Path(scratch) / "server.log")
        try:
            server.start()
        except Exception as e:  # not installed (scripts/setup.sh --test installs it), or it failed to start
            return {"engine": "openai", "error": f"llama.cpp server: {e}"}
        try:
            result = run_child("openai", model, server.base_url)
            status = Path(f"/proc/{server.process.pid}/status").read_text()
            hwm = next(line for line in status.splitlines() if line.startswith("VmHWM:"))
            if "error" not in result:
                result["peak_mb"] = int(hwm.split()[1]) / 1024
                result["description"] += " (llama.cpp's server, SmolLM2)"
        finally:
            server.stop()
    return result


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engines", nargs="+", default=ENGINES, choices=ENGINES)
    parser.add_argument("--child", choices=ENGINES)
    parser.add_argument("--model", default="smollm2-135m", help="an embedded model's key (chatbot/llm/embedded.py)")
    parser.add_argument("--base-url", default="")
    args = parser.parse_args()
    if args.child:
        print(json.dumps(measure(args.child, args.model, args.base_url)))
        return 0

    print(f"{args.model}: {len(PROMPTS)} prompts, greedy, {NEW_TOKENS} new tokens, {os.cpu_count()} cores; medians",
          flush=True)
    results = []
    for engine in args.engines:
        result = run_openai(args.model) if engine == "openai" else run_child(engine, args.model)
        results.append(result)
        if "error" in result:
            print(f"{engine:18} did not run: {result['error']}", flush=True)
            continue
        print(f"{engine:18} load {result['load_s']:6.2f} s  first token {result['ttft_s'] * 1000:5.0f} ms  "
              f"{result['tok_s']:6.1f} tok/s  peak {result['peak_mb']:5.0f} MB  "
              f"right {result['right']}: {result['answer']!r}", flush=True)
        print(f"{'':18} {result['description']}; tokens per reply {result['tokens']}", flush=True)
    ran = [r for r in results if "error" not in r]
    correct = [r for r in ran if r["correct"] and r["engine"] != "openai"]
    reference = next((r for r in ran if r["engine"] == "transformers"), None)
    if not correct:
        print(f"RESULT model={args.model} engine=none")
        return 1
    best = max(correct, key=lambda r: r["tok_s"])
    ratio = f"{best['tok_s'] / reference['tok_s']:.2f}" if reference else "n/a"
    print(f"RESULT model={args.model} engine={best['engine']} tok_s={best['tok_s']:.1f} "
          f"first_token_s={best['ttft_s']:.2f} vs_transformers={ratio}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
