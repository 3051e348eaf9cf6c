"""Speech-to-text: the `Transcriber` interface (base), faster-whisper and openai-whisper engines."""
