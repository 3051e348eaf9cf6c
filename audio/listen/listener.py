"""Listening to a microphone stream: when the user starts speaking, pauses, goes on, and ends a turn.

One `Listener` per session is fed the audio chunks as they stream in from the browser (`feed(rate, samples)`)
and answers the events that happened in them, in order:

    SpeechOnset     speech lasted hold_s: perhaps a user starting to talk (hold the answer being spoken)...
    SpeechFaded     ...or not: that sound stopped short of min_speech_s (a cough): let the answer go on
    SpeechStarted   speech lasted min_speech_s: a user is talking (barge-in: stop the answer being spoken)
    SpeechPaused    pause_s of silence after speech; carries the utterance so far (transcribe it speculatively)
    SpeechResumed   the user went on after a pause: throw the speculative work away
    TurnEnded       the utterance is finished (the end-of-turn model, a silence timeout, too long, stream end)
    InputDropped    audio came faster than real time allows and was dropped

Time is the stream's own: seconds of accepted audio since the listener began (`time_s` on every event), so the
decisions do not depend on how the chunks are cut or how fast the machine is. Memory is bounded: only the
current utterance (at most `max_audio_s`) and a short pre-roll are kept, and a client that streams faster than
`max_rate` times real time (beyond a `max_burst_s` backlog) has the excess dropped before it is resampled.

The models (`SileroVAD`, `SmartTurn`) are loaded once and shared; a Listener holds only its stream's state.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import deque
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Callable, Literal, Union

import numpy as np

from audio.decode import SAMPLE_RATE, StreamResampler, to_float_mono
from audio.listen.end_of_turn import EndOfTurnError, SmartTurn, sounds_finished
from audio.listen.vad import FRAME_SAMPLES, SileroVAD, StreamingVAD
from chatbot.config import TalkConfig

log = logging.getLogger(__name__)

EndReason = Literal["smart-turn", "hybrid", "silence", "too long", "stream ended"]
Phase = Literal["idle", "speaking", "paused", "ignoring"]


@dataclass(frozen=True)
class SpeechOnset:
    time_s: float  # when the sound had been speech for hold_s
    speech_start_s: float


@dataclass(frozen=True)
class SpeechFaded:
    time_s: float  # when the sound that made a SpeechOnset stopped, short of min_speech_s


@dataclass(frozen=True)
class SpeechStarted:
    time_s: float  # when speech had lasted min_speech_s (the moment to stop a reply that is playing)
    speech_start_s: float  # when that speech began


@dataclass(frozen=True, eq=False)
class SpeechPaused:
    time_s: float  # pause_s after the speech stopped
    speech_end_s: float
    audio: np.ndarray  # the utterance so far, 16 kHz float32, pre-roll included: what TurnEnded carries if the
    # user does not go on (the very same array), so a transcript of it can be kept
    transcript: Future | None = None  # its transcription, started at once (when the listener was given one)


@dataclass(frozen=True)
class SpeechResumed:
    time_s: float  # when the new speech had lasted min_speech_s
    speech_start_s: float


@dataclass(frozen=True, eq=False)
class TurnEnded:
    time_s: float  # when the turn was judged over
    speech_end_s: float  # when the last speech stopped
    audio: np.ndarray  # the utterance, 16 kHz mono float32, with preroll_s before the speech (and after it)
    reason: EndReason
    probability: float | None  # the model's last P(complete) for this utterance; None if it was not asked
    transcript: Future | None = None  # the transcription started at the pause, when `audio` is what it heard


@dataclass(frozen=True)
class InputDropped:
    time_s: float
    dropped_s: float  # audio thrown away in this chunk, seconds at its own rate
    reason: Literal["faster than real time"]


ListenerEvent = Union[SpeechOnset, SpeechFaded, SpeechStarted, SpeechPaused, SpeechResumed, TurnEnded, InputDropped]


@dataclass(frozen=True)
class ListenerStats:
    fed_s: float  # audio accepted, seconds
    dropped_s: float  # audio dropped for coming too fast, seconds
    wall_s: float  # wall-clock time since the first chunk
    buffered_s: float  # audio held right now
    model_calls: int  # Smart Turn calls made
    model_s: float  # wall-clock time spent in them


class AudioBuffer:
    """The recent stream, addressed by absolute sample index; the oldest samples are dropped on request."""

    def __init__(self) -> None:
        self._chunks: deque[np.ndarray] = deque()
        self.start = 0  # index of the oldest sample held
        self.end = 0  # index after the newest sample

    def __len__(self) -> int:
        return self.end - self.start

    def append(self, samples: np.ndarray) -> None:
        if len(samples):
            self._chunks.append(samples)
            self.end += len(samples)

    def drop_before(self, index: int) -> None:
        """Forget every sample before `index` (at most all of them)."""
        index = min(index, self.end)
        while self._chunks and self.start + len(self._chunks[0]) <= index:
            self.start += len(self._chunks.popleft())
        if self._chunks and self.start < index:
            self._chunks[0] = self._chunks[0][index - self.start:].copy()  # a view would keep the whole chunk
            self.start = index

    def slice(self, begin: int, end: int) -> np.ndarray:
        """Samples [begin, end), clipped to what is held, as one new float32 array."""
        begin, end = max(begin, self.start), min(end, self.end)
        parts, position = [], self.start
        for chunk in self._chunks:
            low, high = max(begin - position, 0), min(end - position, len(chunk))
            if low < high:
                parts.append(chunk[low:high])
            position += len(chunk)
            if position >= end:
                break
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.float32)


@dataclass
class RateLimiter:
    """A token bucket of audio seconds: refills at `rate` per wall second, holds at most `burst_s`."""

    rate: float
    burst_s: float
    clock: Callable[[], float]
    tokens_s: float = field(init=False)
    last: float | None = field(init=False, default=None)
    first: float | None = field(init=False, default=None)

    def __post_init__(self) -> None:
        self.tokens_s = self.burst_s

    def allow(self, seconds: float) -> float:
        """How many of `seconds` of new audio may pass now."""
        now = self.clock()
        if self.last is not None:
            self.tokens_s = min(self.burst_s, self.tokens_s + (now - self.last) * self.rate)
        self.first = now if self.first is None else self.first
        self.last = now
        allowed = min(seconds, self.tokens_s)
        self.tokens_s -= allowed
        return allowed

    def wall_s(self) -> float:
        return 0.0 if self.first is None else self.clock() - self.first


def _reads_finished(transcript: Future) -> bool:
    """Whether a finished transcription reads as a finished sentence (a failed one: as unfinished, and the
    silence timeout decides)."""
    try:
        return sounds_finished(transcript.result().text)
    except Exception as e:  # the transcriber's own errors are reported by the turn that uses the transcript
        log.warning("a speculative transcription failed (%s): the silence decides this turn", type(e).__name__)
        return False


def _samples(seconds: float) -> int:
    return int(round(seconds * SAMPLE_RATE))


class Listener:
    """One session's microphone stream -> speech and turn events. Not shared: build one per session.

    `turn_model` is required when `config.end_of_turn` is "smart-turn" or "hybrid" and ignored otherwise.
    `transcribe(audio) -> Future` (of something with a `.text`) is started at each pause, so that the transcript
    is ready, or nearly, when the turn ends; "hybrid" also judges by it: the turn ends once the model hears a
    finished sentence and the transcript reads as one (`sounds_finished`).
    `max_audio_s` is the app's `limits.max_audio_s`: a longer utterance ends the turn as "too long".
    """

    def __init__(self, config: TalkConfig, vad: SileroVAD, turn_model: SmartTurn | None, *, max_audio_s: float,
                 transcribe: Callable[[np.ndarray], Future] | None = None, clock: Callable[[], float] = time.monotonic):
        if config.end_of_turn in ("smart-turn", "hybrid") and turn_model is None:
            raise ValueError(f"talk.end_of_turn is {config.end_of_turn} but no end-of-turn model was given")
        self.config = config
        self._turn_model = turn_model if config.end_of_turn in ("smart-turn", "hybrid") else None
        self._hybrid = config.end_of_turn == "hybrid" and transcribe is not None
        self._transcribe = transcribe
        self._vad = StreamingVAD(vad)
        self._limiter = RateLimiter(config.max_rate, config.max_burst_s, clock)
        self._lock = threading.Lock()  # feed() from two threads at once would interleave the stream
        self._min_speech = _samples(config.min_speech_s)
        self._hold = _samples(config.hold_s)  # 0: no SpeechOnset / SpeechFaded
        self._pause = _samples(config.pause_s)
        self._silence_timeout = _samples(config.silence_timeout_s)
        self._max_wait = _samples(config.max_wait_s)
        self._recheck = _samples(config.recheck_s)  # 0: the model is asked once per pause
        self._preroll = _samples(config.preroll_s)
        self._max_audio = _samples(max_audio_s)
        self._dropped_s = 0.0
        self._model_calls = 0
        self._model_s = 0.0
        self.reset()

    # ---- the public face ------------------------------------------------------------------------------

    def reset(self) -> None:
        """Forget the stream (a new recording); the rate limit's account is kept."""
        with self._lock:
            self._vad.reset()
            self._resampler = StreamResampler(SAMPLE_RATE)
            self._buffer = AudioBuffer()
            self._phase: Phase = "idle"
            self._in_speech = False  # the VAD's hysteresis state for the last frame
            self._run_start: int | None = None  # first sample of the current run of speech frames
            self._onset_said = False  # a SpeechOnset went out for the current run, and no SpeechStarted yet
            self._utterance_start = 0  # first sample of the utterance (pre-roll included)
            self._speech_end = 0  # sample after the last speech frame of the utterance
            self._paused_audio: np.ndarray | None = None
            self._transcript: Future | None = None  # the paused audio's transcription
            self._reads_finished: bool | None = None  # what its words say, once it is done
            self._probability: float | None = None
            self._next_check = 0.0  # sample at which smart-turn is asked (again); inf: not again
            self._model_failed = False

    @property
    def phase(self) -> Phase:
        return self._phase

    @property
    def last_probability(self) -> float | None:
        """The model's latest P(complete) for the current (or last) utterance; None until it is asked."""
        return self._probability

    def stats(self) -> ListenerStats:
        return ListenerStats(fed_s=self._buffer.end / SAMPLE_RATE, dropped_s=self._dropped_s,
                             wall_s=self._limiter.wall_s(), buffered_s=len(self._buffer) / SAMPLE_RATE,
                             model_calls=self._model_calls, model_s=self._model_s)

    def feed(self, sample_rate: int, samples: np.ndarray) -> list[ListenerEvent]:
        """A chunk of the stream as Gradio gives it: (rate, int16 or float array, mono or (n, channels)), the
        events it completed, in order. Resampled to 16 kHz by one resampler kept for the stream."""
        if sample_rate <= 0:
            raise ValueError(f"sample rate must be positive, got {sample_rate}")
        mono = to_float_mono(samples)
        with self._lock:
            events: list[ListenerEvent] = []
            allowed_s = self._limiter.allow(len(mono) / sample_rate)
            keep = min(len(mono), math.floor(allowed_s * sample_rate + 1e-6))
            if keep < len(mono):
                dropped_s = (len(mono) - keep) / sample_rate
                self._dropped_s += dropped_s
                events.append(InputDropped(self._buffer.end / SAMPLE_RATE, dropped_s, "faster than real time"))
            if keep:
                audio = self._resampler.push(sample_rate, mono[:keep])
                events.extend(self._process(audio))
            return events

    def finish(self) -> list[ListenerEvent]:
        """The stream stopped (the user pressed Stop): an utterance under way ends as "stream ended"."""
        with self._lock:
            events: list[ListenerEvent] = []
            if self._phase in ("speaking", "paused"):
                audio = self._paused_audio if self._phase == "paused" else self._utterance_audio(self._buffer.end)
                events.append(TurnEnded(self._buffer.end / SAMPLE_RATE, self._speech_end / SAMPLE_RATE, audio,
                                        "stream ended", self._probability))
        self.reset()
        return events

    # ---- the state machine, one 32 ms frame at a time ------------------------------------------------

    def _process(self, audio: np.ndarray) -> list[ListenerEvent]:
        first_frame = self._vad.frames_done
        self._buffer.append(audio)
        events: list[ListenerEvent] = []
        for offset, probability in enumerate(self._vad.process(audio)):
            frame_end = (first_frame + offset + 1) * FRAME_SAMPLES
            events.extend(self._step(frame_end, self._is_speech(float(probability))))
        self._buffer.drop_before(self._keep_from())
        return events

    def _is_speech(self, probability: float) -> bool:
        threshold = self.config.vad_release_threshold if self._in_speech else self.config.vad_threshold
        self._in_speech = probability >= threshold
        return self._in_speech

    def _step(self, frame_end: int, speech: bool) -> list[ListenerEvent]:
        run = self._track_run(frame_end, speech)
        if self._phase == "idle":
            return self._step_idle(frame_end, run)
        if self._phase == "ignoring":
            if frame_end - self._speech_end >= self._silence_timeout:
                self._phase = "idle"
            elif speech:
                self._speech_end = frame_end
            return []
        if self._phase == "speaking":
            return self._step_speaking(frame_end, speech)
        return self._step_paused(frame_end, run)

    def _track_run(self, frame_end: int, speech: bool) -> int:
        """Length in samples of the run of speech frames ending at this frame (0 on silence)."""
        if not speech:
            self._run_start = None
            return 0
        if self._run_start is None:
            self._run_start = frame_end - FRAME_SAMPLES
        return frame_end - self._run_start

    def _step_idle(self, frame_end: int, run: int) -> list[ListenerEvent]:
        if run == 0 and self._onset_said:
            self._onset_said = False
            return [SpeechFaded(frame_end / SAMPLE_RATE)]
        if run < self._min_speech:
            if self._hold and run >= self._hold and not self._onset_said:
                self._onset_said = True
                return [SpeechOnset(frame_end / SAMPLE_RATE, (frame_end - run) / SAMPLE_RATE)]
            return []
        start = frame_end - run
        self._onset_said = False
        self._phase = "speaking"
        self._utterance_start = max(self._buffer.start, start - self._preroll)
        self._speech_end = frame_end
        self._probability = None
        return [SpeechStarted(frame_end / SAMPLE_RATE, start / SAMPLE_RATE)]

    def _step_speaking(self, frame_end: int, speech: bool) -> list[ListenerEvent]:
        if speech:
            self._speech_end = frame_end
        if frame_end - self._utterance_start >= self._max_audio:
            return [self._end_too_long(frame_end)]
        if frame_end - self._speech_end < self._pause:
            return []
        self._phase = "paused"
        self._paused_audio = self._utterance_audio(frame_end)
        self._transcript = self._transcribe(self._paused_audio) if self._transcribe is not None else None
        self._reads_finished = None
        self._next_check = frame_end
        events: list[ListenerEvent] = [SpeechPaused(frame_end / SAMPLE_RATE, self._speech_end / SAMPLE_RATE,
                                                    self._paused_audio, self._transcript)]
        ended = self._judge(frame_end)
        return events + ([ended] if ended else [])

    def _step_paused(self, frame_end: int, run: int) -> list[ListenerEvent]:
        if run >= self._min_speech:
            self._phase = "speaking"
            self._speech_end = frame_end
            self._paused_audio = self._transcript = None  # the user went on: that transcript is of no use
            return [SpeechResumed(frame_end / SAMPLE_RATE, (frame_end - run) / SAMPLE_RATE)]
        if run:  # speech again, not yet long enough to count: wait and see before judging
            return []
        ended = self._judge(frame_end)
        return [ended] if ended else []

    def _judge(self, frame_end: int) -> TurnEnded | None:
        """In a pause: has the turn ended? Smart-turn asks its model; silence (and a failed model) waits."""
        if self._hybrid and not self._model_failed:
            return self._judge_hybrid(frame_end)
        use_model = self._turn_model is not None and not self._model_failed
        if use_model and frame_end >= self._next_check:
            self._next_check = frame_end + self._recheck if self._recheck else math.inf
            self._probability = self._ask_model(frame_end)
            if self._probability is not None and self._probability >= self.config.end_of_turn_threshold:
                return self._end("smart-turn", frame_end)
        timeout = self._silence_timeout if self._turn_model is None or self._model_failed else self._max_wait
        return self._end("silence", frame_end) if frame_end - self._speech_end >= timeout else None

    def _judge_hybrid(self, frame_end: int) -> TurnEnded | None:
        """The model's ear and the transcript's words must agree that the sentence is finished. If the words
        read finished but the model hears more to come, the silence timeout decides; if the words are unfinished
        ("...the capital of"), the user may think for up to max_wait_s."""
        if frame_end >= self._next_check:  # once a pause: the model's P(complete) grows with the silence
            self._next_check = math.inf
            self._probability = self._ask_model(frame_end)
        silence = frame_end - self._speech_end
        limit = self._max_wait
        if self._transcript is not None and self._transcript.done():
            if self._reads_finished is None:
                self._reads_finished = _reads_finished(self._transcript)
            finished = self._reads_finished
            heard = self._probability is not None and self._probability >= self.config.hybrid_threshold
            if finished and heard:
                return self._end("hybrid", frame_end)
            if finished:
                limit = self._silence_timeout
        return self._end("silence", frame_end) if silence >= limit else None

    def _ask_model(self, frame_end: int) -> float | None:
        started = time.perf_counter()
        try:
            # What pipecat gives it: from the pre-roll to now, the silence so far included.
            return self._turn_model.probability(self._buffer.slice(self._utterance_start, frame_end))
        except EndOfTurnError as e:  # carry on with the silence timeout rather than never ending a turn
            log.warning("end-of-turn model failed (%s); ending turns by silence for this stream", e)
            self._model_failed = True
            return None
        finally:
            self._model_calls += 1
            self._model_s += time.perf_counter() - started

    # ---- ends, audio, memory -----------------------------------------------------------------------

    def _end(self, reason: EndReason, frame_end: int) -> TurnEnded:
        paused = self._paused_audio is not None
        audio = self._paused_audio if paused else self._utterance_audio(frame_end)
        ended = TurnEnded(frame_end / SAMPLE_RATE, self._speech_end / SAMPLE_RATE, audio, reason, self._probability,
                          self._transcript if paused else None)
        self._phase = "idle"
        self._paused_audio = self._transcript = None
        return ended

    def _end_too_long(self, frame_end: int) -> TurnEnded:
        audio = self._buffer.slice(self._utterance_start, self._utterance_start + self._max_audio)
        ended = TurnEnded(frame_end / SAMPLE_RATE, self._speech_end / SAMPLE_RATE, audio, "too long",
                          self._probability)
        self._phase = "ignoring"  # the rest of the monologue is not a turn of its own: wait for silence
        self._speech_end = frame_end
        self._paused_audio = self._transcript = None
        return ended

    def _utterance_audio(self, frame_end: int) -> np.ndarray:
        """From the pre-roll before the speech to `frame_end` (at most preroll_s after the speech ended)."""
        return self._buffer.slice(self._utterance_start, min(frame_end, self._speech_end + self._preroll))

    def _keep_from(self) -> int:
        """The oldest sample still needed: the utterance's start, else the pre-roll before any speech run."""
        if self._phase in ("speaking", "paused"):
            return self._utterance_start
        latest = self._vad.frames_done * FRAME_SAMPLES
        if self._phase == "ignoring" or self._run_start is None:  # a run in "ignoring" may last for ever
            return latest - self._preroll
        return min(self._run_start, latest) - self._preroll
