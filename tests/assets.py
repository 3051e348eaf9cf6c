"""Test assets that are fetched once from PyPI (the only network the test machines have) and cached.

The real Phi-3 vocabulary: llama-cpp-python's source distribution carries llama.cpp's vocabulary-only GGUF of
Phi-3 (`ggml-vocab-phi-3.gguf`, 726 KB, MIT), which transformers loads as the Phi-3 tokenizer.

    python -m tests.assets        # fetch now (the setup script does this)
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tarfile
import tempfile
import urllib.request
from pathlib import Path

CACHE = Path(os.environ.get("CHATBOT_TEST_ASSETS", Path.home() / ".cache" / "voice-chatbot" / "test-assets"))
_SDIST_INDEX = "https://pypi.org/simple/llama-cpp-python/"
_SDIST_NAME = "llama_cpp_python-0.3.36.tar.gz"
_SDIST_SHA256 = "832db0699007f1be95a7e41ef12e88926b02ba836461e36a36372db2760c1a2e"
_VOCAB_MEMBER = "llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-phi-3.gguf"


def phi3_vocab_gguf(timeout_s: float = 120.0) -> Path:
    target = CACHE / "ggml-vocab-phi-3.gguf"
    if target.is_file():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with urllib.request.urlopen(_SDIST_INDEX, timeout=timeout_s) as response:
        index = response.read().decode("utf-8")
    match = re.search(rf'href="([^"#]*/{re.escape(_SDIST_NAME)})#sha256={_SDIST_SHA256}"', index)
    if not match:
        raise RuntimeError(f"{_SDIST_NAME} with the expected sha256 is not listed at {_SDIST_INDEX}")
    with tempfile.TemporaryDirectory(dir=CACHE) as tmp:
        archive = Path(tmp) / _SDIST_NAME
        digest = hashlib.sha256()
        with urllib.request.urlopen(match.group(1), timeout=timeout_s) as response, open(archive, "wb") as out:
            while block := response.read(1 << 20):
                digest.update(block)
                out.write(block)
        if digest.hexdigest() != _SDIST_SHA256:
            raise RuntimeError(f"{_SDIST_NAME}: sha256 mismatch")
        with tarfile.open(archive) as tar:
            member = tar.extractfile(_VOCAB_MEMBER)
            if member is None:
                raise RuntimeError(f"{_VOCAB_MEMBER} not found in {_SDIST_NAME}")
            partial = target.with_suffix(".part")
            with open(partial, "wb") as out:
                shutil.copyfileobj(member, out)
            partial.replace(target)
    return target


if __name__ == "__main__":
    print(phi3_vocab_gguf())
