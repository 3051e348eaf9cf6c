"""The Gradio Blocks UI: wires the page's events (chatbot/page.py) to the `Assistant`; no model logic lives here.

In the browser the answer's speech reaches the page's live bar piece by piece, as it is made, and plays there;
the whole reply's audio is kept in the chat message for replay.

Named API endpoints (callable with gradio_client), each returning (chat history, the reply's audio file):
  /send_text  (message, voice, rate_percent, language, speak)
  /send_audio (audio, voice, rate_percent, language, speak)
"""

from __future__ import annotations

import logging
import re
import secrets
import time
import weakref
from typing import Iterator

import gradio as gr

from audio.tts.base import VoiceOptions
from chatbot import transcript
from chatbot.assistant import Assistant
from chatbot.live import LiveLink
from chatbot.live_ui import LiveLinks
from chatbot.page import PAUSE_AUDIO_JS, Page, layout, plain_models, speaking_voice
from chatbot.session import TOOL_MARK, ChatSession
from chatbot.turn import TurnOptions, TurnUpdate

log = logging.getLogger(__name__)

OFFLINE_MARK = " (offline)"  # the voice menu's entry for the offline voice, while it speaks instead


_MIN_TOKENS_PER_TURN = 8  # a turn takes at least this many tokens of the context (its template alone ~6)
_MARKUP = re.compile(r"([!-/:-@\[-`{-~])")  # ASCII punctuation: each may be backslash-escaped in Markdown


_CODE = re.compile(r"(```.*?(?:```|\Z)|`[^`\n]*`)", re.DOTALL)  # code blocks and spans, shown as they are
_MARKDOWN_IMAGE = re.compile(r"!\[([^\]\n]*)\]\(")
_HTML_TAG = re.compile(r"<(?=[A-Za-z!/?])")


def _as_typed(text: str) -> str:
    return _MARKUP.sub(r"\\\1", text)


def _nothing_loads(text: str) -> str:
    """An answer's Markdown with nothing in it that the page would fetch or run by itself: images become links
    (a model, or text slipped into its prompt, could track the user by an image's address) and raw HTML shows as
    text. Code blocks and spans are left as they are."""
    parts = _CODE.split(text)
    return "".join(part if i % 2 else _HTML_TAG.sub(r"\\<", _MARKDOWN_IMAGE.sub(r"[\1](", part))
                   for i, part in enumerate(parts))


def _each_text(content, change):
    if isinstance(content, str):
        return change(content)
    if isinstance(content, list):
        return [_each_text(item, change) for item in content]
    return content


def _shown(message: dict) -> dict:
    if message["role"] == "user":
        return {**message, "content": _each_text(message["content"], _as_typed)}
    title = (message.get("metadata") or {}).get("title", "")
    if title.startswith(TOOL_MARK):  # a tool's words (a place name from the geocoder, say) are data: text only
        return {**message, "content": _each_text(message["content"], _as_typed),
                "metadata": {**message["metadata"], "title": TOOL_MARK + _as_typed(title.removeprefix(TOOL_MARK))}}
    return {**message, "content": _each_text(message["content"], _nothing_loads)}


def shown(messages: list[dict]) -> list[dict]:
    """The chat as the browser shows it. What the user typed, and what a tool returned, is shown exactly as it
    is: Gradio renders the Markdown and HTML in a message (sanitized, so never run), so `**x**` would turn bold
    and `<img src=...>` fetch an image. The assistant's answers keep their Markdown (code blocks, lists, links,
    which Gradio opens with rel="noopener noreferrer"), but nothing in them loads by itself."""
    return [_shown(m) for m in messages]


def _new_notice(update: TurnUpdate, session: ChatSession) -> str | None:
    """A notice is said once per session: a fallback in force is not repeated at every turn."""
    if update.notice and update.notice not in session.notices_shown:
        session.notices_shown.add(update.notice)
        return update.notice
    return None


def _toasts(update: TurnUpdate, session: ChatSession) -> None:
    """For API clients, whose notices come as Gradio warnings."""
    notice = _new_notice(update, session)
    if notice:
        gr.Warning(notice)


# While the server works on a turn; "Speaking…" is the live bar's, shown exactly while sound plays in the page.
_PROGRESS = {"transcribing": "🎙️ Transcribing…", "thinking": "💭 Thinking…"}


def _paced(updates: Iterator[TurnUpdate], interval_s: float) -> Iterator[TurnUpdate]:
    """Streamed text at most every `interval_s`: each update carries the whole chat, and a fast model writes
    70 tokens a second. Updates with speech, a notice or a new stage always go out at once."""
    last = 0.0
    for update in updates:
        now = time.monotonic()
        if update.stage == "thinking" and not update.speech and not update.notice and now - last < interval_s:
            continue  # the next update is a newer snapshot of the same chat
        last = now
        yield update


