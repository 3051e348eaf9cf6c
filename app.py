"""Voice-and-text chatbot: parse flags, load the config, build the engines once, build the UI, launch.

    python app.py                      # embedded models on a CPU, Phi-3-mini on a CUDA GPU
    python app.py --share              # also a public gradio.live link
    python app.py --help               # every flag
"""

from __future__ import annotations

import argparse
import logging
import os
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

from chatbot.config import (Config, ConfigError, LLMConfig, ServerConfig, STTConfig, TTSConfig, choices,  # noqa: E402
                            load_config)
from chatbot.log_limit import limit_repeats  # noqa: E402
from chatbot.malloc import limit_arenas  # noqa: E402

log = logging.getLogger("app")

# CLI flag -> dotted config key. Every other key is reachable with --set key=value.
_FLAG_KEYS = {
    "host": "server.host",
    "port": "server.port",
    "device": "device",
    "llm_engine": "llm.engine",
    "llm_model": "llm.model",
    "llm_url": "llm.openai_base_url",
    "stt_engine": "stt.engine",
    "stt_model": "stt.model",
    "stt_language": "stt.language",
    "tts_engine": "tts.engine",
    "tts_voice": "tts.voice",
    "cache_dir": "cache_dir",
    "log_level": "log_level",
}


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description="Voice-and-text chatbot (Gradio + Whisper + Phi-3 + edge-tts).")
    p.add_argument("--config", help="a YAML file overriding any subset of config.yaml")
    p.add_argument("--host", help="address to listen on (0.0.0.0 for the LAN)")
    p.add_argument("--port", type=int)
    p.add_argument("--share", action="store_true", default=None, help="also publish a public gradio.live link")
    p.add_argument("--device", choices=choices(Config, "device"))
    p.add_argument("--llm-engine", choices=choices(LLMConfig, "engine"),
                   help="auto: transformers on CUDA, else the fastest CPU engine (llm.cpu_engine)")
    p.add_argument("--llm-model", help="auto | embedded | a hub id (microsoft/Phi-3-mini-4k-instruct) | a folder "
                                       "| with --llm-engine openai: the server's model name")
    p.add_argument("--llm-url", help="with --llm-engine openai: the server's base URL, e.g. http://127.0.0.1:8000/v1")
    p.add_argument("--stt-engine", choices=choices(STTConfig, "engine"))
    p.add_argument("--stt-model", help="auto | embedded | a Whisper model name | a local path")
    p.add_argument("--stt-language", help="auto, or an ISO code such as en")
    p.add_argument("--tts-engine", choices=choices(TTSConfig, "engine"))
    p.add_argument("--tts-voice", help="an edge-tts voice, e.g. en-GB-SoniaNeural")
    p.add_argument("--cache-dir", help="where prepared models are kept")
    p.add_argument("--log-level", choices=choices(Config, "log_level"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any config key, e.g. --set llm.temperature=0 (repeatable)")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> Config:
    overrides = {key: str(getattr(args, flag)) for flag, key in _FLAG_KEYS.items() if getattr(args, flag) is not None}
    if args.share:
        overrides["server.share"] = "true"
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key.strip()] = value
    return load_config(args.config, overrides)


def create_app(cfg: Config, engines=None):
    """Load the models (unless `engines` are given) and build the UI without launching it:
    (gradio Blocks, Assistant)."""
    from audio.store import AudioStore
    from chatbot.assistant import Assistant
    from chatbot.engines import build_engines
    from chatbot.transcript import browser_secret
    from chatbot.ui import build_ui

    engines = engines or build_engines(cfg)
    store = AudioStore(cfg.files.audio_dir or None, cfg.files.max_age_s)
    assistant = Assistant(cfg, engines, store)
    demo = build_ui(assistant, browser_secret=browser_secret(cfg.cache_path),
                    stream_interval_s=cfg.server.stream_interval_s)
    demo.queue(default_concurrency_limit=cfg.server.concurrency, max_size=cfg.server.queue_size)
    return demo, assistant


def guard_settings(server: ServerConfig, login: bool) -> dict:
    """launch() arguments: every request body capped (413 beyond server.max_request_kb; uploads a few times
    server.max_upload_mb); with a login, failed logins throttled per client address and the rule said on the
    login page (unless server.login_attempts is 0)."""
    from starlette.middleware import Middleware

    from chatbot.login_guard import LoginGuard, LoginPolicy, LoginThrottle
    from chatbot.request_limits import BodyLimit

    # Gradio's upload route checks the file's size itself (and says so in its own words); the cap here only
    # keeps an absurd multipart body from being read at all.
    middleware = [Middleware(BodyLimit, max_bytes=server.max_request_kb * 1024,
                             max_upload_bytes=(4 * server.max_upload_mb + 1) * 1024 * 1024)]
    if not login or server.login_attempts == 0:
        return {"app_kwargs": {"middleware": middleware}}
    policy = LoginPolicy.from_config(server)
    middleware.append(Middleware(LoginGuard, throttle=LoginThrottle(policy)))
    return {"auth_message": policy.describe(), "app_kwargs": {"middleware": middleware}}


def launch(demo, cfg: Config, *, block: bool = True):
    from chatbot.page import CSS

    auth = None
    if cfg.server.auth_user and cfg.server.auth_password:
        auth = [(cfg.server.auth_user, cfg.server.auth_password)]
    elif cfg.server.share:
        log.warning("sharing without a login: anyone with the link can use this app; set server.auth_user and "
                    "CHATBOT__SERVER__AUTH_PASSWORD to require one")
    # Gradio notices a closed tab when its heartbeat stops; the app then stops that tab's reply.
    os.environ["GRADIO_HEARTBEAT_INTERVAL"] = str(cfg.server.disconnect_check_s)
    # uvicorn (started by Gradio) believes X-Forwarded-For only from these; its own default is 127.0.0.1.
    os.environ["FORWARDED_ALLOW_IPS"] = ",".join(str(a) for a in cfg.server.trusted_proxies)
    demo.launch(
        server_name=cfg.server.host,
        server_port=cfg.server.port,
        share=cfg.server.share,
        max_file_size=f"{cfg.server.max_upload_mb}mb",
        css=CSS,
        auth=auth,
        **guard_settings(cfg.server, login=auth is not None),
        state_session_capacity=cfg.server.max_sessions,
        footer_links=["gradio", "settings"],
        prevent_thread_lock=not block,
        quiet=True,
    )
    log.info("serving on %s", demo.local_url)
    if cfg.server.share:
        if demo.share_url:
            log.info("public link: %s", demo.share_url)
        else:
            log.warning("no public link: the Gradio share service cannot be reached from here (no internet?); "
                        "serving locally only at %s", demo.local_url)
    return demo


def main(argv: list[str] | None = None) -> int:
    started = time.perf_counter()
    args = parse_args(argv)
    try:
        cfg = config_from_args(args)
    except ConfigError as e:
        print(f"config error: {e}", file=sys.stderr)
        return 2
    gradio_dir = private_files()
    exit_on_sigterm()
    logging.basicConfig(level=cfg.log_level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    # httpx logs every request at INFO: the llama.cpp engine counts tokens over loopback several times a turn.
    logging.getLogger("httpx").setLevel(max(logging.WARNING, logging.getLogger().level))
    limit_repeats(cfg.server.log_repeats, cfg.server.log_repeat_window_s)
    limit_arenas(cfg.server.malloc_arenas)  # before the models and the server start their threads
    try:
        serve(cfg, started)
    finally:
        if gradio_dir is not None:
            shutil.rmtree(gradio_dir, ignore_errors=True)
    return 0


def serve(cfg: Config, started: float) -> None:
    """Build and serve the app until it is stopped; its files are removed however it stops."""
    demo, assistant = create_app(cfg)
    try:
        launch(demo, cfg, block=False)
        log.info("ready in %.1f s: %s", time.perf_counter() - started, assistant.status_line())
        demo.block_thread()
    finally:
        demo.close()
        assistant.store.close()


def private_files() -> Path | None:
    """Everything the app writes (recordings, speech, downloads, Gradio's uploads and cache) readable by its own
    user alone: files 0600 and folders 0700, and Gradio's files in a fresh folder of the app's own rather than
    the /tmp/gradio every user of the machine shares (unless GRADIO_TEMP_DIR names one). Returns the folder made
    here, removed at exit. Before gradio is imported: it reads GRADIO_TEMP_DIR then."""
    os.umask(0o077)
    if os.environ.get("GRADIO_TEMP_DIR"):
        return None
    folder = Path(tempfile.mkdtemp(prefix="voice-chatbot-gradio-"))
    os.environ["GRADIO_TEMP_DIR"] = str(folder)
    return folder


def exit_on_sigterm() -> None:
    """SIGTERM (systemd, Docker, kill) ends the app as Ctrl+C does: through main's clean-up, which removes the
    recordings, speech and downloads, instead of leaving them in the temporary folder."""
    def stop(signum, _frame):
        log.info("%s: shutting down", signal.Signals(signum).name)
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)


if __name__ == "__main__":
    sys.exit(main())
