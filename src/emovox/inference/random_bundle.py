"""A tiny bundle with random weights, for tests, examples and benchmarks (predictions are
noise): :func:`make_random_bundle`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from emovox.inference.bundle import BundleConfig, write_bundle


def make_random_bundle(
    path: str | Path,
    labels: Sequence[str] = ("neutral", "happy", "sad", "angry"),
    seed: int = 0,
    n_state: int = 64,
    n_head: int = 2,
    n_layer: int = 2,
) -> Path:
    """A tiny bundle with random weights (for tests and examples; predictions are noise)."""
    rng = np.random.default_rng(seed)
    d = n_state
    state: dict[str, np.ndarray] = {
        "conv1.weight": rng.normal(0, 0.1, (d, 80, 3)),
        "conv1.bias": np.zeros(d),
        "conv2.weight": rng.normal(0, 0.05, (d, d, 3)),
        "conv2.bias": np.zeros(d),
        "ln_post.weight": np.ones(d),
        "ln_post.bias": np.zeros(d),
    }
    for i in range(n_layer):
        p = f"blocks.{i}"
        for name in ("query", "key", "value", "out"):
            state[f"{p}.attn.{name}.weight"] = rng.normal(0, 0.05, (d, d))
            if name != "key":
                state[f"{p}.attn.{name}.bias"] = np.zeros(d)
        state[f"{p}.attn_ln.weight"] = np.ones(d)
        state[f"{p}.attn_ln.bias"] = np.zeros(d)
        state[f"{p}.mlp_ln.weight"] = np.ones(d)
        state[f"{p}.mlp_ln.bias"] = np.zeros(d)
        state[f"{p}.mlp.0.weight"] = rng.normal(0, 0.05, (4 * d, d))
        state[f"{p}.mlp.0.bias"] = np.zeros(4 * d)
        state[f"{p}.mlp.2.weight"] = rng.normal(0, 0.05, (d, 4 * d))
        state[f"{p}.mlp.2.bias"] = np.zeros(d)
    layers = list(range(n_layer + 1))
    n_feat = len(layers) * 2 * d
    head = {
        "mean": np.zeros(n_feat),
        "scale": np.ones(n_feat),
        "weight": rng.normal(0, 0.5, (len(labels), n_feat)) / math.sqrt(n_feat),
        "bias": np.zeros(len(labels)),
    }
    cfg = BundleConfig(
        labels=list(labels),
        layers=layers,
        dims={"n_mels": 80, "n_ctx": 1500, "n_state": d, "n_head": n_head, "n_layer": n_layer},
        card={"name": "random-test-model", "note": "random weights: predictions are noise"},
    )
    return write_bundle(path, cfg, state, head)
