"""End of turn from the sound of speech: Smart Turn v3.2 (Daily, BSD-2-Clause), an ONNX Whisper-tiny encoder
with a classifier head that hears whether an utterance is finished (intonation, pace, the last words).

The model file ships inside the `pipecat-ai` 1.14.0 wheel; `scripts/setup.sh` takes just that file (and the
licence) out of the wheel into the cache, without installing pipecat-ai's heavy dependencies.

Its input is what pipecat's local analyzer gives it: the last 8 s of the utterance (from a little before speech
began up to now, the trailing silence included), zero-padded at the front to 8 s, scaled to zero mean and unit
variance over those 8 s, then Whisper's log-mel spectrogram (80 bands, 25 ms Hann windows every 10 ms, the
last of 801 frames dropped, floored 8 below the maximum, mapped to about -1..1): float32 [batch, 80, 800].
Its output, named `logits` [batch, 1], comes out of a Sigmoid node: it is P(turn complete) already.
"""

from __future__ import annotations

import sys
import zipfile
from pathlib import Path

import numpy as np

from audio.decode import SAMPLE_RATE
from audio.packages import require

SMART_TURN_FILE = "smart-turn-v3.2-cpu.onnx"
SMART_TURN_DIR = "smart-turn"  # under the configured cache_dir
WHEEL_MODEL = "pipecat/audio/turn/smart_turn/data/" + SMART_TURN_FILE  # its place inside the pipecat-ai wheel
WHEEL_LICENSE = "pipecat_ai-1.14.0.dist-info/licenses/LICENSE"
WINDOW_S = 8  # the model hears the last 8 s
WINDOW_SAMPLES = WINDOW_S * SAMPLE_RATE  # 128000 samples
N_FFT = 400  # 25 ms analysis window at 16 kHz
HOP_SAMPLES = 160  # 10 ms between frames
N_MELS = 80
N_FRAMES = WINDOW_SAMPLES // HOP_SAMPLES  # 800: the 801st (centred) frame is dropped, as Whisper does
NORM_EPS = 1e-7  # variance floor of the waveform normalisation (silence stays finite)
MEL_FLOOR = 1e-10  # power floor before log10
LOG_RANGE = 8.0  # log10 units kept below the loudest bin (80 dB)


# Words a finished sentence rarely ends on: articles, prepositions, conjunctions, auxiliaries, question words,
# possessives, fillers. A transcript ending on one ("What is the capital of") is a speaker thinking mid-sentence.
UNFINISHED_ENDINGS = frozenset("""
a an the of to in on at for with from by about into onto over under between during through like than as
and or but nor so because if although though while whereas that which who whom whose what when where why how
is are was were be been being am do does did have has had can could will would shall should may might must
my your his her its our their this these those some any no every each very really just more most
i we you he she they me us him them um uh er erm hmm
""".split())
# "a"/"an" and then one of these, at the end ("How do I make a good"), waits for its noun: nothing ends there.
ADJECTIVES_BEFORE_A_NOUN = frozenset("""
good great bad big small little large huge tiny new old nice long short quick easy simple cheap healthy fast
slow high low hot cold warm cool perfect fun safe strong real full fresh free hard soft light dark sweet
beautiful special different better best typical proper decent
""".split())
# Alone, these open a sentence rather than make one ("Actually, | what is two plus two?").
OPENERS = frozenset("actually well anyway basically listen hey wait also now okay ok right look see".split())
_TRAILING_OFF = ("...", "…", ",", ";", ":", "-", "–", "—")


def sounds_finished(text: str) -> bool:
    """Whether a transcript reads as a finished sentence: not empty, not trailing off ("...", a comma), and
    not ending on a word that leaves the sentence open ("the", "of", "and", "how", "a good")."""
    text = text.strip()
    if not text or text.endswith(_TRAILING_OFF):
        return False
    words = [w.lower().strip(".,;:!?\"'()") for w in text.rstrip(".?!\"')").split()]
    if not words or words[-1] in UNFINISHED_ENDINGS or (len(words) == 1 and words[0] in OPENERS):
        return False
    return not (len(words) >= 2 and words[-2] in ("a", "an") and words[-1] in ADJECTIVES_BEFORE_A_NOUN)


class EndOfTurnModelMissing(FileNotFoundError):
    """The Smart Turn model file is not in the cache; the message says how to get it."""


class EndOfTurnError(RuntimeError):
    """The model failed on an input (ONNX Runtime's own exception types have no common base but Exception)."""


def smart_turn_path(cache_dir: Path) -> Path:
    """Where scripts/setup.sh puts the model: `<cache_dir>/smart-turn/smart-turn-v3.2-cpu.onnx`."""
    path = Path(cache_dir) / SMART_TURN_DIR / SMART_TURN_FILE
    if not path.is_file():
        raise EndOfTurnModelMissing(
            f"the end-of-turn model {SMART_TURN_FILE} is not in {path.parent}: run scripts/setup.sh, which takes "
            "it out of the pipecat-ai 1.14.0 wheel (or set talk.end_of_turn: silence)")
    return path


