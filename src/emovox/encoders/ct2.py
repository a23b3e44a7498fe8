"""CTranslate2 Whisper models (``model.bin``, the faster-whisper format), read without the
``ctranslate2`` package: float32/float16/bfloat16 and int8/int16-quantised weights (dequantised
with their ``*_scale`` variables), the fused q/k/v split, mapped to
:class:`~.whisper.WhisperEncoder` names."""

from __future__ import annotations

import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch
from torch import Tensor

from .whisper import StateDict, WhisperDims, sinusoids

__all__ = ["CT2_DTYPES", "ct2_to_state_dict", "read_ct2", "read_ct2_variables"]

#: CTranslate2 DataType ids (include/ctranslate2/types.h), binary format version >= 4.
CT2_DTYPES: dict[int, str] = {
    0: "float32",
    1: "int8",
    2: "int16",
    3: "int32",
    4: "float16",
    5: "bfloat16",
}
_CT2_ITEMSIZE_DTYPES = {4: "float32", 2: "int16", 1: "int8"}  # binary format version < 4
_NUMPY_DTYPES = {
    "float32": np.float32,
    "int8": np.int8,
    "int16": np.int16,
    "int32": np.int32,
    "float16": np.float16,
    "bfloat16": np.uint16,  # reinterpreted as torch.bfloat16 below
}


def _read(f: BinaryIO, fmt: str) -> int:
    size = struct.calcsize("<" + fmt)
    data = f.read(size)
    if len(data) != size:
        raise ValueError("truncated CTranslate2 model.bin")
    return struct.unpack("<" + fmt, data)[0]


def _read_string(f: BinaryIO) -> str:
    n = _read(f, "H")  # length including the trailing NUL
    data = f.read(n)
    if len(data) != n:
        raise ValueError("truncated CTranslate2 model.bin")
    return data[:-1].decode("utf-8")


def _to_tensor(raw: bytes, dtype: str, shape: list[int]) -> Tensor:
    arr = np.frombuffer(raw, dtype=_NUMPY_DTYPES[dtype]).reshape(shape).copy()
    t = torch.from_numpy(arr)
    if dtype == "bfloat16":
        t = t.view(torch.bfloat16)
    return t


def read_ct2_variables(
    path: str | Path | BinaryIO, prefix: str | None = "encoder/"
) -> tuple[dict[str, Tensor], dict[str, str]]:
    """Read the variables of a CTranslate2 ``model.bin`` without ``ctranslate2``.

    The layout (``ctranslate2/specs/model_spec.py``, little-endian): uint32 binary version;
    (version >= 2) spec name string and uint32 revision; uint32 variable count; per variable:
    name string, uint8 rank, rank x uint32 dims, uint8 dtype id and uint32 byte count
    (version < 4: uint8 item size and uint32 element count), raw data; then (version >= 3)
    uint32 alias count and (alias, target) string pairs. Strings are a uint16 length that
    counts a trailing NUL, then the UTF-8 bytes and the NUL.

    Args:
        path: the ``model.bin`` file or the model directory holding it, or an open binary
            file (seekable) with its bytes.
        prefix: only variables whose names start with this are loaded (others are skipped
            with a seek); ``None`` loads all.

    Returns:
        ``(variables, aliases)``: tensors in their stored dtype, and alias -> target names.
    """
    if isinstance(path, (str, Path)):
        path = Path(path)
        if path.is_dir():
            path = path / "model.bin"
        opened: BinaryIO = path.open("rb")
    else:
        opened, path = path, Path(getattr(path, "name", "model.bin"))
    variables: dict[str, Tensor] = {}
    aliases: dict[str, str] = {}
    with opened as f:
        version = _read(f, "I")
        if not 1 <= version <= 6:
            raise ValueError(f"{path}: unsupported CTranslate2 binary version {version}")
        if version >= 2:
            _read_string(f)  # spec name, e.g. WhisperSpec
            _read(f, "I")  # spec revision
        for _ in range(_read(f, "I")):
            name = _read_string(f)
            rank = _read(f, "B")
            shape = [_read(f, "I") for _ in range(rank)]
            if version >= 4:
                type_id = _read(f, "B")
                if type_id not in CT2_DTYPES:
                    raise ValueError(f"{path}: variable {name} has unknown dtype id {type_id}")
                dtype = CT2_DTYPES[type_id]
                n_bytes = _read(f, "I")
            else:
                item_size = _read(f, "B")
                dtype = _CT2_ITEMSIZE_DTYPES[item_size]
                n_bytes = _read(f, "I") * item_size
            if prefix is not None and not name.startswith(prefix):
                f.seek(n_bytes, 1)
                continue
            raw = f.read(n_bytes)
            if len(raw) != n_bytes:
                raise ValueError(f"{path}: truncated data for variable {name}")
            variables[name] = _to_tensor(raw, dtype, shape)
        if version >= 3:
            for _ in range(_read(f, "I")):
                alias, target = _read_string(f), _read_string(f)
                aliases[alias] = target
    return variables, aliases


