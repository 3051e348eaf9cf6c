"""Speech to text of what the microphone listener heard: Whisper's encoder on a window fitted to the audio
(`stt.window_margin_s`) against the usual 30 s window, on the same clips, alternating, in one run.

    .venv/bin/python bench/stt_window.py [--margin SECONDS]   (default: the config's stt.window_margin_s)

The clips are the benchmark questions and the halves of paused questions (what talk mode transcribes at a
pause), spoken by Piper and espeak-ng, with 0.3 s of silence either side as the listener keeps. Both ways use
the app's transcriber (embedded tiny.en, greedy); the fitted one is `transcribe(audio, voiced=True)`, the full
one the same call with `stt.window_margin_s: 0`. The last line is
    RESULT stt_fitted_median_s=X stt_full_median_s=Y ratio=X/Y same_words=N/M wer_fitted=A wer_full=B
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import re
import shutil
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

PAUSE_HALVES = ["How do I make a good", "I need a recipe for", "I would like to know the",
                "Can you tell me how a rainbow forms in the", "Please remind me to water the"]
EDGE_S = 0.3  # the listener's pre-roll (and what it keeps after the speech)


def clips(folder: Path) -> list[tuple[str, str, "object"]]:
    import numpy as np

    from audio.decode import StreamResampler, decode_file
    from audio.tts.piper_speaker import PiperSpeaker
    from tests.media import speak

    piper = PiperSpeaker("embedded")
    espeak = shutil.which("espeak-ng")
    edge = np.zeros(int(EDGE_S * 16000), np.float32)
    out = []
    for i, text in enumerate(QUESTIONS + PAUSE_HALVES):
        for voice in ("piper", "espeak-ng") if espeak else ("piper",):
            if voice == "piper":
                audio = StreamResampler(16000).push(*speak(piper, text))
            else:
                path = folder / f"{i}.wav"
                subprocess.run([espeak, "-v", "en-us", "-s", "150", "-w", str(path), text], check=True)
                audio = decode_file(path)
            out.append((text, voice, np.concatenate([edge, audio.astype(np.float32), edge])))
    return out


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--margin", type=float, default=None, help="stt.window_margin_s for the fitted window")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    logging.getLogger("audio.stt.faster_whisper_stt").setLevel(logging.INFO)  # says when it falls back

    from chatbot.config import load_config
    from chatbot.engines import build_transcriber

    cfg = load_config(overrides={"device": "cpu", "stt.model": "embedded"})
    if args.margin is None:
        args.margin = cfg.stt.window_margin_s
    fitted, _ = build_transcriber(dataclasses.replace(cfg.stt, window_margin_s=args.margin), "cpu", cfg.cache_path)
    full, _ = build_transcriber(dataclasses.replace(cfg.stt, window_margin_s=0.0), "cpu", cfg.cache_path)
    print(f"STT: {fitted.description}, beam {cfg.stt.beam_size}; window margin {args.margin} s")
    samples = clips(Path(tempfile.mkdtemp()))
    for transcriber in (fitted, full):  # warm-up, not counted
        transcriber.transcribe(samples[0][2], voiced=True)
    from tests.media import wer

    times: dict[str, list[float]] = {"fitted": [], "full": []}
    errors: dict[str, list[float]] = {"fitted": [], "full": []}
    same = 0
    for i, (text, voice, audio) in enumerate(samples):
        texts = {}
        for name in ("fitted", "full") if i % 2 == 0 else ("full", "fitted"):
            started = time.perf_counter()
            texts[name] = (fitted if name == "fitted" else full).transcribe(audio, voiced=True).text
            times[name].append(time.perf_counter() - started)
            errors[name].append(wer(text, texts[name]))
        agree = words(texts["fitted"]) == words(texts["full"])
        same += agree
        mark = "same" if agree else "DIFFERENT"
        print(f"{i + 1:2d} {voice:9s} {len(audio) / 16000:4.1f} s  fitted {times['fitted'][-1]:.3f} s  full "
              f"{times['full'][-1]:.3f} s  {mark:9s} {text!r}: fitted {texts['fitted']!r}"
              + ("" if agree else f" | full {texts['full']!r}"), flush=True)
    print(f"\n{'seconds':12s} {'n':>3s} {'median':>7s} {'p90':>7s} {'max':>7s}")
    for name, values in times.items():
        print(f"{name:12s} {len(values):3d} {statistics.median(values):7.3f} {p90(values):7.3f} {max(values):7.3f}")
    for name, values in errors.items():
        print(f"{name}: word error rate against the words spoken, mean {statistics.mean(values):.3f}")
    fitted_s, full_s = statistics.median(times["fitted"]), statistics.median(times["full"])
    print(f"RESULT stt_fitted_median_s={fitted_s:.3f} stt_full_median_s={full_s:.3f} ratio={fitted_s / full_s:.2f} "
          f"same_words={same}/{len(samples)} wer_fitted={statistics.mean(errors['fitted']):.3f} "
          f"wer_full={statistics.mean(errors['full']):.3f}")


if __name__ == "__main__":
    main()
