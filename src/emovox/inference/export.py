"""A bundle's encoder and pooling as an ONNX graph: :func:`export_onnx`, and
:func:`cached_onnx` (exported once per bundle, kept in the cache folder, for the ``onnx``
backend). Exporting needs torch."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

from emovox.inference.backends import pooled_encoder_module
from emovox.inference.bundle import MODEL_FILE, bundle_path, read_bundle
from emovox.io import cache_dir


def export_onnx(bundle: str | Path | None, out: str | Path) -> Path:
    """Write the bundle's encoder + pooling as an ONNX graph (input ``mel`` (1, n_mels, T),
    output ``pooled`` (1, F)); needs torch. The head stays in ``model.json``/safetensors."""
    import torch

    folder = bundle_path(bundle)
    cfg, weights, _ = read_bundle(folder)
    module = pooled_encoder_module(weights, cfg)
    mel = torch.zeros(1, cfg.dims["n_mels"], 300)
    return write_onnx(module, mel, out, "mel", "pooled", {"mel": {2: "frames"}})


def write_onnx(
    module: Any, example: Any, out: str | Path, input_name: str, output_name: str,
    dynamic_axes: dict[str, dict[int, str]],
) -> Path:  # fmt: skip
    """Export a torch ``module`` (one input like ``example``, one output) to ``out`` atomically:
    opset 17, the TorchScript exporter, its warnings silenced."""
    import torch

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            module,
            (example,),
            str(tmp),
            input_names=[input_name],
            output_names=[output_name],
            dynamic_axes=dynamic_axes,
            opset_version=17,
            dynamo=False,
        )
    os.replace(tmp, out)
    return out


def cached_onnx(folder: Path) -> Path:
    """The ONNX graph of the bundle in ``folder``, exported on first use into the cache folder
    (named by a hash of the bundle's weights)."""
    digest = hashlib.sha1((folder / MODEL_FILE).read_bytes()).hexdigest()[:16]
    path = cache_dir() / "onnx" / f"{digest}.onnx"
    if not path.exists():
        export_onnx(folder, path)
    return path
