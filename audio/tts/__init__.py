"""Text-to-speech: the `Speaker` interface (base), edge-tts online, Piper offline, and the fallback between them."""
