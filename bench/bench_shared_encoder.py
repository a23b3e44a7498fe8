"""One Whisper encoder pass for both the emotion head and the transcript: what it would save,
on ONE CPU core. A measurement only; the product still runs two passes.

    python bench/bench_shared_encoder.py [--corpora DIR] [--rounds 3] [--quick]

Today ``predict(..., transcribe=True)`` runs Whisper tiny.en's encoder twice on a short clip:
the emotion model (:func:`emovox.load`, ONNX by default) on the preprocessed clip alone (silence
trimmed, loudness normalised), and faster-whisper's CTranslate2 encoder (int8) on the raw clip
plus 10 s of silence (:func:`emovox.text.window.fitted_segment`). Both hold the same weights
(the bundle's encoder is the CTranslate2 tiny.en's float16 tensors in float32).

The shared pass measured here: the bundle's torch encoder (all layers out, the last one after
``ln_post``; the ONNX graph only outputs pooled statistics) runs once on the preprocessed clip
plus 10 s of silence (faster-whisper's log-mel, the window ``fitted_segment`` uses); the
emotion statistics are pooled over the clip's encoder frames only and read by the bundle's head
(:meth:`emovox.inference.engine.EncoderHead.head_proba`, its domain score too); the last layer
goes to CTranslate2's ``generate`` and faster-whisper's ``find_alignment`` as
``fitted_segment`` does after its own encode.

On 48 CREMA-D clips (4 actors x 12 sentences, one emotion of ANG/NEU/SAD each, balanced), each
clip timed in ``--rounds`` interleaved rounds, its fastest kept (CPU time of this process):
(a) the emotion encoder pass and the whole emotion prediction, (b) the CTranslate2 encode and
the whole ``fitted_segment``, (c) the torch encoder on the fitted window and the whole shared
pass. Also: the largest difference between the torch last layer and CTranslate2's encoder output
on the same window (int8 as shipped, float32), WER of each transcript against the known
sentence, and how often the shared pass's emotion agrees with the normal one. Writes
``bench/results/shared_encoder.json`` and the ``shared-encoder-bench`` block of
``docs/text.md``.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import results_db  # noqa: E402
from bench_transcribe import EMOTIONS, SENTENCES, cpu_name, crema_clips, normalise, wer  # noqa: E402

from emovox.audio import preprocess  # noqa: E402
from emovox.audio.decode import SAMPLE_RATE as SR  # noqa: E402
from emovox.audio.decode import decode  # noqa: E402
from emovox.encoders.mel import HOP_LENGTH, log_mel_spectrogram  # noqa: E402
from emovox.features.pooling import pool_stats  # noqa: E402
from emovox.io import atomic_write_json, atomic_write_text  # noqa: E402
from emovox.text.segments import TextSegment  # noqa: E402
from emovox.text.window import PAD_SECONDS, decode_window, fitted_segment  # noqa: E402

MARKER = "shared-encoder-bench"
ANCHOR = "<!-- transcribe-bench:end -->"
INTRO = """### One encoder pass for emotion and text?

