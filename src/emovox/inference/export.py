"""A bundle's encoder and pooling as an ONNX graph: :func:`export_onnx`, and
:func:`cached_onnx` (exported once per bundle, kept in the cache folder, for the ``onnx``
backend). Exporting needs torch."""

from __future__ import annotations

import hashlib
import os
import warnings
from pathlib import Path
from typing import Any

from emovox.features.code_version import source_version
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


#: The modules whose source shapes the exported graph (with :func:`pooled_encoder_module`).
EXPORT_MODULES = ("emovox.inference.export", "emovox.encoders.whisper", "emovox.features.pooling")


def export_code_version() -> str:
    """A hash of the code that builds the exported graph: a change to it (say, how pooling is
    written) makes :func:`cached_onnx` export again instead of reading an older graph back."""
    return source_version(EXPORT_MODULES, (pooled_encoder_module,))


def cached_onnx(folder: Path) -> Path:
    """The ONNX graph of the bundle in ``folder``, exported on first use into the cache folder
    (named by a hash of the bundle's weights and of :func:`export_code_version`)."""
    h = hashlib.sha1((folder / MODEL_FILE).read_bytes())
    h.update(export_code_version().encode())
    path = cache_dir() / "onnx" / f"{h.hexdigest()[:16]}.onnx"
    if not path.exists():
        export_onnx(folder, path)
    return path