def _dequantise(variables: Mapping[str, Tensor]) -> dict[str, Tensor]:
    """Float32 copies of all variables; integer weights with a ``*_scale`` are divided by it."""
    out: dict[str, Tensor] = {}
    for name, value in variables.items():
        if name.endswith("_scale") and name[: -len("_scale")] in variables:
            continue
        scale = variables.get(name + "_scale")
        if scale is not None and not value.is_floating_point():
            scale = scale.float()
            if scale.numel() > 1:  # int8: one scale per output row (conv: per out channel)
                scale = scale.reshape(-1, *([1] * (value.dim() - 1)))
            out[name] = value.float() / scale
        else:
            out[name] = value.float() if value.is_floating_point() else value
    return out


def ct2_to_state_dict(variables: Mapping[str, Tensor]) -> tuple[WhisperDims, StateDict]:
    """Map CTranslate2 Whisper encoder variables to our names (and dims).

    The fused ``self_attention/linear_0`` (q; k; v stacked on the output axis) is split. Its k
    bias (zeros when converted from Whisper) is dropped: a key bias adds the same ``q . b`` to
    every score of a query, which softmax ignores, so dropping it never changes the output.
    """
    v = _dequantise(variables)
    if "encoder/conv1/weight" not in v:
        raise ValueError("not a CTranslate2 Whisper model: missing encoder/conv1/weight")
    conv1 = v["encoder/conv1/weight"]
    layer_ids = sorted({int(m.group(1)) for k in v if (m := re.match(r"encoder/layer_(\d+)/", k))})
    if not layer_ids or layer_ids != list(range(len(layer_ids))):
        raise ValueError(f"unexpected CTranslate2 encoder layer indices {layer_ids}")
    if "encoder/num_heads" not in v:
        raise ValueError("CTranslate2 model has no encoder/num_heads")
    n_head = int(v["encoder/num_heads"].item())
    n_state, n_mels = conv1.shape[0], conv1.shape[1]
    # Position encodings and biases are optional in the CTranslate2 spec; when absent,
    # Whisper's sinusoid (30 s context) and zero biases are what they stand for.
    pos = v.get("encoder/position_encodings/encodings")
    if pos is None:
        pos = sinusoids(1500, n_state)
    dims = WhisperDims(n_mels, pos.shape[0], n_state, n_head, len(layer_ids))

    def get(name: str, like: str | None = None) -> Tensor:
        if name in v:
            return v[name]
        if like is not None:  # an optional bias: zeros of the weight's output size
            return torch.zeros(v[like].shape[0])
        raise ValueError(f"CTranslate2 Whisper model lacks {name}")

    def linear(src: str, dst: str) -> StateDict:
        return {
            f"{dst}.weight": get(f"{src}/weight"),
            f"{dst}.bias": get(f"{src}/bias", like=f"{src}/weight"),
        }

    def norm(src: str, dst: str) -> StateDict:
        return {f"{dst}.weight": get(f"{src}/gamma"), f"{dst}.bias": get(f"{src}/beta")}

    sd: StateDict = {
        **linear("encoder/conv1", "conv1"),
        **linear("encoder/conv2", "conv2"),
        "positional_embedding": pos,
        **norm("encoder/layer_norm", "ln_post"),
    }
    for i in layer_ids:
        src, dst = f"encoder/layer_{i}", f"blocks.{i}"
        fused = f"{src}/self_attention/linear_0"
        qkv_w = get(f"{fused}/weight")
        qkv_b = get(f"{fused}/bias", like=f"{fused}/weight")
        if qkv_w.shape[0] != 3 * n_state:
            raise ValueError(f"layer {i}: fused qkv weight has shape {tuple(qkv_w.shape)}")
        q_w, k_w, v_w = qkv_w.split(n_state, dim=0)
        q_b, _k_b, v_b = qkv_b.split(n_state, dim=0)
        sd.update(norm(f"{src}/self_attention/layer_norm", f"{dst}.attn_ln"))
        sd.update(
            {
                f"{dst}.attn.query.weight": q_w,
                f"{dst}.attn.query.bias": q_b,
                f"{dst}.attn.key.weight": k_w,
                f"{dst}.attn.value.weight": v_w,
                f"{dst}.attn.value.bias": v_b,
            }
        )
        sd.update(linear(f"{src}/self_attention/linear_1", f"{dst}.attn.out"))
        sd.update(norm(f"{src}/ffn/layer_norm", f"{dst}.mlp_ln"))
        sd.update(linear(f"{src}/ffn/linear_0", f"{dst}.mlp.0"))
        sd.update(linear(f"{src}/ffn/linear_1", f"{dst}.mlp.2"))
    return dims, {k: t.contiguous() for k, t in sd.items()}


def read_ct2(path: str | Path | BinaryIO) -> tuple[WhisperDims, StateDict]:
    """Dims and state dict from a CTranslate2 Whisper model directory or its ``model.bin``."""
    variables, aliases = read_ct2_variables(path, prefix="encoder/")
    for alias, target in aliases.items():
        if alias.startswith("encoder/") and target in variables:
            variables[alias] = variables[target]
    return ct2_to_state_dict(variables)
