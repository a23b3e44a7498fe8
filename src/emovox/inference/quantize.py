"""Dynamic int8 quantization of a bundle's exported encoder graph (:mod:`emovox.inference.export`)
for the ``onnx-int8`` backend: :func:`quantize_graph`, and :func:`cached_int8_onnx` (made once
per fp32 graph and settings, kept beside it in the cache folder). Needs onnxruntime and onnx
(and torch, for the fp32 export it starts from).

Weights are stored as int8; activations are quantized per call from their observed range
(``onnxruntime.quantization.quantize_dynamic``), so no calibration data is needed. The default
(:data:`DEFAULT_INT8`): signed int8 weights, one scale per output channel, MatMul nodes only
(the convolutional stem stays float32: int8 convolutions were slower on the CPU).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

from emovox.inference.export import cached_onnx

#: Weight types :class:`Int8Settings` accepts (``onnxruntime.quantization.QuantType`` names).
WEIGHT_TYPES = ("QInt8", "QUInt8")


@dataclass(frozen=True)
class Int8Settings:
    """How the graph is quantized: ``weight_type`` (``"QInt8"`` or ``"QUInt8"``),
    ``per_channel`` (one weight scale per output channel, else per tensor) and ``op_types``
    (the node types to quantize; empty: every type onnxruntime quantizes dynamically)."""

    weight_type: str = "QInt8"
    per_channel: bool = True
    op_types: tuple[str, ...] = ("MatMul",)

    def __post_init__(self) -> None:
        if self.weight_type not in WEIGHT_TYPES:
            raise ValueError(
                f"weight_type must be one of {', '.join(WEIGHT_TYPES)}, got {self.weight_type!r}"
            )
        object.__setattr__(self, "op_types", tuple(self.op_types))

    def key(self) -> str:
        """A short hash of these settings and the onnxruntime version that applies them."""
        import onnxruntime

        blob = json.dumps(asdict(self) | {"ort": onnxruntime.__version__}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


#: The settings of the ``onnx-int8`` backend.
DEFAULT_INT8 = Int8Settings()


def quantize_graph(src: str | Path, out: str | Path, settings: Int8Settings = DEFAULT_INT8) -> Path:
    """Write the dynamically int8-quantized ``src`` graph to ``out`` (atomically: a temporary
    file in the same folder, then renamed)."""
    try:
        from onnxruntime.quantization import QuantType, quantize_dynamic
    except ImportError as exc:
        raise ImportError(
            f"int8 quantization needs onnxruntime and onnx: pip install onnxruntime onnx ({exc})"
        ) from exc

    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out.parent, prefix=f".{out.stem}.", suffix=".tmp")
    os.close(fd)
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)  # quantize_dynamic's advice to pre-process the graph
    try:
        quantize_dynamic(
            str(src),
            tmp,
            op_types_to_quantize=list(settings.op_types) or None,
            per_channel=settings.per_channel,
            weight_type=getattr(QuantType, settings.weight_type),
        )
        os.chmod(tmp, 0o644)  # mkstemp makes it private; the fp32 graph is world-readable
        os.replace(tmp, out)
    finally:
        logging.disable(previous)
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def file_digest(path: Path) -> str:
    """The first 16 hex digits of the SHA-1 of a file's bytes."""
    with open(path, "rb") as fh:
        return hashlib.file_digest(fh, "sha1").hexdigest()[:16]


def int8_path(src: Path, settings: Int8Settings = DEFAULT_INT8) -> Path:
    """Where the int8 graph of the fp32 graph ``src`` lives: beside it, named by a hash of
    ``src``'s bytes and of the settings."""
    blob = f"{file_digest(src)}|{settings.key()}".encode()
    return src.with_name(f"{src.stem}.int8-{hashlib.sha1(blob).hexdigest()[:16]}.onnx")


def cached_int8_onnx(folder: Path, settings: Int8Settings = DEFAULT_INT8) -> Path:
    """The int8 graph of the bundle in ``folder``: its fp32 graph (:func:`cached_onnx`)
    quantized on first use and kept beside it."""
    src = cached_onnx(folder)
    path = int8_path(src, settings)
    if not path.exists():
        quantize_graph(src, path, settings)
    return path
