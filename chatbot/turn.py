"""One turn of the conversation: (transcribe) -> stream the reply -> speak it.

A `Turn` owns what one turn needs: its session and exchange, its cancel event, when the user's input was
complete (latency counts from there), its timings and its speech stage. It yields `TurnUpdate`s carrying the
chat panel rendered from the session's exchanges, so the UI only forwards them; nothing here imports gradio.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Literal, Protocol

import numpy as np

from audio.decode import SAMPLE_RATE, AudioDecodeError, decode_file
from audio.speech.stage import SpeechStage
from audio.stt.base import Transcript
from audio.store import AudioStore
from audio.tts.base import SpeechChunk, VoiceOptions, join_chunks
from chatbot.config import LimitsConfig, TTSConfig
from chatbot.conversation import PromptTooLongError
from chatbot.engines import Engines
from chatbot.llm.base import Message, ReplyError
from chatbot.session import ChatMessage, ChatSession, Exchange, Reply, ToolNote, UserInput
from chatbot.tools import ToolError, ToolResult, grounded_messages

log = logging.getLogger(__name__)

_POLL_S = 0.05  # while a tool runs, how often the speech already made is handed out

Stage = Literal["transcribing", "thinking", "speaking", "done", "failed", "stopped"]


@dataclass(frozen=True)
class TurnOptions:
    voice: VoiceOptions = VoiceOptions()
    language: str | None = None  # speech recognition language; None = configured default
    speak: bool = True  # False: text only


@dataclass(frozen=True)
class TurnUpdate:
    messages: list[ChatMessage]  # a snapshot of the chat panel
    stage: Stage
    audio: Path | None = None  # the whole reply's audio file, once spoken
    speech: tuple[SpeechChunk, ...] = ()  # audio made since the previous update, to play at once
    notice: str = ""  # something the user should be told (a fallback, an error), in plain words
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, for logs and benchmarks


class TurnGate:
    """Holds a turn's effects on its session back until the turn is confirmed: talk mode starts answering at a
    pause, before it knows whether the user has finished. Until `open()` the exchange is not in the chat and
    nothing is remembered (the speech is held by chatbot/early_turn.py); `close()` (the user went on) stops the
    turn, which then leaves no trace."""

    def __init__(self) -> None:
        self._state: Literal["pending", "open", "closed"] = "pending"
        self._changed = threading.Condition()
        self._on_open: list[Callable[[], object]] = []
        self._on_close: list[Callable[[], object]] = []

    @property
    def opened(self) -> bool:
        return self._state == "open"

    def when_open(self, action: Callable[[], object]) -> None:
        self._when("open", self._on_open, action)

    def when_closed(self, action: Callable[[], object]) -> None:
        self._when("closed", self._on_close, action)

    def _when(self, state: str, waiting: list[Callable[[], object]], action: Callable[[], object]) -> None:
        """Run `action` when the gate settles in `state` (now, if it has)."""
        with self._changed:
            if self._state == "pending":
                waiting.append(action)
                return
        if self._state == state:
            action()

    def open(self) -> None:
        self._settle("open", self._on_open)

    def close(self) -> None:
        self._settle("closed", self._on_close)

    def _settle(self, state: Literal["open", "closed"], actions: list[Callable[[], object]]) -> None:
        with self._changed:
            if self._state != "pending":
                return
            self._state = state
            self._changed.notify_all()
        for action in actions:
            action()

    def wait(self, cancel: threading.Event) -> bool:
        """Until the gate opens (True), or closes or the turn is cancelled (False)."""
        with self._changed:
            while self._state == "pending" and not cancel.is_set():
                self._changed.wait(_POLL_S)
            return self._state == "open"


class TurnServices(Protocol):
    """What a turn uses of what every session shares (the Assistant): read at each use, so settings may change."""

    engines: Engines
    store: AudioStore
    limits: LimitsConfig
    speech: TTSConfig  # the speech stage's settings
    after_turn: Callable[[], object]  # runs when each turn ends, however it ends (server.malloc_trim)


class Turn:
    def __init__(self, assistant: TurnServices, session: ChatSession, options: TurnOptions, user: UserInput,
                 started: float | None = None, gate: TurnGate | None = None):
        # When the user's input was complete (time.perf_counter()): time to first audio counts from here.
        self.started = time.perf_counter() if started is None else started
        self.assistant = assistant
        self.session = session
        self.options = options
        self.cancel: threading.Event = session.begin_turn()
        self.exchange = Exchange(user)
        self.gate = gate
        if gate is None:
            session.exchanges.append(self.exchange)
        else:  # shown once confirmed; stopped if the user goes on
            gate.when_open(lambda: session.exchanges.append(self.exchange))
            gate.when_closed(self.cancel.set)
        self.timings: dict[str, float] = {}
        self.speech: SpeechStage | None = None
        self.reply_in: str | None = None  # the language the prompt asked the answer in (kept with the exchange)

    def update(self, stage: Stage, **extra) -> TurnUpdate:
        return TurnUpdate(self.session.messages, stage, timings=dict(self.timings), **extra)

    def fail(self, message: str) -> TurnUpdate:
        """End the turn: the user's message stays, followed by what went wrong."""
        log.warning("turn failed: %s", message)
        if self.speech is not None:
            self.speech.stop()
        self.exchange.fail(message)
        return TurnUpdate(self.session.messages, "failed", notice=message)

    # -- the user's input ----------------------------------------------------------------------------------

    def run_text(self) -> Iterator[TurnUpdate]:
        yield from self._ended(self._reply())

    def run_voice(self, samples: np.ndarray | None = None, transcript: Future | None = None) -> Iterator[TurnUpdate]:
        """A recording: the exchange's file, or `samples` (16 kHz float32) already decoded (the microphone);
        `transcript`: their transcription, already started (at the pause that ended a spoken turn)."""
        yield from self._ended(self._transcribe_then_reply(samples, transcript))

    def _ended(self, updates: Iterator[TurnUpdate]) -> Iterator[TurnUpdate]:
        """Counted as running until it ends, however it ends (done, failed, stopped, its client gone); then
        after_turn hands freed memory back (the decode buffers of a recording that failed included)."""
        try:
            yield from self.session.tracked(updates)
        finally:
            self.assistant.after_turn()

    def _transcribe_then_reply(self, samples: np.ndarray | None, started: Future | None) -> Iterator[TurnUpdate]:
        yield self.update("transcribing")
        audio, notice = self._read_recording(samples)
        if audio is None:
            yield self.fail(notice)
            return
        try:
            transcript = self._transcript(audio, started)
        except Exception as e:
            log.exception("speech-to-text failed")
            yield self.fail("Speech recognition failed. Please try again.")  # what broke is in the log
            return
        if notice:
            yield self.update("transcribing", notice=notice)
        self.timings.update(stt_s=time.perf_counter() - self.started, audio_s=transcript.audio_s)
        log.info("transcribed %.1f s of audio in %.2f s (%s)", transcript.audio_s, self.timings["stt_s"],
                 transcript.language)
        if not transcript.text:
            yield self.fail("No speech was heard in that recording. Please try again.")
            return
        self.exchange.user.text = transcript.text
        yield from self._reply()

    def _transcript(self, audio: np.ndarray, started: Future | None) -> Transcript:
        """The transcript: the one started at the pause when it was made with this turn's language setting."""
        if started is not None and not started.cancelled():
            transcript = started.result()
            if self.options.language in (None, "auto", transcript.language):
                return transcript
        return self.assistant.engines.transcriber.transcribe(audio, self.options.language)

    def _read_recording(self, audio: np.ndarray | None):
        """(16 kHz samples, a notice) for the exchange's recording, or (None, why it cannot be used)."""
        limits = self.assistant.limits
        if audio is None:
            try:
                audio = decode_file(self.exchange.user.audio, max_seconds=limits.max_audio_s)  # stops just past it
            except AudioDecodeError as e:
                return None, f"That audio could not be read: {e}"
        if len(audio) < limits.min_audio_s * SAMPLE_RATE:  # Whisper makes up words for a click or a breath
            return None, (f"That recording is only {len(audio) / SAMPLE_RATE:.1f} s long. Keep recording while "
                          f"you speak (at least {limits.min_audio_s:g} s).")
        if len(audio) > limits.max_audio_s * SAMPLE_RATE:
            return (audio[: int(limits.max_audio_s * SAMPLE_RATE)],
                    f"Only the first {limits.max_audio_s:.0f} s of your recording were used.")
        return audio, ""

    # -- the reply -----------------------------------------------------------------------------------------

    def _reply(self) -> Iterator[TurnUpdate]:
        try:
            yield from self._generate_and_speak()
        except GeneratorExit:  # the web request went away mid-turn (a closed tab): leave nothing running
            self.cancel.set()
            if self.speech is not None:
                self.speech.stop()
            log.info("turn abandoned by its client: generation and speech stopped")
            raise

    def _prompt(self) -> list[Message]:
        """The conversation for the model; answers follow the language of the user's latest message
        (llm.follow_language, resolved at start-up: "hint" or "strict")."""
        generator = self.assistant.engines.generator
        budget = generator.context_window - generator.settings.max_new_tokens
        text = self.exchange.user.text
        follow = self.assistant.engines.follow_language
        language = self.reply_in = self.session.conversation.language_line(text) if follow != "off" else None
        return self.session.conversation.prompt(text, generator.count_tokens, budget, reply_in=language,
                                                same_language_only=follow == "strict")

    def _generate_and_speak(self) -> Iterator[TurnUpdate]:
        try:
            prompt = self._prompt()
        except PromptTooLongError as e:
            yield self.fail(str(e))
            return
        self.exchange.reply = Reply()
        yield self.update("thinking")
        if self.options.speak:
            self.speech = SpeechStage(self.assistant.engines.speaker, self.options.voice, self.cancel,
                                      self.assistant.speech)
        spoken: list[SpeechChunk] = []
        try:
            deltas = yield from self._answer_source(prompt, spoken)
            yield from self._stream(deltas, spoken)
        except Exception as e:
            yield self.fail(_generation_failure(e))
            return
        reply = self.exchange.reply.text = self.exchange.reply.text.strip()
        if self.cancel.is_set():
            yield self._stopped(committed=False)
            return
        if not reply:
            yield self.fail("The model gave an empty answer. Please rephrase and try again.")
            return
        if self.gate is not None and not self.gate.wait(self.cancel):  # remembered only once confirmed
            yield self._stopped(committed=False)
            return
        self.exchange.status = "answered"
        self.session.conversation.commit(self.exchange.user.text, reply, self.reply_in)
        if self.speech is None:
            yield self.update("done")
            return
        yield from self._speak_the_rest(spoken)

    def _answer_source(self, prompt: list[Message], spoken: list[SpeechChunk]):
        """Where the answer's text comes from: the model, the model told a tool's facts, or the tool's own words
        (its summary, or why it failed). A tool question's lead-in is shown and spoken while the tool runs."""
        engines = self.assistant.engines
        generator, toolbox = engines.generator, engines.toolbox
        if getattr(generator, "calls_tools", False):  # the model calls the tools itself
            return generator.stream(prompt, self.cancel, on_tool=self._note_tool)
        call = toolbox.plan(self.exchange.user.text) if toolbox is not None else None
        if call is None:
            return generator.stream(prompt, self.cancel)
        if call.lead_in:
            self.exchange.reply.text = call.lead_in + " "
            if self.speech is not None:
                self.speech.say(call.lead_in)
            yield self.update("thinking")
        outcome = yield from self._while_speaking(lambda: toolbox.attempt(call, self._note_tool), spoken)
        if isinstance(outcome, ToolError):
            return iter([str(outcome)])  # never invented data: the failure, in plain words, is the answer
        if engines.tool_answers == "summary":
            return iter([outcome.summary])
        return generator.stream(grounded_messages(prompt, outcome), self.cancel)

    def _while_speaking(self, work, spoken: list[SpeechChunk]):
        """Run `work()` in a thread; meanwhile the speech already made (a lead-in) goes out. Returns its result."""
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="tool") as pool:
            future = pool.submit(work)
            while True:
                try:
                    return future.result(timeout=_POLL_S)
                except FutureTimeout:
                    new_audio = self.speech.ready() if self.speech is not None else []
                    if new_audio:
                        spoken += new_audio
                        yield self.update("thinking", speech=tuple(new_audio))

    def _note_tool(self, call, outcome) -> None:
        if isinstance(outcome, ToolResult):
            log.info("tool %s: %s", call.tool, outcome.source)
            self.exchange.reply.tool = ToolNote(outcome.source, outcome.facts)

    def _stream(self, deltas: Iterator[str], spoken: list[SpeechChunk]) -> Iterator[TurnUpdate]:
        """The reply's text as it is generated, and the speech made of it so far."""
        generate_started = time.perf_counter()
        pieces = 0
        lead_s, wait_s = self.assistant.speech.lead_s, self.assistant.speech.lead_wait_s
        for delta in deltas:
            if pieces == 0:
                self.timings["first_token_s"] = time.perf_counter() - self.started
            pieces += 1
            self.exchange.reply.text += delta
            new_audio: list[SpeechChunk] = []
            if self.speech is not None:
                self.speech.feed(delta)
                if lead_s > 0:
                    self.speech.wait_for_lead(lead_s, wait_s)
                new_audio = self.speech.ready()
                spoken += new_audio
            yield self.update("thinking", speech=tuple(new_audio))
        self.timings.update(generate_s=time.perf_counter() - generate_started, pieces=pieces)


    def _speak_the_rest(self, spoken: list[SpeechChunk]) -> Iterator[TurnUpdate]:
        speech = self.speech
        speech.finish()
        yield self.update("speaking")
        for chunk in speech.drain():
            spoken.append(chunk)
            yield self.update("speaking", speech=(chunk,))
        if self.cancel.is_set():
            yield self._stopped(committed=True)
            return
        if speech.first_audio_at is not None:
            self.timings["first_audio_s"] = speech.first_audio_at - self.started
        if speech.error is not None or not spoken:
            notice = "The answer could not be spoken; it is in the chat." if speech.error is not None else ""
            yield self.update("done", notice=notice)
            return
        yield self._save(spoken)

    def _save(self, spoken: list[SpeechChunk]) -> TurnUpdate:
        """One WAV of the whole reply, for replay from the chat (pieces from different engines are resampled)."""
        try:
            path = self.assistant.store.save_wav(*join_chunks(spoken))
        except OSError as e:
            log.exception("could not save the reply audio")
            return self.update("done", notice=f"The answer's audio could not be saved ({e.strerror or e}); it is "
                                              "in the chat.")
        self.timings.update(total_s=time.perf_counter() - self.started,
                            speech_audio_s=sum(len(c.samples) / c.sample_rate for c in spoken),
                            tts_s=self.speech.synth_s)
        log.info("turn done: %s", _format(self.timings))
        self.exchange.reply.audio = path
        return self.update("done", audio=path, notice=_fallback_notice(spoken))

    def _stopped(self, committed: bool) -> TurnUpdate:
        """The user stopped the turn (or started another): keep what was said, mark it, free everything."""
        if self.speech is not None:
            self.speech.stop()
        reply = self.exchange.reply.text
        if reply and not committed and (self.gate is None or self.gate.opened):
            self.session.conversation.commit(self.exchange.user.text, reply, self.reply_in)
        self.exchange.reply.audio = None
        self.exchange.status = "stopped"
        log.info("turn stopped after %s", _format(self.timings))
        return self.update("stopped")


def _fallback_notice(spoken: list[SpeechChunk]) -> str:
    """In plain words, when a fallback voice spoke instead of the configured one (the details go to the log)."""
    fallback = next((chunk for chunk in spoken if chunk.note), None)
    if fallback is None:
        return ""
    log.info("speech: %s", fallback.note)
    return f"The online voice can't be reached, so answers are spoken by {fallback.spoken_by}, the offline voice."


def _generation_failure(error: Exception) -> str:
    if isinstance(error, ReplyError):  # written for the user: a server down, too slow, died mid-reply
        log.warning("generation failed: %s", error)
        return f"{error} Please try again."
    log.error("generation failed", exc_info=error)
    return "The model failed to answer. Please try again."  # the exception is in the log, not the page


def _format(timings: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.2f}" for k, v in timings.items())