def extract_from_wheel(wheel: Path, cache_dir: Path) -> Path:
    """Copy the model (and its licence) out of a downloaded pipecat-ai wheel into the cache; return its path."""
    target = Path(cache_dir) / SMART_TURN_DIR
    target.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            names = set(archive.namelist())
            if WHEEL_MODEL not in names:
                raise EndOfTurnModelMissing(f"{wheel} holds no {WHEEL_MODEL}: is it the pipecat-ai 1.14.0 wheel?")
            if WHEEL_LICENSE in names:
                (target / "LICENSE").write_bytes(archive.read(WHEEL_LICENSE))
            partial = target / (SMART_TURN_FILE + ".part")  # renamed into place only when complete
            partial.write_bytes(archive.read(WHEEL_MODEL))
    except zipfile.BadZipFile as e:
        raise EndOfTurnModelMissing(f"{wheel} is not a readable wheel: {e}") from e
    return partial.replace(target / SMART_TURN_FILE)


def _hz_to_mel(hz: np.ndarray) -> np.ndarray:
    """Slaney's mel scale (librosa's default, Whisper's): linear below 1 kHz, logarithmic above."""
    hz = np.asarray(hz, dtype=np.float64)
    linear = hz * 3.0 / 200.0
    logarithmic = 15.0 + np.log(np.maximum(hz, 1e-9) / 1000.0) * (27.0 / np.log(6.4))
    return np.where(hz < 1000.0, linear, logarithmic)


def _mel_to_hz(mel: np.ndarray) -> np.ndarray:
    mel = np.asarray(mel, dtype=np.float64)
    linear = mel * 200.0 / 3.0
    logarithmic = 1000.0 * np.exp((mel - 15.0) * (np.log(6.4) / 27.0))
    return np.where(mel < 15.0, linear, logarithmic)


def mel_filters(n_fft: int = N_FFT, n_mels: int = N_MELS, rate: int = SAMPLE_RATE) -> np.ndarray:
    """Triangular mel filters [n_mels, n_fft // 2 + 1], each scaled to unit area (Slaney normalisation)."""
    bin_hz = np.linspace(0.0, rate / 2, n_fft // 2 + 1)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(0.0), _hz_to_mel(rate / 2), n_mels + 2))
    lower, centre, upper = edges_hz[:-2, None], edges_hz[1:-1, None], edges_hz[2:, None]
    rising = (bin_hz[None, :] - lower) / (centre - lower)
    falling = (upper - bin_hz[None, :]) / (upper - centre)
    triangles = np.maximum(0.0, np.minimum(rising, falling))
    return triangles * (2.0 / (upper - lower))


_FILTERS = mel_filters()
_WINDOW = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(N_FFT) / N_FFT)  # periodic Hann, as torch.hann_window


def last_window(audio: np.ndarray) -> np.ndarray:
    """The last WINDOW_S seconds of 16 kHz audio, zero-padded at the front when shorter."""
    audio = np.asarray(audio, dtype=np.float32).reshape(-1)[-WINDOW_SAMPLES:]
    return np.pad(audio, (WINDOW_SAMPLES - len(audio), 0))


def log_mel_features(audio: np.ndarray) -> np.ndarray:
    """Smart Turn's input for one utterance (16 kHz float32 of any length): float32 [N_MELS, N_FRAMES]."""
    x = last_window(audio)
    x = (x - x.mean()) / np.sqrt(x.var() + NORM_EPS)  # in float32, as the reference does
    padded = np.pad(x.astype(np.float64), N_FFT // 2, mode="reflect")  # centred frames
    frames = np.lib.stride_tricks.sliding_window_view(padded, N_FFT)[::HOP_SAMPLES]
    power = np.abs(np.fft.rfft(frames * _WINDOW, axis=-1)) ** 2  # [801, 201]
    log_mel = np.log10(np.maximum(_FILTERS @ power.T, MEL_FLOOR))[:, :N_FRAMES]
    log_mel = np.maximum(log_mel, log_mel.max() - LOG_RANGE)
    return ((log_mel + 4.0) / 4.0).astype(np.float32)


class SmartTurn:
    """The Smart Turn v3.2 session: P(turn complete) for an utterance. Safe to share between sessions."""

    def __init__(self, path: Path, threads: int):
        ort = require("onnxruntime", "onnxruntime", "The end-of-turn model")
        options = ort.SessionOptions()
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3  # errors only
        try:
            self._session = ort.InferenceSession(str(path), sess_options=options,
                                                 providers=["CPUExecutionProvider"])
        except Exception as e:  # onnxruntime raises its own, unexported, exception types
            raise RuntimeError(f"could not load the end-of-turn model {path}: {e}") from e
        self._input = self._session.get_inputs()[0].name

    @classmethod
    def from_cache(cls, cache_dir: Path, threads: int) -> SmartTurn:
        return cls(smart_turn_path(cache_dir), threads)

    def probabilities(self, utterances: list[np.ndarray]) -> np.ndarray:
        """P(complete) for each utterance (16 kHz mono float32, speech up to now), in one batch: float [n]."""
        features = np.stack([log_mel_features(audio) for audio in utterances])
        try:
            (output,) = self._session.run(None, {self._input: features})
        except Exception as e:  # onnxruntime's Fail, InvalidArgument, ... derive from Exception only
            raise EndOfTurnError(f"the end-of-turn model failed on {len(utterances)} utterance(s): {e}") from e
        # The graph ends in a Sigmoid (its output is named `logits` but holds probabilities already).
        return np.asarray(output, dtype=np.float64).reshape(-1)

    def probability(self, utterance: np.ndarray) -> float:
        """P(the speaker has finished their turn) for one utterance."""
        return float(self.probabilities([utterance])[0])


if __name__ == "__main__":  # scripts/setup.sh: python -m audio.listen.end_of_turn WHEEL CACHE_DIR
    print(extract_from_wheel(Path(sys.argv[1]), Path(sys.argv[2])))
