"""Whisper's encoder in plain numpy, for inference without torch.

The same computation as :class:`emovox.encoders.whisper.WhisperEncoder` (conv stem, sinusoidal
positions, pre-norm attention blocks, ``ln_post``), written over a flat dict of weight arrays
with the encoder's own state-dict names, so a bundled model runs on numpy alone. A parity
test checks it against the torch module.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np

Weights = Mapping[str, np.ndarray]


def sinusoids(length: int, channels: int, max_timescale: float = 10000.0) -> np.ndarray:
    """Whisper's sinusoidal positions ``(length, channels)``: sines, then cosines."""
    inc = math.log(max_timescale) / (channels // 2 - 1)
    inv = np.exp(-inc * np.arange(channels // 2))
    t = np.arange(length)[:, None] * inv[None, :]
    return np.concatenate([np.sin(t), np.cos(t)], axis=1).astype(np.float32)


def gelu(x: np.ndarray) -> np.ndarray:
    """Exact (erf) GELU, as ``torch.nn.GELU()``."""
    from scipy.special import erf

    return (0.5 * x * (1.0 + erf(x / np.float32(math.sqrt(2.0))))).astype(np.float32)


def layer_norm(x: np.ndarray, w: np.ndarray, b: np.ndarray, eps: float = 1e-5) -> np.ndarray:
    mu = x.mean(-1, keepdims=True)
    var = ((x - mu) ** 2).mean(-1, keepdims=True)
    return (x - mu) / np.sqrt(var + eps) * w + b


def conv1d(x: np.ndarray, w: np.ndarray, b: np.ndarray, stride: int = 1) -> np.ndarray:
    """``x`` (C_in, T), ``w`` (C_out, C_in, 3), padding 1 → (C_out, T_out)."""
    c_in, t = x.shape
    xp = np.pad(x, ((0, 0), (1, 1)))
    t_out = (t + 2 - 3) // stride + 1
    cols = np.stack([xp[:, k : k + stride * (t_out - 1) + 1 : stride] for k in range(3)], axis=1)
    # cols: (C_in, 3, T_out); weights flattened to (C_out, C_in*3)
    return w.reshape(w.shape[0], -1) @ cols.reshape(c_in * 3, t_out) + b[:, None]


def _linear(x: np.ndarray, wt: Weights, name: str) -> np.ndarray:
    y = x @ wt[f"{name}.weight"].T
    bias = wt.get(f"{name}.bias")
    return y if bias is None else y + bias


def attention(x: np.ndarray, wt: Weights, prefix: str, n_head: int) -> np.ndarray:
    """Multi-head self-attention over ``x`` (T, D)."""
    t, d = x.shape
    hd = d // n_head
    q = _linear(x, wt, f"{prefix}.query").reshape(t, n_head, hd).transpose(1, 0, 2)
    k = _linear(x, wt, f"{prefix}.key").reshape(t, n_head, hd).transpose(1, 0, 2)
    v = _linear(x, wt, f"{prefix}.value").reshape(t, n_head, hd).transpose(1, 0, 2)
    s = q @ k.transpose(0, 2, 1) / np.float32(math.sqrt(hd))
    s = np.exp(s - s.max(-1, keepdims=True))
    s /= s.sum(-1, keepdims=True)
    y = (s @ v).transpose(1, 0, 2).reshape(t, d)
    return _linear(y, wt, f"{prefix}.out")


def encoder_layers(
    mel: np.ndarray, wt: Weights, n_head: int, n_blocks: int | None = None
) -> list[np.ndarray]:
    """Hidden states ``(T', D)`` after the stem and after each of the first ``n_blocks`` blocks
    (the last one through ``ln_post`` when every block runs), as ``return_layers`` gives."""
    n_layer = 1 + max(int(k.split(".")[1]) for k in wt if k.startswith("blocks."))
    n_blocks = n_layer if n_blocks is None else n_blocks
    x = gelu(conv1d(mel.astype(np.float32), wt["conv1.weight"], wt["conv1.bias"]))
    x = gelu(conv1d(x, wt["conv2.weight"], wt["conv2.bias"], stride=2)).T  # (T', D)
    pos = wt.get("positional_embedding")
    if pos is None:
        pos = sinusoids(x.shape[0], x.shape[1])
    x = (x + pos[: x.shape[0]]).astype(np.float32)
    out = [x]
    for i in range(n_blocks):
        p = f"blocks.{i}"
        x = x + attention(
            layer_norm(x, wt[f"{p}.attn_ln.weight"], wt[f"{p}.attn_ln.bias"]),
            wt,
            f"{p}.attn",
            n_head,
        )
        h = layer_norm(x, wt[f"{p}.mlp_ln.weight"], wt[f"{p}.mlp_ln.bias"])
        h = _linear(gelu(_linear(h, wt, f"{p}.mlp.0")), wt, f"{p}.mlp.2")
        x = (x + h).astype(np.float32)
        out.append(x)
    if n_blocks == n_layer and "ln_post.weight" in wt:  # truncated encoders keep no ln_post
        out[-1] = layer_norm(x, wt["ln_post.weight"], wt["ln_post.bias"]).astype(np.float32)
    return out
