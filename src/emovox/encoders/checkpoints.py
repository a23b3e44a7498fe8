"""Whisper encoder weights from openai-whisper ``.pt`` checkpoints and Hugging Face
directories (``config.json`` + ``model.safetensors`` or ``pytorch_model.bin``), mapped to
:class:`~.whisper.WhisperEncoder` names."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from .whisper import StateDict, WhisperDims

__all__ = ["hf_to_state_dict", "openai_to_state_dict", "read_hf", "read_openai"]


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
