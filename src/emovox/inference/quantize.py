"""Dynamic int8 quantization of a bundle's exported encoder graph (:mod:`emovox.inference.export`)
for the ``onnx-int8`` backend: :func:`quantize_graph`, and :func:`cached_int8_onnx` (made once
per fp32 graph and settings, kept beside it in the cache folder). Needs onnxruntime and onnx
(and torch, for the fp32 export it starts from).

Weights are stored as int8; activations are quantized per call from their observed range
(``onnxruntime.quantization.quantize_dynamic``), so no calibration data is needed. The default
(:data:`DEFAULT_INT8`): signed int8 weights, one scale per output channel, MatMul nodes only
(onnxruntime's int8 convolutions were slower than float32 ones on the CPU). ``conv_as_matmul``
(the default) first rewrites each kernel-3 convolution of the stem as one matrix product over
its three shifted inputs (:func:`convs_as_matmuls`; the same function), so the stem is
quantized like the rest: about 1.5 ms less per 3 s clip (12.9 -> 11.3 ms for the encoder on
this project's machine); accuracy in ``bench/int8_accuracy.py``'s rows of docs/results.json.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from emovox.inference.export import cached_onnx

#: Weight types :class:`Int8Settings` accepts (``onnxruntime.quantization.QuantType`` names).
WEIGHT_TYPES = ("QInt8", "QUInt8")


@dataclass(frozen=True)
class Int8Settings:
    """How the graph is quantized: ``weight_type`` (``"QInt8"`` or ``"QUInt8"``),
    ``per_channel`` (one weight scale per output channel, else per tensor), ``op_types``
    (the node types to quantize; empty: every type onnxruntime quantizes dynamically) and
    ``conv_as_matmul`` (rewrite the kernel-3 convolutions as matrix products first)."""

    weight_type: str = "QInt8"
    per_channel: bool = True
    op_types: tuple[str, ...] = ("MatMul",)
    conv_as_matmul: bool = True

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


def _conv_params(node: Any) -> int | None:
    """The stride of a Conv node this rewrite handles (1-D, kernel 3, padding 1, one group, no
    dilation), else None."""
    from onnx import helper

    if node.op_type != "Conv" or len(node.input) != 3:
        return None
    a = {x.name: helper.get_attribute_value(x) for x in node.attribute}
    if a.get("kernel_shape") != [3] or a.get("pads") != [1, 1] or a.get("group", 1) != 1:
        return None
    if a.get("dilations", [1]) != [1] or len(a.get("strides", [1])) != 1:
        return None
    return int(a.get("strides", [1])[0])


def convs_as_matmuls(model: Any) -> int:
    """Rewrite, in place, each 1-D kernel-3 Conv (padding 1, any stride) of an ONNX ``model``
    as Pad → three strided Slices → Concat → MatMul →
    Add (the same function, channels moved last and back), so dynamic quantization reaches it.
    Weight and bias must be constants (initializers, Constant nodes or their Identity copies).
    Returns how many were rewritten."""
    import numpy as np
    from onnx import helper, numpy_helper

    graph = model.graph
    known = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for n in graph.node:  # exporters give some parameters as Constant nodes or shared copies
        if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value":
            known[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
        elif n.op_type == "Identity" and n.input[0] in known:
            known[n.output[0]] = known[n.input[0]]
    nodes: list[Any] = []
    added: list[Any] = []
    done = 0
    for node in graph.node:
        stride = _conv_params(node)
        if stride is None or node.input[1] not in known or node.input[2] not in known:
            nodes.append(node)
            continue
        x, w_name, b_name = node.input
        w = known[w_name]
        c_out, c_in, k = w.shape
        p = f"conv_mm{done}"

        def const(name: str, values: Any, dtype: Any = np.int64, p: str = p) -> str:
            added.append(numpy_helper.from_array(np.asarray(values, dtype), f"{p}_{name}"))
            return f"{p}_{name}"

        flat = np.ascontiguousarray(w.transpose(2, 1, 0).reshape(k * c_in, c_out))
        weight = const("w", flat, w.dtype)
        bias = const("b", known[b_name], w.dtype)
        pads, axis, step = (
            const("pads", [0, 0, 1, 0, 0, 1]),
            const("axis", [2]),
            const("step", [stride]),
        )
        nodes.append(helper.make_node("Pad", [x, pads], [f"{p}_padded"], mode="constant"))
        taps = []
        for t in range(3):  # tap t: padded[t :: stride], as long as the input (before striding)
            end = const(f"end{t}", [t - 2 if t < 2 else 2**62])
            start = const(f"start{t}", [t])
            nodes.append(helper.make_node("Slice", [f"{p}_padded", start, end, axis, step],
                                          [f"{p}_tap{t}"]))  # fmt: skip
            taps.append(f"{p}_tap{t}")
        nodes.append(helper.make_node("Concat", taps, [f"{p}_cols"], axis=1))
        nodes.append(helper.make_node("Transpose", [f"{p}_cols"], [f"{p}_rows"], perm=[0, 2, 1]))
        nodes.append(helper.make_node("MatMul", [f"{p}_rows", weight], [f"{p}_mm"]))
        nodes.append(helper.make_node("Add", [f"{p}_mm", bias], [f"{p}_out"]))
        nodes.append(helper.make_node("Transpose", [f"{p}_out"], [node.output[0]], perm=[0, 2, 1]))
        done += 1
    if done:
        used = {i for n in nodes for i in n.input}
        keep = [t for t in graph.initializer if t.name in used]
        del graph.node[:]
        graph.node.extend(nodes)
        del graph.initializer[:]
        graph.initializer.extend(keep + added)
    return done


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
        if settings.conv_as_matmul:
            import onnx

            model = onnx.load(str(src))
            if convs_as_matmuls(model):
                src = Path(tmp).with_suffix(".convs.onnx")
                onnx.save(model, str(src))
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
        for left in (tmp, str(Path(tmp).with_suffix(".convs.onnx"))):
            if os.path.exists(left):
                os.unlink(left)
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