With `transcribe=True` a short clip goes through Whisper tiny.en's encoder twice: the emotion
model's (float32, ONNX) on the trimmed, loudness-normalised clip alone, and faster-whisper's
(int8, CTranslate2) on the raw clip plus 10 s of silence. `python bench/bench_shared_encoder.py`
measures a single pass instead: the emotion model's torch encoder run once on the preprocessed
clip plus 10 s, the emotion statistics pooled over the clip's frames only, and its last layer
handed to the decoder. It is a measurement; the product still runs both passes."""


def pick_clips(root: Path) -> list[dict]:
    """48 CREMA-D clips: 4 actors (2 female, 2 male) x 12 sentences, one emotion each, the
    emotion rotating with sentence and actor (16 per emotion)."""
    clips = crema_clips(root, 4)
    actors = sorted({c["actor"] for c in clips})
    sentences = list(SENTENCES)
    return [
        c
        for c in clips
        if EMOTIONS.index(c["emotion"])
        == (sentences.index(c["sentence"]) + actors.index(c["actor"])) % len(EMOTIONS)
    ]


def cpu(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> tuple[Any, float]:
    """``fn(*args)`` and its CPU seconds (this process)."""
    c = time.process_time()
    out = fn(*args, **kwargs)
    return out, time.process_time() - c


def fitted_features(model: Any, y: np.ndarray) -> np.ndarray:
    """The log-mel window of :func:`emovox.text.window.fitted_segment`: ``y`` plus
    :data:`PAD_SECONDS` of silence, faster-whisper's front end, an even number of frames,
    ``(1, n_mels, frames)``."""
    padded = np.pad(y.astype(np.float32, copy=False), (0, int(PAD_SECONDS * SR)))
    mel = model.feature_extractor(padded)
    frames = min(3000, mel.shape[-1] - 1)
    frames -= frames % 2
    return np.ascontiguousarray(mel[None, :, :frames])


class SharedPass:
    """The bundle's torch encoder run once for the emotion head and the decoder."""

    def __init__(self, engine: Any, model: Any) -> None:
        import torch

        from emovox.inference.backends import pooled_encoder_module
        from emovox.inference.bundle import read_bundle

        torch.set_num_threads(1)
        self.engine, self.model = engine, model
        self.config, weights, _head = read_bundle(engine.path)
        self.encoder = pooled_encoder_module(weights, self.config).encoder  # eval, float32

    def layers(self, features: np.ndarray) -> list[Any]:
        """Every hidden state (torch, ``(1, T, D)``) of a log-mel ``(1, n_mels, frames)``;
        the last after ``ln_post``."""
        import torch

        with torch.inference_mode():
            return self.encoder(torch.from_numpy(features), return_layers=True)

    def pooled(self, hs: list[Any], n_frames: int) -> np.ndarray:
        """The emotion statistics ``(F,)`` over the first ``n_frames`` encoder frames."""
        return pool_stats([hs[i][0, :n_frames] for i in self.config.layers], self.config.stats)

    def __call__(self, y: np.ndarray) -> tuple[np.ndarray, float | None, TextSegment | None]:
        """Emotion probabilities, domain score and transcript of a raw clip, one encoder pass."""
        import ctranslate2

        z = preprocess(y, self.engine.preprocess_cfg)
        hs = self.layers(fitted_features(self.model, z))
        n_frames = (len(z) // HOP_LENGTH + 1) // 2  # the encoder frames of the clip alone
        F = self.pooled(hs, n_frames)[None]
        P = self.engine.head_proba(F)[0]
        S = self.engine.domain_scores(F)
        encoded = ctranslate2.StorageView.from_array(np.ascontiguousarray(hs[-1].numpy()))
        seg = decode_window(self.model, encoded, len(z) / SR)
        return P, None if S is None else float(S[0]), seg


# ------------------------------------------------------------------------------ the run

STEPS = (
    "emotion_encoder_onnx",  # (a) the emotion path's encoder pass, clip alone (default backend)
    "emotion_encoder_torch",  # the same in torch (the backend a shared pass needs)
    "emotion_prediction",  # (a) engine.predict_with_domain: preprocess, log-mel, encoder, head
    "recognizer_predict",  # Recognizer.predict: adds input checks and the speech gate
    "ct2_encode",  # (b) CTranslate2 encode (int8) on the fitted window of the raw clip
    "fitted_segment",  # (b) the whole fitted-window transcription
    "shared_encoder",  # (c) the torch encoder on the fitted window of the preprocessed clip
    "onnx_window",  # the ONNX graph on that window: what a float32 ONNX shared encoder costs
    "shared_pass",  # (c) the whole shared pass: emotion + transcript
)


def measure(clips: list[dict], rounds: int) -> dict:
    import ctranslate2

    import emovox
    from emovox.inference.engine import load_bundle
    from emovox.text import Transcriber

    rec = emovox.load()
    engine = rec.engine
    torch_engine = load_bundle(engine.path, backend="torch", threads=1)
    model = Transcriber().model  # int8, one thread: the default transcriber
    model32 = Transcriber(compute_type="float32").model  # only for the numeric check
    shared = SharedPass(engine, model)
    audio = [decode(c["path"]) for c in clips]
    pre = [preprocess(y, engine.preprocess_cfg) for y in audio]
    mels = [log_mel_spectrogram(z) for z in pre]
    raw_windows = [fitted_features(model, y) for y in audio]
    pre_windows = [fitted_features(model, z) for z in pre]
    raw_views = [ctranslate2.StorageView.from_array(w) for w in raw_windows]

    def run_all(i: int) -> dict[str, tuple[Any, float]]:
        y = audio[i]
        return {
            "emotion_encoder_onnx": cpu(engine.pooled, mels[i]),
            "emotion_encoder_torch": cpu(torch_engine.pooled, mels[i]),
            "emotion_prediction": cpu(engine.predict_with_domain, [y]),
            "recognizer_predict": cpu(rec.predict, y, sr=SR),
            "ct2_encode": cpu(model.model.encode, raw_views[i]),
            "fitted_segment": cpu(fitted_segment, model, y),
            "shared_encoder": cpu(shared.layers, pre_windows[i]),
            "onnx_window": cpu(engine.pooled, pre_windows[i][0]),
            "shared_pass": cpu(shared, y),
        }

    run_all(0)  # load and warm up everything
    times = {s: [float("inf")] * len(clips) for s in STEPS}
    first: list[dict[str, tuple[Any, float]]] = []
    for r in range(rounds):
        for i in range(len(clips)):
            out = run_all(i)
            if r == 0:
                first.append(out)
            for s in STEPS:
                times[s][i] = min(times[s][i], out[s][1])
        print(f"round {r + 1}/{rounds} done", flush=True)

    per_clip = []
    diffs = {"int8": 0.0, "float32": 0.0, "float32_before_ln_post": 0.0, "scale": 0.0}
    rel: dict[str, list[float]] = {"int8": [], "float32": []}
    for i, c in enumerate(clips):
        out = first[i]
        P0 = np.asarray(out["emotion_prediction"][0][0][0], dtype=np.float64)
        P1, S1, seg1 = out["shared_pass"][0]
        seg0 = out["fitted_segment"][0]
        # the torch encoder on the same window as CTranslate2's encode (the preprocessed clip)
        hs = shared.layers(pre_windows[i])
        last, before = hs[-1][0].numpy(), hs[-2][0].numpy()
        sv = ctranslate2.StorageView.from_array(pre_windows[i])
        e8 = np.asarray(model.model.encode(sv))[0]
        e32 = np.asarray(model32.model.encode(sv))[0]
        diffs["int8"] = max(diffs["int8"], float(np.abs(e8 - last).max()))
        diffs["float32"] = max(diffs["float32"], float(np.abs(e32 - last).max()))
        diffs["float32_before_ln_post"] = max(
            diffs["float32_before_ln_post"], float(np.abs(e32 - before).max())
        )
        diffs["scale"] = max(diffs["scale"], float(np.abs(last).max()))
        rel["int8"].append(float(np.linalg.norm(e8 - last) / np.linalg.norm(last)))
        rel["float32"].append(float(np.linalg.norm(e32 - last) / np.linalg.norm(last)))
        # the shared pooling on the clip alone: must reproduce the product's statistics
        alone = shared.layers(mels[i][None])
        F_alone = shared.pooled(alone, alone[0].shape[1])
        F_prod = engine.features(audio[i])
        seg_pre = fitted_segment(model, pre[i])  # the normal path fed the preprocessed clip
        F_pad = shared.pooled(hs, (len(pre[i]) // HOP_LENGTH + 1) // 2)
        per_clip.append(
            {
                "clip": Path(c["path"]).name,
                "seconds": round(len(audio[i]) / SR, 3),
                "seconds_preprocessed": round(len(pre[i]) / SR, 3),
                "text_fitted": None if seg0 is None else seg0.text,
                "text_shared": None if seg1 is None else seg1.text,
                "text_fitted_preprocessed": None if seg_pre is None else seg_pre.text,
                "label": engine.labels[int(P0.argmax())],
                "label_shared": engine.labels[int(P1.argmax())],
                "max_prob_diff": float(np.abs(P1 - P0).max()),
                "domain_score": out["emotion_prediction"][0][1][0].item()
                if out["emotion_prediction"][0][1] is not None
                else None,
                "domain_score_shared": S1,
                "stats_rel_diff": float(np.linalg.norm(F_pad - F_prod) / np.linalg.norm(F_prod)),
                "stats_alone_vs_product_max_abs": float(np.abs(F_alone - F_prod).max()),
                "ms": {s: round(1000 * times[s][i], 2) for s in STEPS},
            }
        )
    return {
        "per_clip": per_clip,
        "encoder_output_max_abs_diff": {k: round(v, 5) for k, v in diffs.items()},
        "encoder_output_rel_diff_median": {k: float(np.median(v)) for k, v in rel.items()},
        "labels": list(engine.labels),
        "backend": engine.backend,
    }


def summarise(clips: list[dict], m: dict, rounds: int) -> dict:
    import ctranslate2
    import faster_whisper
    import torch

    rows = m["per_clip"]
    n = len(rows)
    ms = {s: [r["ms"][s] for r in rows] for s in STEPS}
    mean = {s: round(float(np.mean(v)), 1) for s, v in ms.items()}
    median = {s: round(float(np.median(v)), 1) for s, v in ms.items()}
    separate = [r["ms"]["emotion_prediction"] + r["ms"]["fitted_segment"] for r in rows]
    saved = [a - r["ms"]["shared_pass"] for a, r in zip(separate, rows, strict=True)]
    enc_sep = [r["ms"]["emotion_encoder_onnx"] + r["ms"]["ct2_encode"] for r in rows]
    enc_saved = [a - r["ms"]["shared_encoder"] for a, r in zip(enc_sep, rows, strict=True)]
    refs = [SENTENCES[c["sentence"]] for c in clips]

    def text_scores(key: str) -> dict:
        kept = [i for i, r in enumerate(rows) if r[key] is not None]
        both = [i for i in kept if all(rows[i][k] is not None for k in TEXT_KEYS)]
        return {
            "kept": len(kept),
            "unsure": n - len(kept),
            "wer_kept": round(wer([refs[i] for i in kept], [rows[i][key] for i in kept]), 4),
            "wer_all_kept_by_each": round(
                wer([refs[i] for i in both], [rows[i][key] for i in both]), 4
            ),
            "exact": sum(normalise(rows[i][key]) == normalise(refs[i]) for i in kept),
        }

    same_text = sum(
        r["text_shared"] is not None
        and r["text_fitted"] is not None
        and normalise(r["text_shared"]) == normalise(r["text_fitted"])
        for r in rows
    )
    return {
        "clips": n,
        "audio_seconds": round(sum(r["seconds"] for r in rows), 1),
        "rounds": rounds,
        "actors": len({c["actor"] for c in clips}),
        "emotions": {e: sum(c["emotion"] == e for c in clips) for e in EMOTIONS},
        "backend": m["backend"],
        "ms_mean": mean,
        "ms_median": median,
        "separate_ms_mean": round(float(np.mean(separate)), 1),
        "saved_ms_mean": round(float(np.mean(saved)), 1),
        "saved_ms_median": round(float(np.median(saved)), 1),
        "saved_share": round(float(np.sum(saved) / np.sum(separate)), 3),
        "encoders_separate_ms_mean": round(float(np.mean(enc_sep)), 1),
        "encoder_saved_ms_mean": round(float(np.mean(enc_saved)), 1),
        "text": {k: text_scores(k) for k in TEXT_KEYS},
        "same_text_shared_vs_fitted": same_text,
        "kept_by_both": sum(
            r["text_shared"] is not None and r["text_fitted"] is not None for r in rows
        ),
        "emotion_agree": sum(r["label"] == r["label_shared"] for r in rows),
        "emotion_max_prob_diff": round(max(r["max_prob_diff"] for r in rows), 4),
        "emotion_median_max_prob_diff": round(
            float(np.median([r["max_prob_diff"] for r in rows])), 4
        ),
        "stats_rel_diff_median": round(float(np.median([r["stats_rel_diff"] for r in rows])), 4),
        "pooling_check_max_abs": float(max(r["stats_alone_vs_product_max_abs"] for r in rows)),
        "encoder_output_max_abs_diff": m["encoder_output_max_abs_diff"],
        "encoder_output_rel_diff_median": m["encoder_output_rel_diff_median"],
        "onnx_window_saved_ms_mean": round(
            float(
                np.mean(
                    [
                        r["ms"]["emotion_encoder_onnx"]
                        + r["ms"]["ct2_encode"]
                        - r["ms"]["onnx_window"]
                        for r in rows
                    ]
                )
            ),
            1,
        ),  # fmt: skip
        "machine": f"{cpu_name()}, {os.cpu_count()} CPUs",
        "versions": {
            "faster_whisper": faster_whisper.__version__,
            "ctranslate2": ctranslate2.__version__,
            "torch": torch.__version__.split("+")[0],
        },
    }


TEXT_KEYS = ("text_fitted", "text_shared", "text_fitted_preprocessed")


def render(s: dict) -> str:
    a, md = s["ms_mean"], s["ms_median"]
    d = s["encoder_output_max_abs_diff"]
    rd = s["encoder_output_rel_diff_median"]
    t = s["text"]

    def row(what: str, key: str) -> str:
        return f"| {what} | {a[key]} | {md[key]} |"

    def delta(ms: float) -> str:
        """A saving (positive) or an extra cost (negative), in words."""
        return f"saves {ms:.1f} ms" if ms > 0 else f"costs {-ms:.1f} ms more"

    lines = [
        f"CREMA-D: {s['clips']} clips ({s['actors']} actors, 12 sentences, "
        + ", ".join(f"{k} {v}" for k, v in s["emotions"].items())
        + f"), {s['audio_seconds']} s of audio. One CPU thread; each clip timed in "
        f"{s['rounds']} interleaved rounds, its fastest kept (CPU time of the process).",
        "",
        "| step | CPU ms per clip (mean) | median |",
        "|---|---|---|",
        row("(a) emotion encoder, clip alone (ONNX, the default backend)", "emotion_encoder_onnx"),
        row("(a) same encoder in torch", "emotion_encoder_torch"),
        row(
            "(a) whole emotion prediction (preprocess, log-mel, encoder, head)",
            "emotion_prediction",
        ),  # fmt: skip
        row("`Recognizer.predict` (adds input checks, speech gate)", "recognizer_predict"),
        row("(b) CTranslate2 encode (int8), clip + 10 s", "ct2_encode"),
        row("(b) whole `fitted_segment` (encode, decode, word times)", "fitted_segment"),
        row("(c) torch encoder, preprocessed clip + 10 s, every layer", "shared_encoder"),
        row("(c) whole shared pass (emotion + transcript)", "shared_pass"),
        row("for scale: the ONNX encoder on that window", "onnx_window"),
        "",
        f"Two passes, (a) + (b): {s['separate_ms_mean']} ms per clip; one shared pass "
        f"{delta(s['saved_ms_mean'])} per clip (median {delta(s['saved_ms_median'])}; "
        f"{-s['saved_share']:+.0%} on the two passes). Encoders alone: "
        f"{s['encoders_separate_ms_mean']} ms for ONNX on the clip + int8 CTranslate2 on "
        f"the window, against {a['shared_encoder']} ms for the float32 torch encoder on the "
        f"window. With a float32 ONNX encoder on the window instead ({a['onnx_window']} ms) "
        f"one pass {delta(s['onnx_window_saved_ms_mean'])} on the encoders. The most "
        f"a shared pass could save is the emotion encoder pass ({a['emotion_encoder_onnx']} "
        "ms), and only with an encoder as fast on the window as int8 CTranslate2.",
        "",
        "| transcript | kept (sure) | WER of kept | WER, clips all three kept | exact |",
        "|---|---|---|---|---|",
    ]
    names = {
        "text_fitted": "`fitted_segment` on the raw clip (today)",
        "text_shared": "shared pass (torch encoder, preprocessed clip)",
        "text_fitted_preprocessed": "`fitted_segment` on the preprocessed clip",
    }
    for k, name in names.items():
        r = t[k]
        lines.append(
            f"| {name} | {r['kept']}/{s['clips']} | {r['wer_kept']:.3f} | "
            f"{r['wer_all_kept_by_each']:.3f} | {r['exact']} |"
        )
    lines += [
        "",
        f"Same text (after normalising) from the shared pass as today: "
        f"{s['same_text_shared_vs_fitted']} of the {s['kept_by_both']} clips both kept. "
        f"Emotion from the shared pass (statistics pooled over the clip's frames of the padded "
        f"window) agrees with today's prediction on {s['emotion_agree']}/{s['clips']} clips; "
        f"largest probability difference {s['emotion_max_prob_diff']:.3f} (median per clip "
        f"{s['emotion_median_max_prob_diff']:.3f}); pooled statistics differ by "
        f"{s['stats_rel_diff_median']:.1%} (median relative norm): the clip's frames also attend "
        f"to the 10 s of silence. Check: the same torch pooling on the clip alone reproduces "
        f"today's statistics to {s['pooling_check_max_abs']:.1e}.",
        "",
        "Encoder outputs on the same window: the torch encoder's last layer (after `ln_post`) "
        f"differs from CTranslate2's by at most {d['float32']:.3f} in float32 and "
        f"{d['int8']:.3f} in int8 (the shipped setting); values reach {d['scale']:.1f}, and "
        f"the median relative difference (norm of the difference over the norm) is "
        f"{rd['float32']:.1e} in float32, {rd['int8']:.1e} in int8. "
        f"Before `ln_post` the difference is {d['float32_before_ln_post']:.1f}, so CTranslate2's "
        "output includes it.",
        "",
        f"Machine: {s['machine']}; faster-whisper {s['versions']['faster_whisper']}, "
        f"ctranslate2 {s['versions']['ctranslate2']}, torch {s['versions']['torch']}; emotion "
        f"backend {s['backend']}.",
    ]
    return "\n".join(lines)


def ensure_block(doc: Path) -> None:
    """Add the introduction and an empty ``shared-encoder-bench`` block after the
    transcription block of ``doc``, once."""
    text = doc.read_text()
    if f"<!-- {MARKER}:begin -->" in text:
        return
    if ANCHOR not in text:
        raise ValueError(f"{doc} has no {ANCHOR}")
    block = f"{ANCHOR}\n\n{INTRO}\n\n<!-- {MARKER}:begin -->\n<!-- {MARKER}:end -->"
    atomic_write_text(doc, text.replace(ANCHOR, block, 1))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds (fastest kept)")
    ap.add_argument("--quick", action="store_true", help="8 clips, 1 round, writes nothing")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "shared_encoder.json")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "text.md")
    args = ap.parse_args()
    clips = pick_clips(args.corpora)
    rounds = args.rounds
    if args.quick:
        clips, rounds = clips[::6], 1
    print(f"{len(clips)} CREMA-D clips", flush=True)
    m = measure(clips, rounds)
    summary = summarise(clips, m, rounds)
    print(render(summary))
    if not args.quick:
        atomic_write_json(args.out, {"summary": summary, "per_clip": m["per_clip"]})
        ensure_block(args.docs)
        results_db.write_section(args.docs, MARKER, render(summary))


if __name__ == "__main__":
    main()
