"""End of turn (issue 14): how long a user waits after they stop speaking before their turn is taken, and how
often a pause in the middle of a sentence is taken for the end, with the Smart Turn model and with silence alone.

    .venv/bin/python bench/end_of_turn.py [--pause 0.7] [--chunk-ms 20]

Every question is spoken by Piper (joe) and, when it is installed (apt-get install espeak-ng), espeak-ng, each
once in one breath and once with a pause of --pause seconds in the middle of the sentence (at the `|`). Each
clip (1 s of silence, the speech, 4 s of silence) is streamed into a `Listener` as the browser sends it: 48 kHz
int16 in --chunk-ms chunks, in process, on a clock that moves with the audio. The wait is the end of the speech
(the last 10 ms louder than -35 dB below the loudest) to TurnEnded, in stream time, plus the wall time of the
feed() call that ended the turn (the model's own cost). A false cut-off is a turn that ended with the first half
of a sentence that had a pause (its speech ended before the pause did). The last line is
    RESULT eot_wait_median_s=<hybrid median> false_cutoffs=<hybrid cut-offs>/<clips with a pause>
(hybrid, the app's default, also reads the transcript made at the pause: `talk.end_of_turn` in config.yaml).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

QUESTIONS = [  # `|`: where the speaker stops to think, in the clips with a pause
    "What is the capital of | France?",
    "I would like to know the | weather in London today.",
    "Can you tell me how | a rainbow forms in the sky?",
    "Why is the sky blue during | the day?",
    "What should I pack for a | weekend hiking trip?",
    "How do I make a good | cup of tea?",
    "Please remind me to water the | plants tomorrow morning.",
    "What is the difference between | weather and climate?",
    "Could you explain why | cats purr?",
    "I need a recipe for | chocolate cake.",
    "How far is the moon | from the earth?",
    "Tell me something interesting about | the history of the printing press.",
]
BROWSER_RATE = 48_000  # Hz: what a browser's microphone stream usually runs at
LEAD_S = 1.0  # silence before each question
TAIL_S = 4.0  # silence after it: longer than any wait being measured (talk.max_wait_s)


@dataclasses.dataclass(frozen=True)
class Clip:
    voice: str
    text: str
    paused: bool
    audio: np.ndarray  # BROWSER_RATE int16, silence around the speech
    speech_end_s: float  # in the clip
    resume_s: float | None  # where the speech goes on after the pause, in the clip


@dataclasses.dataclass(frozen=True)
class Outcome:
    turns: int
    false_cutoff: bool
    wait_s: float | None  # end of speech -> the turn that followed it
    compute_s: float  # wall time of the feed() that ended that turn
    first_p_end: float | None  # the model's first P(complete) after the speech ended
    first_p_pause: float | None  # ... and in the mid-sentence pause


def make_clips(pause_s: float) -> list[Clip]:
    from tests.media import (aligned_piper, espeak, espeak_available, piper_with_pause, resample, silent_gaps,
                             speech_bounds)

    voices = [("piper", aligned_piper())]
    if espeak_available():
        voices.append(("espeak-ng", None))
    else:
        print("note: espeak-ng is not installed; all questions are spoken by Piper")
    clips = []
    for name, voice in voices:
        for text in QUESTIONS:
            for paused in (False, True):
                spoken = text if paused else text.replace("| ", "")
                rate, speech = piper_with_pause(voice, spoken, pause_s) if name == "piper" else espeak(spoken, pause_s)
                speech = resample(rate, speech, BROWSER_RATE)
                _start, end = speech_bounds(BROWSER_RATE, speech)
                resume = None
                if paused:
                    gaps = silent_gaps(BROWSER_RATE, speech, pause_s * 0.8)
                    resume = LEAD_S + max(gaps, key=lambda g: g[1] - g[0])[1]
                audio = np.concatenate([np.zeros(round(LEAD_S * BROWSER_RATE), np.float32), speech,
                                        np.zeros(round(TAIL_S * BROWSER_RATE), np.float32)])
                pcm = (np.clip(audio, -1, 1) * 32767).astype(np.int16)
                clips.append(Clip(name, text.replace("| ", ""), paused, pcm, LEAD_S + end, resume))
    return clips


def run_clip(listener, clip: Clip, chunk_s: float, clock: list[float]) -> Outcome:
    from audio.listen.listener import SpeechPaused, TurnEnded

    step = round(chunk_s * BROWSER_RATE)
    start = listener.stats().fed_s
    turns, false_cutoff, wait, compute = 0, False, None, 0.0
    first_end = first_pause = None
    pause_pending = None  # a SpeechPaused whose probability we have yet to read
    for i in range(0, len(clip.audio), step):
        clock[0] += chunk_s
        began = time.perf_counter()
        events = listener.feed(BROWSER_RATE, clip.audio[i:i + step])
        spent = time.perf_counter() - began
        for event in events:
            if isinstance(event, SpeechPaused):
                pause_pending = event
            if isinstance(event, TurnEnded):
                turns += 1
                at = event.time_s - start
                if clip.resume_s is not None and event.speech_end_s - start < clip.resume_s - 0.1:
                    false_cutoff = True  # the turn ended with the first half of the sentence
                elif wait is None and at >= clip.speech_end_s - 0.1:
                    wait, compute = at - clip.speech_end_s + spent, spent
        probability = listener.last_probability
        if pause_pending is not None and probability is not None:
            in_pause = clip.resume_s is not None and pause_pending.time_s - start < clip.resume_s
            if in_pause and first_pause is None:
                first_pause = probability
            elif not in_pause and first_end is None:
                first_end = probability
            pause_pending = None
    return Outcome(turns, false_cutoff, wait, compute, first_end, first_pause)


def model_costs(cfg, repeats: int = 20) -> dict:
    from audio.listen.end_of_turn import SmartTurn, log_mel_features
    from audio.listen.vad import SileroVAD, StreamingVAD

    rng = np.random.default_rng(0)
    audio = (rng.standard_normal(8 * 16_000) * 0.05).astype(np.float32)
    costs = {}
    for threads in (1, 2):
        model = SmartTurn.from_cache(cfg.cache_path, threads)
        model.probability(audio)  # warm-up
        times = []
        for _ in range(repeats):
            began = time.perf_counter()
            model.probability(audio)
            times.append(time.perf_counter() - began)
        costs[f"smart-turn call, {threads} thread(s)"] = statistics.median(times)
    began = time.perf_counter()
    for _ in range(repeats):
        log_mel_features(audio)
    costs["  of which log-mel features"] = (time.perf_counter() - began) / repeats
    vad = SileroVAD()
    began = time.perf_counter()
    for _ in range(repeats):
        StreamingVAD(vad).process(audio[:8000])
    costs["VAD, 0.5 s of audio"] = (time.perf_counter() - began) / repeats
    return costs


def transcribe_at_once(cfg):
    """The app's transcription at a pause (the listener's audio, `voiced`), done before the stream goes on: in
    the app it is ready about 0.1 s later (bench/results.md), so the decision here comes that much early."""
    from concurrent.futures import Future

    from chatbot.engines import build_transcriber

    transcriber, _note = build_transcriber(cfg.stt, "cpu", cfg.cache_path)

    def transcribe(audio: np.ndarray) -> Future:
        future: Future = Future()
        future.set_result(transcriber.transcribe(audio, voiced=True))
        return future

    return transcribe


def summarise(name: str, outcomes: list[tuple[Clip, Outcome]]) -> dict:
    ended = [o.wait_s for _c, o in outcomes if o.wait_s is not None]
    paused = [o for c, o in outcomes if c.paused]
    extra = sum(1 for c, o in outcomes if o.turns != (2 if o.false_cutoff else 1))
    return {"policy": name, "median": statistics.median(ended), "p90": sorted(ended)[round(0.9 * (len(ended) - 1))],
            "max": max(ended), "ended": len(ended), "clips": len(outcomes),
            "false": sum(o.false_cutoff for o in paused), "paused": len(paused), "odd_turn_counts": extra,
            "compute_ms": 1000 * statistics.median(o.compute_s for _c, o in outcomes if o.wait_s is not None)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pause", type=float, default=0.7, help="the mid-sentence pause, seconds")
    parser.add_argument("--chunk-ms", type=float, default=20.0, help="size of the streamed chunks")
    args = parser.parse_args()

    from audio.listen.end_of_turn import SmartTurn
    from audio.listen.listener import Listener
    from audio.listen.vad import SileroVAD
    from chatbot.config import load_config

    cfg = load_config(overrides={"device": "cpu", "stt.model": "embedded"})
    talk = cfg.talk
    clips = make_clips(args.pause)
    vad, model = SileroVAD(), SmartTurn.from_cache(cfg.cache_path, talk.end_of_turn_threads)
    transcribe = transcribe_at_once(cfg)
    policies = {
        f"hybrid (as the app: the words and Smart Turn at {talk.hybrid_threshold:g})":
            dataclasses.replace(talk, end_of_turn="hybrid"),
        "hybrid, the model's threshold 0.5": dataclasses.replace(talk, end_of_turn="hybrid", hybrid_threshold=0.5),
        "hybrid, the model's threshold 0.1": dataclasses.replace(talk, end_of_turn="hybrid", hybrid_threshold=0.1),
        f"smart-turn (config: threshold {talk.end_of_turn_threshold:g}, recheck {talk.recheck_s:g} s, max wait "
        f"{talk.max_wait_s:g} s)": dataclasses.replace(talk, end_of_turn="smart-turn"),
        "smart-turn, asked again every 0.2 s": dataclasses.replace(talk, end_of_turn="smart-turn", recheck_s=0.2),
        f"smart-turn, max wait = silence timeout {talk.silence_timeout_s:g} s":
            dataclasses.replace(talk, end_of_turn="smart-turn", max_wait_s=talk.silence_timeout_s),
        f"silence {talk.silence_timeout_s:g} s": dataclasses.replace(talk, end_of_turn="silence"),
        "silence 0.5 s": dataclasses.replace(talk, end_of_turn="silence", silence_timeout_s=0.5),
    }
    results, per_policy = [], {}
    for name, policy in policies.items():
        clock = [0.0]
        listener = Listener(policy, vad, model, max_audio_s=cfg.limits.max_audio_s, clock=lambda: clock[0],
                            transcribe=transcribe if policy.end_of_turn == "hybrid" else None)
        outcomes = [(clip, run_clip(listener, clip, args.chunk_ms / 1000, clock)) for clip in clips]
        per_policy[name] = outcomes
        results.append(summarise(name, outcomes))

    voices = sorted({c.voice for c in clips})
    print(f"{len(clips)} clips: {len(QUESTIONS)} questions x {'+'.join(voices)} x (one breath, {args.pause:g} s pause "
          f"mid-sentence); {args.chunk_ms:g} ms chunks at {BROWSER_RATE} Hz")
    print(f"{'policy':58} {'wait median':>11} {'p90':>6} {'max':>6} {'false cut-offs':>14} {'turn ms':>8}")
    for r in results:
        print(f"{r['policy']:58} {r['median']:10.2f}s {r['p90']:5.2f}s {r['max']:5.2f}s "
              f"{r['false']:>8}/{r['paused']:<5} {r['compute_ms']:7.0f}  ({r['ended']}/{r['clips']} ended after speech,"
              f" {r['odd_turn_counts']} clips with an unexpected number of turns)")
    default = next(iter(per_policy))
    ends = [o.first_p_end for _c, o in per_policy[default] if o.first_p_end is not None]
    pauses = [o.first_p_pause for _c, o in per_policy[default] if o.first_p_pause is not None]
    print(f"model's first P(complete), {talk.pause_s:g} s after speech: finished {np.round(sorted(ends), 2).tolist()}")
    print(f"                                      mid-sentence pause {np.round(sorted(pauses), 2).tolist()}")
    for threshold in (0.5, 0.7, 0.9, 0.95, 0.98):  # what asking once at each threshold would give
        print(f"  threshold {threshold:4}: {sum(p >= threshold for p in ends)}/{len(ends)} finished questions ended "
              f"at the first ask, {sum(p >= threshold for p in pauses)}/{len(pauses)} pauses taken for the end")
    for clip, outcome in per_policy[default]:
        if outcome.false_cutoff:
            print(f"  cut off by {default.split(' (')[0]}: {clip.voice} {clip.text!r}")
    for name, outcomes in per_policy.items():
        for clip, outcome in outcomes:
            if outcome.turns != (2 if outcome.false_cutoff else 1):
                print(f"  unexpected: {name}: {clip.voice} {'paused' if clip.paused else 'one breath'} "
                      f"{clip.text!r}: {outcome.turns} turns")
    for voice in voices:
        for name, outcomes in per_policy.items():
            mine = [(c, o) for c, o in outcomes if c.voice == voice]
            waits = [o.wait_s for _c, o in mine if o.wait_s is not None]
            print(f"  {voice:10} {name:58} wait median {statistics.median(waits):.2f} s, false cut-offs "
                  f"{sum(o.false_cutoff for c, o in mine if c.paused)}/{sum(c.paused for c, _o in mine)}")
    for label, seconds in model_costs(cfg).items():
        print(f"{label:40} {seconds * 1000:7.1f} ms")
    head = results[0]
    print(f"RESULT eot_wait_median_s={head['median']:.2f} false_cutoffs={head['false']}/{head['paused']}")


if __name__ == "__main__":
    main()
