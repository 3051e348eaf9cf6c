"""One turn of the conversation: (transcribe) -> stream the reply -> speak it.

The turn yields `TurnUpdate`s that carry the chat panel's messages in Gradio's plain-dict messages format, so
the UI only forwards them; nothing here imports gradio. Each browser session owns one `ChatSession`.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator


from audio.decode import SAMPLE_RATE, AudioDecodeError, decode_file
from audio.store import AudioStore
from audio.sentences import SentenceSplitter
from audio.tts import SpeechChunk, VoiceOptions, join_chunks
from chatbot.config import Config, LimitsConfig
from chatbot.conversation import Conversation, PromptTooLongError
from chatbot.engines import Engines
from chatbot.generator import ReplyError
from chatbot.malloc import release_free_memory
from chatbot.speech_worker import SpeechWorker

log = logging.getLogger(__name__)

SPEECH_CAP_NOTICE = "The rest of the answer is in the chat."
STOPPED_MARK = " ⏹️"
NOT_ANSWERED = "Not answered"  # the title of the message that ends a failed turn; the user's message stays
SPOKEN = "🎙️ "  # marks a restored voice message: its transcript, its audio gone
_RETRY_WAIT_S = 5.0  # a retry waits this long for the reply it replaces to end
_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")  # all but tab and newline


@dataclass
class ChatSession:
    """Everything one browser session owns. Never shared: two sessions never see each other's messages."""

    conversation: Conversation
    messages: list[dict] = field(default_factory=list)  # the chat panel: {"role", "content"} dicts
    cancel: threading.Event = field(default_factory=threading.Event)  # the running turn's
    notices_shown: set[str] = field(default_factory=set)  # what the user was already told
    turn_times: deque = field(default_factory=deque)  # time.monotonic() of recent turns, for the rate limit
    running: int = 0  # turns of this session not yet ended (a stopped one ends at its next token)
    _ended: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def tracked(self, updates: Iterator[TurnUpdate]) -> Iterator[TurnUpdate]:
        """A turn's updates, counted in `running` until the turn ends, however it ends."""
        with self._ended:
            self.running += 1
        try:
            yield from updates
        finally:
            with self._ended:
                self.running -= 1
                self._ended.notify_all()

    def wait_until_idle(self, timeout_s: float) -> bool:
        """Wait for this session's running turns to end (after `stop`); False if one is still running."""
        with self._ended:
            return self._ended.wait_for(lambda: self.running == 0, timeout_s)

    def begin_turn(self) -> threading.Event:
        """Stop the turn still running (a new message interrupts the old reply) and start a new one."""
        self.cancel.set()
        self.cancel = threading.Event()
        self.forget_expired_audio()
        return self.cancel

    def forget_expired_audio(self) -> None:
        """Drop audio that has expired (files.max_age_s) from the chat panel, keeping the text: a panel that
        names a deleted file would make every later update of this chat fail to be served."""
        for i, message in enumerate(self.messages):
            content = message["content"]
            if isinstance(content, list):
                kept = [item for item in content if not (isinstance(item, dict) and "path" in item
                                                          and not Path(item["path"]).exists())]
                if len(kept) != len(content):
                    self.messages[i] = {**message, "content": kept[0] if len(kept) == 1 else (kept or "")}

    def stop(self) -> None:
        self.cancel.set()

    def clear(self) -> None:
        self.stop()
        self.conversation.clear()
        self.messages.clear()


@dataclass(frozen=True)
class TurnOptions:
    voice: VoiceOptions = VoiceOptions()
    language: str | None = None  # speech recognition language; None = configured default
    speak: bool = True  # False: text only


@dataclass(frozen=True)
class TurnUpdate:
    messages: list[dict]  # a snapshot of the chat panel
    stage: str  # "transcribing" | "thinking" | "speaking" | "done" | "failed" | "stopped"
    audio: Path | None = None  # the whole reply's audio file, once spoken
    speech: tuple[SpeechChunk, ...] = ()  # audio made since the previous update, to play at once
    notice: str = ""  # something the user should be told (a fallback, an error), in plain words
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, for logs and benchmarks


