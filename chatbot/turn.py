"""One turn of the conversation: (transcribe) -> stream the reply -> speak it.

The turn yields `TurnUpdate`s that carry the chat panel's messages in Gradio's plain-dict messages format, so
the UI only forwards them; nothing here imports gradio. Each browser session owns one `ChatSession`.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from audio.decode import AudioDecodeError, decode_file
from audio.speech_text import cap_for_speech, clean_for_speech, speakable
from audio.store import AudioStore
from audio.tts import VoiceOptions
from chatbot.conversation import Conversation, PromptTooLongError
from chatbot.engines import Engines

log = logging.getLogger(__name__)

SPEECH_CAP_NOTICE = "The rest of the answer is in the chat."


@dataclass
class ChatSession:
    """Everything one browser session owns. Never shared: two sessions never see each other's messages."""

    conversation: Conversation
    messages: list[dict] = field(default_factory=list)  # the chat panel: {"role", "content"} dicts
    cancel: threading.Event = field(default_factory=threading.Event)

    def clear(self) -> None:
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
    stage: str  # "transcribing" | "thinking" | "speaking" | "done" | "failed"
    audio: Path | None = None  # the reply's audio file, once spoken
    notice: str = ""  # something the user should be told (a fallback, an error), in plain words
    timings: dict[str, float] = field(default_factory=dict)  # seconds per stage, for logs and benchmarks


class Assistant:
    def __init__(self, engines: Engines, store: AudioStore, *, system_prompt: str, max_speech_chars: int,
                 default_rate_percent: int = 0):
        self.engines = engines
        self.store = store
        self.system_prompt = system_prompt
        self.max_speech_chars = max_speech_chars
        self.default_rate_percent = default_rate_percent

    def new_session(self) -> ChatSession:
        return ChatSession(Conversation(self.system_prompt))

    def status_line(self) -> str:
        return self.engines.status_line()

    # -- turns ---------------------------------------------------------------------------------------------

    def text_turn(self, session: ChatSession, text: str, options: TurnOptions = TurnOptions()) -> Iterator[TurnUpdate]:
        text = (text or "").strip()
        if not text:
            yield TurnUpdate(list(session.messages), "failed", notice="Type a message first.")
            return
        session.messages.append({"role": "user", "content": text})
        yield from self._reply(session, text, options, timings={})

    def voice_turn(self, session: ChatSession, audio_path: str | Path | None,
                   options: TurnOptions = TurnOptions()) -> Iterator[TurnUpdate]:
        if not audio_path:
            yield TurnUpdate(list(session.messages), "failed", notice="Record or upload some audio first.")
            return
        audio_path = str(audio_path)
        session.messages.append({"role": "user", "content": [{"path": audio_path}]})
        user_index = len(session.messages) - 1
        yield TurnUpdate(list(session.messages), "transcribing")
        started = time.perf_counter()
        try:
            audio = decode_file(audio_path)
            transcript = self.engines.transcriber.transcribe(audio, options.language)
        except AudioDecodeError as e:
            yield self._failed(session, f"That audio could not be read: {e}")
            return
        except Exception as e:
            log.exception("speech-to-text failed")
            yield self._failed(session, f"Speech recognition failed ({type(e).__name__}). Please try again.")
            return
        timings = {"stt_s": time.perf_counter() - started, "audio_s": transcript.audio_s}
        log.info("transcribed %.1f s of audio in %.2f s (%s)", transcript.audio_s, timings["stt_s"],
                 transcript.language)
        if not transcript.text:
            yield self._failed(session, "No speech was heard in that recording. Please try again.")
            return
        session.messages[user_index] = {"role": "user", "content": [transcript.text, {"path": audio_path}]}
        yield from self._reply(session, transcript.text, options, timings)

    # -- stages --------------------------------------------------------------------------------------------

    def _failed(self, session: ChatSession, message: str) -> TurnUpdate:
        """End the turn: the user's message stays in the panel, followed by what went wrong."""
        log.warning("turn failed: %s", message)
        session.messages.append({"role": "assistant", "content": f"⚠️ {message}",
                                 "metadata": {"title": "Not answered"}})
        return TurnUpdate(list(session.messages), "failed", notice=message)

    def _reply(self, session: ChatSession, user_text: str, options: TurnOptions,
               timings: dict[str, float]) -> Iterator[TurnUpdate]:
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

        session.cancel.clear()
        started = time.perf_counter()
        reply = ""
        pieces = 0
        try:
            for delta in generator.stream(prompt, session.cancel):
                if pieces == 0:
                    timings["first_token_s"] = time.perf_counter() - started
                pieces += 1
                reply += delta
                session.messages[reply_index] = {"role": "assistant", "content": reply}
                yield TurnUpdate(list(session.messages), "thinking", timings=dict(timings))
        except Exception as e:
            log.exception("generation failed")
            del session.messages[reply_index]
            yield self._failed(session, f"The model failed to answer ({type(e).__name__}). Please try again.")
            return
        timings["generate_s"] = time.perf_counter() - started
        timings["pieces"] = pieces
        reply = reply.strip()
        if not reply:
            del session.messages[reply_index]
            yield self._failed(session, "The model gave an empty answer. Please rephrase and try again.")
            return
        session.messages[reply_index] = {"role": "assistant", "content": reply}
        session.conversation.commit(user_text, reply)

        speech = clean_for_speech(reply)
        if not options.speak or not speakable(speech):
            yield TurnUpdate(list(session.messages), "done", timings=dict(timings))
            return
        speech, _capped = cap_for_speech(speech, self.max_speech_chars, SPEECH_CAP_NOTICE)
        yield TurnUpdate(list(session.messages), "speaking", timings=dict(timings))
        started = time.perf_counter()
        try:
            chunks = list(self.engines.speaker.speak(speech, options.voice))
            if not chunks:
                raise RuntimeError("the speech engine produced no audio")
            samples = np.concatenate([c.samples for c in chunks])
            path = self.store.save_wav(chunks[0].sample_rate, samples)
        except Exception as e:
            log.exception("speech failed")
            yield TurnUpdate(list(session.messages), "done", timings=dict(timings),
                             notice=f"The answer could not be spoken ({type(e).__name__}); it is in the chat.")
            return
        timings["tts_s"] = time.perf_counter() - started
        timings["speech_audio_s"] = len(samples) / chunks[0].sample_rate
        log.info("turn done: %s", " ".join(f"{k}={v:.2f}" for k, v in timings.items()))
        session.messages[reply_index] = {"role": "assistant", "content": [reply, {"path": str(path)}]}
        yield TurnUpdate(list(session.messages), "done", audio=path, notice=chunks[0].note, timings=dict(timings))
