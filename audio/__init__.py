"""The sound side: decoding input audio (decode), speech-to-text (stt/), text-to-speech (tts/), the reply's way
to the ear (speech/: sentence pieces, text cleaned for speech, the speech stage), reply audio files (store)."""

from audio.decode import SAMPLE_RATE, AudioDecodeError, decode_array, decode_file, to_pcm16
from audio.speech.stage import SpeechStage
from audio.stt.base import Transcriber, Transcript
from audio.tts.base import Speaker, SpeechChunk, VoiceOptions

__all__ = ["SAMPLE_RATE", "AudioDecodeError", "decode_array", "decode_file", "to_pcm16", "SpeechStage",
           "Transcriber", "Transcript", "Speaker", "SpeechChunk", "VoiceOptions"]
