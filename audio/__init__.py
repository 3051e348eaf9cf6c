"""The sound side: decoding input audio, speech-to-text, text-to-speech, text for the ear, reply audio files."""

from audio.decode import SAMPLE_RATE, AudioDecodeError, decode_array, decode_file
from audio.stt import Transcriber, Transcript, create_transcriber
from audio.tts import Speaker, SpeechChunk, VoiceOptions, create_speaker

__all__ = ["SAMPLE_RATE", "AudioDecodeError", "decode_array", "decode_file", "Transcriber", "Transcript",
           "create_transcriber", "Speaker", "SpeechChunk", "VoiceOptions", "create_speaker"]