def _to_page(updates: Iterator[TurnUpdate], session: ChatSession, interval_s: float, link: LiveLink | None,
             turn: int | None = None):
    """For the browser: (chat history, the live bar's cursor or skip, progress, notice or skip, session). The
    speech goes to the tab's live link, piece by piece, where the page's player fetches it as soon as the cursor
    says it is ready (no link: nothing plays as it comes). `turn`: the link's number of a turn the server
    started itself (chatbot/early_turn.py), whose speech already goes to the link."""
    publish = turn is None
    if turn is None:
        turn = link.begin_turn() if link is not None else 0
    sent = None
    for update in _paced(updates, interval_s):
        notice = _new_notice(update, session)
        cursor = None
        if link is not None:
            if update.speech and publish:
                link.publish(turn, update.speech)
            cursor = link.cursor(turn, update.stage)
        new = cursor is not None and cursor != sent
        yield (shown(update.messages), cursor if new else gr.skip(), _PROGRESS.get(update.stage, ""),
               f"ⓘ {notice}" if notice else gr.skip(), session)
        sent = cursor


def _to_file(updates: Iterator[TurnUpdate], session: ChatSession, interval_s: float):
    """For API clients: (chat history, the whole reply's audio file once spoken, session)."""
    for update in _paced(updates, interval_s):
        if update.stage == "speaking" and not update.notice:
            continue  # new speech only: these clients get the whole reply's audio file at the end
        _toasts(update, session)
        yield update.messages, (str(update.audio) if update.audio else None), session


