"""The int8 encoder graph (:mod:`emovox.inference.quantize`) and the ``onnx-int8`` backend."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

import emovox  # noqa: E402
from emovox.inference import engine, export, quantize  # noqa: E402
from emovox.inference.engine import load_bundle  # noqa: E402
from emovox.inference.export import cached_onnx  # noqa: E402
from emovox.inference.quantize import Int8Settings, cached_int8_onnx  # noqa: E402
from emovox.inference.random_bundle import make_random_bundle  # noqa: E402

SR = 16_000


def _voice(seconds: float, f0: float = 150.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * SR)) / SR
    y = sum(np.sin(2 * np.pi * f0 * h * t) / h for h in range(1, 6))
    y = y * (0.5 + 0.5 * np.sin(2 * np.pi * 3 * t) ** 2) + 0.01 * rng.standard_normal(len(t))
    return (0.3 * y / np.abs(y).max()).astype(np.float32)


@pytest.fixture
def folder(tmp_path):
    return make_random_bundle(tmp_path / "m", seed=3)


def test_int8_graph_is_made_once_beside_the_fp32_graph(folder, monkeypatch):
    path = cached_int8_onnx(folder)
    src = cached_onnx(folder)
    assert path.exists() and path.parent == src.parent and path != src
    assert path.stat().st_size < src.stat().st_size
    ops = {n.op_type for n in onnx.load(str(path)).graph.node}
    assert "MatMulInteger" in ops and "ConvInteger" not in ops  # MatMul only, by default
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temp left

    def no_rebuild(*args, **kwargs):
        raise AssertionError("quantized again")

    monkeypatch.setattr(quantize, "quantize_graph", no_rebuild)
    assert cached_int8_onnx(folder) == path  # cached: no second quantization
    with pytest.raises(AssertionError, match="quantized again"):  # other settings, other file
        cached_int8_onnx(folder, Int8Settings(per_channel=False))


def test_fp32_graph_is_exported_again_when_the_code_that_builds_it_changes(folder, monkeypatch):
    first = cached_onnx(folder)
    assert cached_onnx(folder) == first  # the same code: read back
    monkeypatch.setattr(export, "export_code_version", lambda: "another version")
    again = cached_onnx(folder)
    assert again != first and again.exists() and first.exists()


def test_convs_rewritten_as_matmuls_compute_the_same(folder, tmp_path):
    src = cached_onnx(folder)
    model = onnx.load(str(src))
    assert quantize.convs_as_matmuls(model) == 2  # Whisper's stem: stride 1, then stride 2
    assert "Conv" not in {n.op_type for n in model.graph.node}
    onnx.checker.check_model(model)
    onnx.save(model, str(tmp_path / "mm.onnx"))
    a = ort.InferenceSession(str(src), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(tmp_path / "mm.onnx"), providers=["CPUExecutionProvider"])
    name = a.get_inputs()[0].name
    rng = np.random.default_rng(0)
    for frames in (40, 57):  # even and odd lengths: the strided tap keeps the conv's length
        x = rng.standard_normal((1, a.get_inputs()[0].shape[1], frames)).astype(np.float32)
        np.testing.assert_allclose(b.run(None, {name: x})[0], a.run(None, {name: x})[0],
                                   rtol=1e-4, atol=1e-4)  # fmt: skip
    # the default int8 graph quantizes the stem too; without the rewrite its convs stay float
    ops = {n.op_type for n in onnx.load(str(cached_int8_onnx(folder))).graph.node}
    assert "Conv" not in ops
    plain = cached_int8_onnx(folder, Int8Settings(conv_as_matmul=False))
    assert "Conv" in {n.op_type for n in onnx.load(str(plain)).graph.node}


def test_settings_name_their_graph_and_are_checked(folder):
    src = cached_onnx(folder)
    names = {
        quantize.int8_path(src, s).name
        for s in (Int8Settings(), Int8Settings(per_channel=False), Int8Settings("QUInt8"))
    }
    assert len(names) == 3
    with pytest.raises(ValueError, match="weight_type"):
        Int8Settings("int4")


def test_int8_statistics_follow_fp32(folder):
    fp32 = load_bundle(folder, backend="onnx")
    int8 = load_bundle(folder, backend="onnx-int8")
    assert int8.backend == "onnx-int8"
    wavs = [_voice(0.8 + 0.3 * i, 100 + 25 * i, seed=i) for i in range(8)]
    F = np.stack([fp32.features(w) for w in wavs])
    Q = np.stack([int8.features(w) for w in wavs])
    rel = np.linalg.norm(Q - F, axis=1) / np.linalg.norm(F, axis=1)
    assert rel.max() < 0.05 and rel.min() > 0  # close, and really quantized
    # what tells the clips apart survives: their deviations from the mean clip agree
    Fc, Qc = F - F.mean(0), Q - Q.mean(0)
    assert (Fc * Qc).sum() / np.linalg.norm(Fc) / np.linalg.norm(Qc) > 0.99
    P, R = fp32.head_proba(F), int8.head_proba(Q)
    assert np.abs(P - R).max() < 0.01
    assert (P.argmax(1) == R.argmax(1)).mean() >= 0.75


def test_load_with_the_int8_backend_predicts(folder, tmp_path):
    wav = tmp_path / "clip.wav"
    sf.write(wav, _voice(1.5), SR)
    rec = emovox.load(folder, backend="onnx-int8", speech_gate=False)  # a tone stands in
    ref = emovox.load(folder, backend="onnx", speech_gate=False)
    assert rec.backend == "onnx-int8"
    p, q = rec.predict(str(wav)), ref.predict(str(wav))
    assert p.label in rec.labels
    got = np.array([p.probabilities[k] for k in rec.labels])
    want = np.array([q.probabilities[k] for k in rec.labels])
    assert np.abs(got - want).max() < 0.01
    with pytest.raises(ValueError, match="CPU only"):
        rec.to("cuda")


def test_int8_backend_names_missing_onnxruntime(folder, monkeypatch):
    monkeypatch.setattr(engine, "importable", lambda m: m != "onnxruntime")
    with pytest.raises(ImportError, match="'onnx-int8' needs onnxruntime"):
        load_bundle(folder, backend="onnx-int8")


def test_auto_is_int8_and_falls_back_to_fp32_without_onnx(folder, monkeypatch):
    assert load_bundle(folder).backend == "onnx-int8"  # the default, where it can be made
    monkeypatch.setattr(engine, "importable", lambda m: m != "onnx")
    assert load_bundle(folder).backend == "onnx"  # cannot quantize: the float32 graph
    monkeypatch.setattr(engine, "importable", lambda m: m not in ("onnx", "onnxruntime"))
    assert load_bundle(folder).backend == "torch"
