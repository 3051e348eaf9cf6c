"""The Gradio Blocks UI. It only wires events to the `Assistant`; no model logic lives here.

Named API endpoints (callable with gradio_client):
  /send_text  (message, voice, rate_percent) -> (chat history, reply audio file)
  /send_audio (audio file, voice, rate_percent) -> (chat history, reply audio file)
"""

from __future__ import annotations

import logging
from typing import Callable, Iterator

import gradio as gr

from audio.tts import VoiceOptions
from chatbot.turn import Assistant, ChatSession, TurnOptions, TurnUpdate

log = logging.getLogger(__name__)

CSS = """
#status-line { font-size: 0.85em; opacity: 0.8; }
"""


def _status_markdown(assistant: Assistant) -> str:
    notes = "".join(f"\n\n⚠️ {note}" for note in assistant.engines.notes)
    return f"`{assistant.status_line()}`{notes}"


def _forward(updates: Iterator[TurnUpdate], session: ChatSession):
    """Turn updates -> (chat history, audio, session) for Gradio; notices become toasts."""
    shown: set[str] = set()
    for update in updates:
        if update.notice and update.notice not in shown:
            shown.add(update.notice)
            gr.Warning(update.notice)
        yield update.messages, (str(update.audio) if update.audio else None), session


def build_ui(assistant: Assistant, *, title: str = "Voice Chatbot") -> gr.Blocks:
    speaker = assistant.engines.speaker
    voices = speaker.voices()

    def options(voice: str | None, rate_percent: float | None) -> TurnOptions:
        return TurnOptions(voice=VoiceOptions(voice=voice or None, rate_percent=int(rate_percent or 0)))

    def session_of(session: ChatSession | None) -> ChatSession:
        return session if session is not None else assistant.new_session()

    def send_text(message: str, session: ChatSession | None, voice: str, rate_percent: float):
        session = session_of(session)
        yield from _forward(assistant.text_turn(session, message, options(voice, rate_percent)), session)

    def send_audio(audio_path: str | None, session: ChatSession | None, voice: str, rate_percent: float):
        session = session_of(session)
        yield from _forward(assistant.voice_turn(session, audio_path, options(voice, rate_percent)), session)

    def clear(session: ChatSession | None):
        if session is not None:
            session.clear()
        return session, [], None

    status_of: Callable[[], str] = lambda: _status_markdown(assistant)  # noqa: E731

    with gr.Blocks(title=title, delete_cache=(600, int(assistant.store.max_age_s))) as demo:
        session = gr.State(None)  # a ChatSession per browser tab, created on its first turn
        gr.Markdown(f"## 🎙️ {title}\nType and press Enter, or record / upload your voice. "
                    "Answers stream into the chat and are spoken back.")
        chatbot = gr.Chatbot(label="Conversation", height=480, buttons=["copy"], feedback_options=None,
                             placeholder="Ask anything: a translation, an everyday question, an explanation.")
        with gr.Row(equal_height=True):
            message = gr.Textbox(label="Message", placeholder="Type a message and press Enter",
                                 lines=1, max_lines=6, scale=5, autofocus=True)
            send = gr.Button("Send", variant="primary", scale=1, min_width=80)
        pending = gr.Textbox(visible=False, label="message")  # what /send_text receives
        with gr.Row():
            voice_in = gr.Audio(label="Speak or upload audio (sends when recording stops or the upload lands)",
                                sources=["microphone", "upload"], type="filepath", scale=3)
            reply_audio = gr.Audio(label="Spoken answer", type="filepath", autoplay=True, interactive=False,
                                   scale=2)
        with gr.Row():
            voice = gr.Dropdown(voices, value=voices[0] if voices else None, label="Voice",
                                allow_custom_value=True, scale=2)
            rate = gr.Slider(-50, 100, value=assistant.default_rate_percent, step=5,
                             label="Speaking rate (% faster)", scale=2)
            clear_button = gr.Button("Clear", variant="secondary", scale=1, min_width=80)
        status = gr.Markdown(status_of(), elem_id="status-line")

        turn_outputs = [chatbot, reply_audio, session]
        gr.on(
            [message.submit, send.click], lambda text: ("", text), [message], [message, pending],
            queue=False, api_visibility="private",
        ).then(
            send_text, [pending, session, voice, rate], turn_outputs, api_name="send_text",
        ).then(status_of, None, status, api_visibility="private")
        gr.on(
            [voice_in.stop_recording, voice_in.upload], send_audio, [voice_in, session, voice, rate],
            turn_outputs, api_name="send_audio",
        ).then(
            lambda: None, None, voice_in, api_visibility="private",
        ).then(status_of, None, status, api_visibility="private")
        clear_button.click(clear, [session], [session, chatbot, reply_audio], api_visibility="private")
    return demo