class _Handlers:
    """The functions Gradio calls on each event. Each session's state is a ChatSession in a gr.State."""

    def __init__(self, assistant: Assistant, stream_interval_s: float, links: LiveLinks, browser_key: str):
        self.assistant = assistant
        self.interval_s = stream_interval_s
        self.links = links
        self.browser_key = browser_key  # signs the conversation each browser keeps (transcript.seal)
        # The browser tabs now open, by Gradio session: when one closes (its heartbeat stops), its turn stops.
        self.open_tabs: weakref.WeakValueDictionary[str, ChatSession] = weakref.WeakValueDictionary()

    @staticmethod
    def options(voice: str | None, rate_percent: float | None, language: str | None, speak: bool | None):
        if voice and voice.endswith(OFFLINE_MARK):  # the offline voice speaks whatever is asked while it must
            voice = None
        return TurnOptions(voice=VoiceOptions(voice=voice or None, rate_percent=int(rate_percent or 0)),
                           language=language or None, speak=speak is not False)

    def session_of(self, session: ChatSession | None) -> ChatSession:
        return session if session is not None else self.assistant.new_session()

    def _text_turn(self, message, session, *settings):
        session = self.session_of(session)
        return self.assistant.text_turn(session, message, self.options(*settings)), session

    def _voice_turn(self, audio_path, session, *settings):
        session = self.session_of(session)
        return self.assistant.voice_turn(session, audio_path, self.options(*settings)), session

    def _to_page(self, turn: Iterator[TurnUpdate], session: ChatSession, autoplay: bool):
        # Without autoplay the answer is not played as it comes; its audio is in the chat, to play.
        yield from _to_page(turn, session, self.interval_s, self.links.link_of(session) if autoplay else None)

    def ui_send_text(self, message, session, voice, rate_percent, language, speak, autoplay):
        turn, session = self._text_turn(message, session, voice, rate_percent, language, speak)
        yield from self._to_page(turn, session, autoplay)

    def ui_send_audio(self, audio, session, voice, rate_percent, language, speak, autoplay):
        turn, session = self._voice_turn(audio, session, voice, rate_percent, language, speak)
        yield from self._to_page(turn, session, autoplay)

    def ui_retry(self, session, voice, rate_percent, language, speak, autoplay):
        """The chat's retry button: the last message again (a failed turn, or a new answer)."""
        session = self.session_of(session)
        turn = self.assistant.retry_turn(session, self.options(voice, rate_percent, language, speak))
        yield from self._to_page(turn, session, autoplay)

    def ui_spoken(self, session, voice, rate_percent, language, speak, autoplay, event: gr.EventData):
        """The live bar heard a whole utterance (talk mode, or the mic button pressed again): answer it."""
        link = self.links.get((event._data or {}).get("key"))
        if link is not None:
            self._remember_settings(link, voice, rate_percent, language, speak, autoplay)
            early = link.take_early_turn()
            if early is not None:  # the server started it the moment it heard the utterance
                yield from _to_page(early.updates(), link.session, self.interval_s, link if autoplay else None,
                                    turn=early.turn)
                return
        utterance = link.take_utterance() if link is not None else None
        if utterance is None:  # a stale or forged event: nothing was heard
            session = self.session_of(session)
            yield shown(session.messages), gr.skip(), "", gr.skip(), session
            return
        turn = self.assistant.spoken_turn(link.session, utterance.samples, utterance.heard_at,
                                          self.options(voice, rate_percent, language, speak), utterance.transcript)
        yield from self._to_page(turn, link.session, autoplay)

    def _remember_settings(self, link: LiveLink, voice, rate_percent, language, speak, autoplay) -> None:
        """What the turns the server starts for this tab's microphone use."""
        link.turn_options = self.options(voice, rate_percent, language, speak)
        link.autoplay = autoplay is not False

    def remember_settings(self, session, voice, rate_percent, language, speak, autoplay) -> None:
        """A setting changed on the page."""
        if session is not None:
            self._remember_settings(self.links.link_of(session), voice, rate_percent, language, speak, autoplay)

    # Named parameters: gradio_client callers pass them by these names (predict("Hi", speak=False, ...)).
    def send_text(self, message, session, voice, rate_percent, language, speak):
        yield from _to_file(*self._text_turn(message, session, voice, rate_percent, language, speak), self.interval_s)

    def send_audio(self, audio, session, voice, rate_percent, language, speak):
        yield from _to_file(*self._voice_turn(audio, session, voice, rate_percent, language, speak), self.interval_s)

    @staticmethod
    def stop(session: ChatSession | None) -> None:
        if session is not None:
            session.stop()

    def clear(self, session: ChatSession | None):
        if session is not None:
            session.clear()
        # (None would not replace what the browser keeps)
        return session, [], transcript.seal(transcript.EMPTY_RECORD, self.browser_key, **self._saved_bounds())

    def restore(self, record, voice, rate_percent, language, speak, autoplay, request: gr.Request):
        """A page (re)load: the conversation this browser kept comes back, text and transcripts; the live bar
        learns its link's key, and its link the page's settings."""
        session = self.assistant.new_session()
        if record is not None:
            self._take_back(session, record, request)
        self.open_tabs[request.session_hash] = session
        link = self.links.link_of(session)
        self._remember_settings(link, voice, rate_percent, language, speak, autoplay)
        return session, shown(session.messages), link.hello()

    def tab_closed(self, request: gr.Request) -> None:
        session = self.open_tabs.pop(request.session_hash, None)
        if session is not None:
            log.info("a browser tab closed: its turn, if any, is stopped, and its microphone link closed")
            session.stop()
            if session.live is not None:
                session.live.close()

    def _saved_bounds(self) -> dict:
        """What a conversation kept in a browser may hold: limits.max_saved_kb, and the turns the context holds."""
        return {"max_bytes": self.assistant.limits.max_saved_kb * 1024,
                "max_turns": self.assistant.engines.generator.context_window // _MIN_TOKENS_PER_TURN}

    def _take_back(self, session: ChatSession, sealed, request: gr.Request) -> None:
        """The conversation this browser kept, if the server signed it and it is within bounds; else a new one."""
        try:
            record = transcript.unseal(sealed, self.browser_key, **self._saved_bounds())
        except transcript.SealError as e:
            log.warning("not restoring the conversation a browser sent (%s): %s",
                        request.client.host if request and request.client else "?", e)
            return
        transcript.restore(session, record)

    def remember(self, session: ChatSession | None):
        if session is None:
            return None
        return transcript.seal(transcript.to_record(session), self.browser_key, **self._saved_bounds())

    def download(self, session: ChatSession | None):
        if session is None or not session.exchanges:
            gr.Info("There is nothing to download yet.")
            return gr.update(value=None, visible=False)
        record = transcript.to_record(session)
        model = self.assistant.status_line()
        json_name, markdown_name = transcript.export_names()
        store = self.assistant.store
        files = [store.save_download(json_name, transcript.to_json(record, model=model)),
                 store.save_download(markdown_name, transcript.to_markdown(record, model=model))]
        return gr.update(value=[str(f) for f in files], visible=True)

    @staticmethod
    def busy(text: str):
        """A turn starts: the message moves to `pending`, Send gives way to Stop, the last notice goes."""
        return "", text, gr.update(visible=False), gr.update(visible=True), ""

    @staticmethod
    def working():
        """A recording or a retry starts a turn: Send gives way to Stop, the last notice goes."""
        return gr.update(visible=False), gr.update(visible=True), ""

    def idle(self):
        """The turn is over: Send is back, and the page says what runs (the voice menu: who speaks now)."""
        engines = self.assistant.engines
        offline = speaking_voice(engines)
        voice = gr.update(value=offline, choices=[offline, *engines.speaker.voices()]) if offline else gr.skip()
        return gr.update(visible=True), gr.update(visible=False), "", plain_models(engines), voice


_PRIVATE = {"api_visibility": "private"}
_QUIET = {"show_progress": "hidden"}  # the page says itself what a turn is doing: no spinners over the outputs


def _wire_api(page: Page, handlers: _Handlers) -> None:
    """API-only twins of the two turns: the same turn, returning the whole reply's audio as a file."""
    api_text_trigger = gr.Button(visible=False)
    api_audio_trigger = gr.Button(visible=False)
    outputs = [page.chatbot, page.api_audio, page.session]
    api_text_trigger.click(handlers.send_text, [page.pending, page.session, *page.settings], outputs,
                           api_name="send_text")
    api_audio_trigger.click(handlers.send_audio, [page.voice_in, page.session, *page.settings], outputs,
                            api_name="send_audio")


def _wire_turns(page: Page, handlers: _Handlers) -> None:
    def after_turn(event):
        # Saved in the browser first: once Send is back, a reload finds the finished turn.
        return event.then(handlers.remember, [page.session], [page.saved], **_PRIVATE
                          ).then(handlers.idle, None, [page.send, page.stop, page.progress, page.models,
                                                       page.settings[0]], **_PRIVATE)

    outputs = [page.chatbot, page.live, page.progress, page.notice, page.session]
    starting = [page.send, page.stop, page.notice]
    settings = [*page.settings, page.autoplay]
    after_turn(gr.on([page.message.submit, page.send.click], handlers.busy, [page.message],
                     [page.message, page.pending, *starting], queue=False, **_PRIVATE
                     ).then(handlers.ui_send_text, [page.pending, page.session, *settings], outputs,
                            api_name="stream_text", api_visibility="undocumented", **_QUIET))  # the latency benchmark
    after_turn(page.voice_in.upload(handlers.working, None, starting, queue=False, **_PRIVATE
                                    ).then(handlers.ui_send_audio, [page.voice_in, page.session, *settings], outputs,
                                           api_name="stream_audio", api_visibility="undocumented", **_QUIET,
                                           ).then(lambda: None, None, page.voice_in, **_PRIVATE))
    # The live bar's event carries its key, which only a direct listener receives (not one chained by .then).
    page.live.utterance(handlers.working, None, starting, queue=False, **_PRIVATE)
    after_turn(page.live.utterance(handlers.ui_spoken, [page.session, *settings], outputs, **_PRIVATE, **_QUIET))
    after_turn(page.chatbot.retry(handlers.working, None, starting, queue=False, **_PRIVATE
                                  ).then(handlers.ui_retry, [page.session, *settings], outputs, **_PRIVATE,
                                         **_QUIET))


def _wire_controls(page: Page, handlers: _Handlers) -> None:
    settings = [*page.settings, page.autoplay]
    gr.on([setting.change for setting in settings], handlers.remember_settings, [page.session, *settings], None,
          queue=False, **_PRIVATE)
    page.stop.click(handlers.stop, [page.session], None, queue=False, **_PRIVATE)
    page.live.interrupt(handlers.stop, [page.session], None, queue=False, **_PRIVATE)  # the live bar's Stop / Record
    gr.on([page.clear.click, page.chatbot.clear], handlers.clear, [page.session], [page.session, page.chatbot,
                                                                                   page.saved],
          queue=False, **_PRIVATE).then(lambda: gr.update(value=None, visible=False), None, page.downloads, **_PRIVATE)
    page.download.click(handlers.download, [page.session], [page.downloads], **_PRIVATE)
    gr.on([page.message.submit, page.send.click, page.stop.click, page.clear.click, page.chatbot.clear,
           page.voice_in.upload, page.chatbot.retry], None, None, None,
          js=PAUSE_AUDIO_JS, **_PRIVATE)


def build_ui(assistant: Assistant, *, title: str = "Voice Chatbot", browser_secret: str | None = None,
             stream_interval_s: float = 0.0) -> gr.Blocks:
    """`browser_secret` signs the conversation each browser keeps; a fixed one lets it outlive a restart.
    `stream_interval_s` paces streamed text (0: every token)."""
    links = LiveLinks(assistant.live_link)
    key = browser_secret or secrets.token_urlsafe(32)
    handlers = _Handlers(assistant, stream_interval_s, links, key)
    # Gradio keeps its own copies of served files: they expire like the store's, checked twice per lifetime.
    max_age = int(assistant.store.max_age_s)
    with gr.Blocks(title=title, delete_cache=(max(30, min(600, max_age // 2)), max_age)) as demo:
        page = layout(assistant.engines, title=title, storage_secret=transcript.storage_secret(key), links=links,
                      default_rate=assistant.default_rate_percent, default_language=assistant.default_language)
        _wire_api(page, handlers)
        _wire_turns(page, handlers)
        _wire_controls(page, handlers)
        demo.load(handlers.restore, [page.saved, *page.settings, page.autoplay], [page.session, page.chatbot,
                                                                                 page.live], **_PRIVATE)
        demo.unload(handlers.tab_closed)
    return demo
