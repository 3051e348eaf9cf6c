"""The assistant: checks what a session sends (limits, bad input, retry) and starts the turn that answers it."""

from __future__ import annotations

import logging
import re
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Iterator

import numpy as np

from audio.decode import SAMPLE_RATE
from audio.store import AudioStore
from chatbot.config import Config
from chatbot.conversation import Conversation
from chatbot.engines import Engines
from chatbot.early_turn import EarlyTurn
from chatbot.live import LiveLink, Utterance
from chatbot.malloc import release_free_memory
from chatbot.session import ChatSession, UserInput
from chatbot.turn import Turn, TurnGate, TurnOptions, TurnUpdate

log = logging.getLogger(__name__)

RATE_WINDOW_S = 60.0  # limits.turns_per_minute counts the turns of this many seconds
RETRY_WAIT_S = 5.0  # a retry waits this long for the reply it replaces to end
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline


def _nothing() -> None:
    """after_turn when server.malloc_trim is off."""


class Assistant:
    """Shared by every session: the engines, the audio store and the settings a turn reads."""

    def __init__(self, cfg: Config, engines: Engines, store: AudioStore):
        self.engines = engines
        self.store = store
        self.system_prompt = cfg.llm.system_prompt
        self.limits = cfg.limits
        self.speech = cfg.tts  # the speech stage's settings (piece lengths, the spoken-length cap)
        self.default_rate_percent = cfg.tts.rate_percent
        self.default_language = cfg.stt.language
        self.speculate = cfg.talk.speculate  # talk mode starts answering at each pause
        # Runs when each turn ends, however it ends: freed memory goes back to the system.
        self.after_turn = release_free_memory if cfg.server.malloc_trim else _nothing
        # Transcriptions started at a pause in talk mode, one at a time (the transcriber decodes one at a time).
        self._speculation = ThreadPoolExecutor(max_workers=1, thread_name_prefix="speculative-stt")

    def new_session(self) -> ChatSession:
        return ChatSession(Conversation(self.system_prompt))

    def live_link(self, session: ChatSession) -> LiveLink:
        """A browser tab's live voice link: its microphone stream and the speech it plays."""
        listening = self.engines.listening
        if listening is None:
            return LiveLink(session, self.limits, None)
        return LiveLink(session, self.limits,
                        lambda ends_turns: listening.listener(self._transcribe_soon, ends_turns=ends_turns),
                        self._start_spoken_turn, speculate=self.speculate)

    def _start_spoken_turn(self, link: LiveLink, utterance: Utterance, tentative: bool = False) -> EarlyTurn:
        """The turn answering what the microphone heard, started the moment it was heard (its link's settings);
        `tentative`: at a pause, before the end of the turn is decided (EarlyTurn.commit / discard)."""
        gate = TurnGate() if tentative else None
        updates = self.spoken_turn(link.session, utterance.samples, utterance.heard_at,
                                   link.turn_options or TurnOptions(), utterance.transcript, gate)
        return EarlyTurn(updates, link, publish=link.autoplay, gate=gate, audio=utterance.samples)

    def _transcribe_soon(self, samples: np.ndarray) -> Future:
        """Transcribe what was said up to a pause, in the background: ready, or nearly, when the turn ends."""
        # voiced: the listener heard speech in it, so no silence needs cutting (and a short window will do)
        return self._speculation.submit(self.engines.transcriber.transcribe, samples, voiced=True)

    def status_line(self) -> str:
        return self.engines.status_line()

    def text_turn(self, session: ChatSession, text: str, options: TurnOptions = TurnOptions()) -> Iterator[TurnUpdate]:
        text = _CONTROL_CHARS.sub("", text or "").strip()
        refusal = "" if text else "Type a message first."
        if text and len(text) > self.limits.max_text_chars:
            refusal = (f"Your message is {len(text):,} characters long; the limit is "
                       f"{self.limits.max_text_chars:,}. Please shorten it.")
        refusal = refusal or self._rate_limited(session)
        if refusal:
            yield _refused(session, refusal)
            return
        yield from Turn(self, session, options, UserInput(text=text)).run_text()

    def voice_turn(self, session: ChatSession, audio_path: str | Path | None,
                   options: TurnOptions = TurnOptions()) -> Iterator[TurnUpdate]:
        refusal = self._rate_limited(session) if audio_path else "Record or upload some audio first."
        if refusal:
            yield _refused(session, refusal)
            return
        yield from Turn(self, session, options, UserInput(audio=Path(audio_path), spoken=True)).run_voice()

    def spoken_turn(self, session: ChatSession, samples: np.ndarray, heard_at: float,
                    options: TurnOptions = TurnOptions(), transcript: Future | None = None,
                    gate: TurnGate | None = None) -> Iterator[TurnUpdate]:
        """What the microphone streamed in (16 kHz float32), complete at `heard_at` (time.perf_counter()): kept
        as a file for replay and Retry, transcribed from memory (or by `transcript`, started at the pause).
        `gate`: a turn started at a pause, confirmed (or not) when the end of the turn is decided; it counts
        towards the rate limit once confirmed, and its file goes if it is not."""
        refusal = self._rate_limited(session) if gate is None else ""
        if refusal:
            yield _refused(session, refusal)
            return
        if gate is not None:
            gate.when_open(lambda: self._rate_limited(session))
        try:
            path = self.store.save_wav(SAMPLE_RATE, samples, kind="heard")
        except OSError as e:  # the turn goes on without a file: no replay, and Retry sends the transcript
            log.warning("could not keep the recording (%s)", e)
            path = None
        if gate is not None and path is not None:
            gate.when_closed(lambda: path.unlink(missing_ok=True))
        user = UserInput(audio=path, spoken=True)
        yield from Turn(self, session, options, user, started=heard_at, gate=gate).run_voice(samples, transcript)

    def retry_turn(self, session: ChatSession, options: TurnOptions = TurnOptions()) -> Iterator[TurnUpdate]:
        """Send the last message again: after a failed turn, or for a new answer to one that was answered.

        A recording is transcribed again while its file is still there, else its transcript is sent as text.
        """
        if not session.exchanges:
            yield _refused(session, "There is no message to send again.")
            return
        last = session.exchanges[-1]
        audio = last.user.audio if last.user.audio is not None and last.user.audio.is_file() else None
        refusal = "" if last.user.text or audio else "That recording is no longer available. Please record it again."
        refusal = refusal or self._rate_limited(session)
        if refusal:
            yield _refused(session, refusal)
            return
        session.stop()  # a reply still running for it ends at its next token
        if not session.wait_until_idle(RETRY_WAIT_S):
            yield _refused(session, "The previous answer is still ending. Please try again in a moment.")
            return
        if last.answered:
            session.conversation.drop_last()  # the model forgets the answer being replaced
        session.exchanges.remove(last)
        log.info("retrying the last message (%s)", "recording" if audio else "text")
        if audio is not None:
            yield from Turn(self, session, options, UserInput(audio=audio, spoken=True)).run_voice()
        else:
            yield from Turn(self, session, options, UserInput(text=last.user.text)).run_text()

    def _rate_limited(self, session: ChatSession) -> str:
        """Why this session may not start a turn now ("" if it may); counts the turn if it may."""
        now = time.monotonic()
        while session.turn_times and now - session.turn_times[0] > RATE_WINDOW_S:
            session.turn_times.popleft()
        if len(session.turn_times) >= self.limits.turns_per_minute:
            wait = RATE_WINDOW_S - (now - session.turn_times[0])
            return f"You are sending messages very fast. Please wait {wait:.0f} s."
        session.turn_times.append(now)
        return ""


def _refused(session: ChatSession, refusal: str) -> TurnUpdate:
    """A turn that does not start: nothing is added to the chat, the user is told why."""
    log.info("turn refused: %s", refusal)
    return TurnUpdate(session.messages, "failed", notice=refusal)