class Assistant:
    def __init__(self, engines: Engines, store: AudioStore, *, system_prompt: str, max_speech_chars: int,
                 default_rate_percent: int, first_piece_chars: int, first_piece_words: int, piece_chars: int,
                 default_language: str, limits: LimitsConfig, after_turn: Callable[[], object] = lambda: None):
        self.engines = engines
        self.after_turn = after_turn  # runs when each turn that reached the model ends, however it ends
        self.store = store
        self.system_prompt = system_prompt
        self.max_speech_chars = max_speech_chars
        self.default_rate_percent = default_rate_percent
        self.default_language = default_language
        self.limits = limits
        self.first_piece_chars = first_piece_chars  # speech starts once this much of a first clause exists
        self.first_piece_words = first_piece_words  # ...or this many words of a first sentence
        self.piece_chars = piece_chars  # a sentence longer than this is spoken in parts

    @classmethod
    def from_config(cls, cfg: Config, engines: Engines, store: AudioStore) -> "Assistant":
        return cls(engines, store, system_prompt=cfg.llm.system_prompt, max_speech_chars=cfg.tts.max_chars,
                   default_rate_percent=cfg.tts.rate_percent, first_piece_chars=cfg.tts.first_piece_chars,
                   first_piece_words=cfg.tts.first_piece_words, piece_chars=cfg.tts.piece_chars,
                   default_language=cfg.stt.language, limits=cfg.limits,
                   after_turn=release_free_memory if cfg.server.malloc_trim else lambda: None)

    def new_session(self) -> ChatSession:
        return ChatSession(Conversation(self.system_prompt))

    def status_line(self) -> str:
        return self.engines.status_line()

    # -- turns ---------------------------------------------------------------------------------------------

    def _refusal(self, session: ChatSession) -> str:
        """Why this session may not start a turn now ("" if it may)."""
        now = time.monotonic()
        while session.turn_times and now - session.turn_times[0] > 60:
            session.turn_times.popleft()
        if len(session.turn_times) >= self.limits.turns_per_minute:
            wait = 60 - (now - session.turn_times[0])
            return f"You are sending messages very fast. Please wait {wait:.0f} s."
        session.turn_times.append(now)
        return ""

    @staticmethod
    def _refused(session: ChatSession, refusal: str) -> TurnUpdate:
        """A turn that does not start: nothing is added to the chat, the user is told why."""
        log.info("turn refused: %s", refusal)
        return TurnUpdate(list(session.messages), "failed", notice=refusal)

    def text_turn(self, session: ChatSession, text: str, options: TurnOptions = TurnOptions()) -> Iterator[TurnUpdate]:
        text = _CONTROL_CHARS.sub("", text or "").strip()
        refusal = "" if text else "Type a message first."
        if text and len(text) > self.limits.max_text_chars:
            refusal = (f"Your message is {len(text):,} characters long; the limit is "
                       f"{self.limits.max_text_chars:,}. Please shorten it.")
        refusal = refusal or self._refusal(session)
        if refusal:
            yield self._refused(session, refusal)
            return
        yield from self._text(session, text, options)

    def voice_turn(self, session: ChatSession, audio_path: str | Path | None,
                   options: TurnOptions = TurnOptions()) -> Iterator[TurnUpdate]:
        refusal = self._refusal(session) if audio_path else "Record or upload some audio first."
        if refusal:
            yield self._refused(session, refusal)
            return
        yield from self._voice(session, audio_path, options)

    def retry_turn(self, session: ChatSession, options: TurnOptions = TurnOptions()) -> Iterator[TurnUpdate]:
        """Send the last message again: after a failed turn, or for a new answer to one that was answered.

        A recording is transcribed again while its file is still there, else its transcript is sent as text.
        """
        index = next((i for i in range(len(session.messages) - 1, -1, -1)
                      if session.messages[i]["role"] == "user"), None)
        if index is None:
            yield self._refused(session, "There is no message to send again.")
            return
        text, path = text_and_path(session.messages[index]["content"])
        text = text.removeprefix(SPOKEN).strip()
        path = path if path and Path(path).is_file() else None
        refusal = "" if text or path else "That recording is no longer available. Please record it again."
        refusal = refusal or self._refusal(session)
        if refusal:
            yield self._refused(session, refusal)
            return
        session.stop()  # a reply still running for it ends at its next token
        if not session.wait_until_idle(_RETRY_WAIT_S):
            yield self._refused(session, "The previous answer is still ending. Please try again in a moment.")
            return
        if _answered(session.messages[index + 1:]):
            session.conversation.drop_last()  # the model forgets the answer being replaced
        del session.messages[index:]
        log.info("retrying the last message (%s)", "recording" if path else "text")
        yield from (self._voice(session, path, options) if path else self._text(session, text, options))

    def _text(self, session: ChatSession, text: str, options: TurnOptions) -> Iterator[TurnUpdate]:
        cancel = session.begin_turn()
        session.messages.append({"role": "user", "content": text})
        yield from session.tracked(self._reply(session, text, options, cancel, timings={},
                                               started=time.perf_counter()))

    def _voice(self, session: ChatSession, audio_path: str | Path, options: TurnOptions) -> Iterator[TurnUpdate]:
        yield from session.tracked(self._transcribe_and_reply(session, audio_path, options))

    def _transcribe_and_reply(self, session: ChatSession, audio_path: str | Path,
                              options: TurnOptions) -> Iterator[TurnUpdate]:
        started = time.perf_counter()  # the recording is complete: voice-to-voice latency counts from here
        cancel = session.begin_turn()
        audio_path = str(audio_path)
        session.messages.append({"role": "user", "content": [{"path": audio_path}]})
        user_index = len(session.messages) - 1
        yield TurnUpdate(list(session.messages), "transcribing")
        notice = ""
        try:
            audio = decode_file(audio_path, max_seconds=self.limits.max_audio_s)  # stops just past the limit
        except AudioDecodeError as e:
            yield self._failed(session, f"That audio could not be read: {e}")
            return
        if len(audio) < self.limits.min_audio_s * SAMPLE_RATE:  # Whisper makes up words for a click or a breath
            yield self._failed(session, f"That recording is only {len(audio) / SAMPLE_RATE:.1f} s long. Keep "
                                        f"recording while you speak (at least {self.limits.min_audio_s:g} s).")
            return
        if len(audio) > self.limits.max_audio_s * SAMPLE_RATE:
            audio = audio[: int(self.limits.max_audio_s * SAMPLE_RATE)]
            notice = f"Only the first {self.limits.max_audio_s:.0f} s of your recording were used."
        try:
            transcript = self.engines.transcriber.transcribe(audio, options.language)
        except Exception as e:
            log.exception("speech-to-text failed")
            yield self._failed(session, f"Speech recognition failed ({type(e).__name__}). Please try again.")
            return
        if notice:
            yield TurnUpdate(list(session.messages), "transcribing", notice=notice)
        timings = {"stt_s": time.perf_counter() - started, "audio_s": transcript.audio_s}
        log.info("transcribed %.1f s of audio in %.2f s (%s)", transcript.audio_s, timings["stt_s"],
                 transcript.language)
        if not transcript.text:
            yield self._failed(session, "No speech was heard in that recording. Please try again.")
            return
        session.messages[user_index] = {"role": "user", "content": [transcript.text, {"path": audio_path}]}
        yield from self._reply(session, transcript.text, options, cancel, timings, started)

    # -- stages --------------------------------------------------------------------------------------------

    def _failed(self, session: ChatSession, message: str) -> TurnUpdate:
        """End the turn: the user's message stays in the panel, followed by what went wrong."""
        log.warning("turn failed: %s", message)
        session.messages.append({"role": "assistant", "content": f"⚠️ {message}",
                                 "metadata": {"title": NOT_ANSWERED}})
        return TurnUpdate(list(session.messages), "failed", notice=message)

    def _reply(self, session: ChatSession, user_text: str, options: TurnOptions, cancel: threading.Event,
               timings: dict[str, float], started: float) -> Iterator[TurnUpdate]:
        """Stream the reply into the chat and, sentence by sentence, into speech while it is generated.

        `started` is when the user's input was complete: time-to-first-audio counts from there.
        """
        try:
            yield from self._generate_and_speak(session, user_text, options, cancel, timings, started)
        finally:
            self.after_turn()

    def _generate_and_speak(self, session: ChatSession, user_text: str, options: TurnOptions,
                            cancel: threading.Event, timings: dict[str, float], started: float) -> Iterator[TurnUpdate]:
        generator = self.engines.generator
        budget = generator.context_window - generator.settings.max_new_tokens
        try:
            prompt = session.conversation.prompt(user_text, generator.count_tokens, budget)
        except PromptTooLongError as e:
            yield self._failed(session, str(e))
            return
        session.messages.append({"role": "assistant", "content": ""})
        reply_index = len(session.messages) - 1
        yield TurnUpdate(list(session.messages), "thinking", timings=dict(timings))

        speech = SpeechWorker(self.engines.speaker, options.voice, cancel, max_chars=self.max_speech_chars,
                              cap_notice=SPEECH_CAP_NOTICE) if options.speak else None
        try:
            yield from self._stream_and_speak(session, user_text, prompt, cancel, timings, started, reply_index,
                                              speech)
        except GeneratorExit:  # the web request went away mid-turn (a closed tab): leave nothing running
            cancel.set()
            if speech:
                speech.stop()
            log.info("turn abandoned by its client: generation and speech stopped")
            raise

    def _stream_and_speak(self, session: ChatSession, user_text: str, prompt: list[dict], cancel: threading.Event,
                          timings: dict[str, float], started: float, reply_index: int,
                          speech: SpeechWorker | None) -> Iterator[TurnUpdate]:
        splitter = SentenceSplitter(max_chars=self.piece_chars, first_min_chars=self.first_piece_chars,
                                    first_max_words=self.first_piece_words)
        generator = self.engines.generator
        spoken: list[SpeechChunk] = []
        generate_started = time.perf_counter()
        reply = ""
        pieces = 0
        try:
            for delta in generator.stream(prompt, cancel):
                if pieces == 0:
                    timings["first_token_s"] = time.perf_counter() - started
                pieces += 1
                reply += delta
                new_audio: list[SpeechChunk] = []
                if speech:
                    for piece in splitter.feed(delta):
                        speech.submit(piece)
                    new_audio = speech.ready()
                    spoken += new_audio
                session.messages[reply_index] = {"role": "assistant", "content": reply}
                yield TurnUpdate(list(session.messages), "thinking", speech=tuple(new_audio), timings=dict(timings))
        except Exception as e:
            if speech:
                speech.stop()
            del session.messages[reply_index]
            if isinstance(e, ReplyError):  # written for the user: a server down, too slow, died mid-reply
                log.warning("generation failed: %s", e)
                yield self._failed(session, f"{e} Please try again.")
            else:
                log.exception("generation failed")
                yield self._failed(session, f"The model failed to answer ({type(e).__name__}). Please try again.")
            return
        timings["generate_s"] = time.perf_counter() - generate_started
        timings["pieces"] = pieces
        reply = reply.strip()
        if cancel.is_set():
            yield from self._stopped(session, user_text, reply, reply_index, speech, timings)
            return
        if not reply:
            if speech:
                speech.stop()
            del session.messages[reply_index]
            yield self._failed(session, "The model gave an empty answer. Please rephrase and try again.")
            return
        session.messages[reply_index] = {"role": "assistant", "content": reply}
        session.conversation.commit(user_text, reply)
        if speech is None:
            yield TurnUpdate(list(session.messages), "done", timings=dict(timings))
            return

        for piece in splitter.flush():
            speech.submit(piece)
        yield TurnUpdate(list(session.messages), "speaking", timings=dict(timings))
        for chunk in speech.drain():
            spoken.append(chunk)
            yield TurnUpdate(list(session.messages), "speaking", speech=(chunk,), timings=dict(timings))
        if cancel.is_set():
            yield from self._stopped(session, user_text, reply, reply_index, None, timings, committed=True)
            return
        if speech.first_audio_at is not None:
            timings["first_audio_s"] = speech.first_audio_at - started
        if speech.error is not None or not spoken:
            notice = (f"The answer could not be spoken ({type(speech.error).__name__}); it is in the chat."
                      if speech.error is not None else "")
            yield TurnUpdate(list(session.messages), "done", notice=notice, timings=dict(timings))
            return
        try:
            path = self._save(spoken)
        except OSError as e:
            log.exception("could not save the reply audio")
            yield TurnUpdate(list(session.messages), "done", timings=dict(timings),
                             notice=f"The answer's audio could not be saved ({e.strerror or e}); it is in the chat.")
            return
        timings["total_s"] = time.perf_counter() - started
        timings["speech_audio_s"] = sum(len(c.samples) / c.sample_rate for c in spoken)
        timings["tts_s"] = speech.synth_s
        log.info("turn done: %s", " ".join(f"{k}={v:.2f}" for k, v in timings.items()))
        session.messages[reply_index] = {"role": "assistant", "content": [reply, {"path": str(path)}]}
        notes = [c.note for c in spoken if c.note]
        yield TurnUpdate(list(session.messages), "done", audio=path, notice=notes[0] if notes else "",
                         timings=dict(timings))

    def _stopped(self, session: ChatSession, user_text: str, reply: str, reply_index: int,
                 speech: SpeechWorker | None, timings: dict[str, float], committed: bool = False):
        """The user stopped the turn (or started another): keep what was said, mark it, free everything."""
        if speech:
            speech.stop()
        if reply and not committed:
            session.conversation.commit(user_text, reply)
        if reply_index < len(session.messages):
            session.messages[reply_index] = {"role": "assistant", "content": (reply or "") + STOPPED_MARK}
        log.info("turn stopped after %s", " ".join(f"{k}={v:.2f}" for k, v in timings.items()))
        yield TurnUpdate(list(session.messages), "stopped", timings=dict(timings))

    def _save(self, chunks: list[SpeechChunk]) -> Path:
        """One WAV of the whole reply, for replay from the chat (pieces from different engines are resampled)."""
        return self.store.save_wav(*join_chunks(chunks))


def text_and_path(content) -> tuple[str, str | None]:
    """A panel message's text (a voice message's transcript) and the path of the audio it carries, if any."""
    items = content if isinstance(content, (list, tuple)) else [content]
    texts = [item for item in items if isinstance(item, str)]
    paths = [item["path"] for item in items if isinstance(item, dict) and "path" in item]
    return " ".join(texts), (paths[0] if paths else None)


def _answered(replies: list[dict]) -> bool:
    """Whether these panel messages (those after a user message) hold an answer the conversation committed:
    a finished or stopped reply with text, not a failure."""
    for message in replies:
        if message["role"] == "assistant" and not (message.get("metadata") or {}).get("title"):
            text, _path = text_and_path(message["content"])
            return bool(text.removesuffix(STOPPED_MARK.strip()).strip())
    return False
