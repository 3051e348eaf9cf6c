"""Hearing a live microphone stream: voice activity (vad), end of turn (end_of_turn), and the per-session
Listener that turns both into speech and turn events."""
