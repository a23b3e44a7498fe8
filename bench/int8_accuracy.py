"""The bundled model's encoder graph in float32 vs int8 (the ``onnx-int8`` backend,
:mod:`emovox.inference.quantize`): does quantization cost accuracy?

    python bench/int8_accuracy.py [--corpora ravdess,tess,savee,crema_d] [--model DIR]
                                  [--results-json PATH] [--no-db]
    python bench/int8_accuracy.py --parity 40

Accuracy (default): the bundled recipe (:func:`emovox.inference.build.build_default_model`: every
layer's mean+std, standardised logistic regression with its C, speaker 5-fold over all clips of
the corpora, labels paper7), on embeddings from the bundle's fp32 ONNX graph and from its int8
graph, on the SAME folds (one split, made once). Three rows go to docs/results.json (through
``bench/results_db.py``):

- ``... fp32``: heads trained and tested on fp32 embeddings (the ``onnx`` backend);
- ``... int8``: heads trained and tested on int8 embeddings;
- ``... fp32 head on int8``: heads trained on fp32 embeddings, tested on the test speakers' int8
  embeddings: what the shipped head sees with ``backend="onnx-int8"``.

Each row also carries per-corpus UA and how often its predictions agree with the fp32 row's.
Embeddings are cached per clip (``$EMOVOX_CACHE/features``), keyed by the graph's bytes, the
embedding code version and the preprocessing, so a rerun only re-fits the heads. The first run
encodes every clip twice (fp32 and int8), on one core.

``--protocol loco``: leave one corpus out over the seven corpora; the bundled recipe's head
trained on the other six corpora's fp32 embeddings and tested on the held-out corpus's fp32 and
int8 embeddings (the shipped head with ``backend="onnx-int8"``), one row per corpus and graph.

``--parity N``: N CREMA-D clips (actors 1001-1079; the int8 settings were picked on a few clips
of actors 1080-1091), one thread, fp32 vs int8 interleaved clip by clip: label agreement of the
bundled model, the largest probability difference, and CPU time (``time.process_time``) per clip
for the encoder alone and for preprocess + log-mel + encoder + head (decoding excluded), with
the reference workload of ``bench/bench_predict.py`` measured in the same run. Prints JSON;
writes nothing.
"""

from __future__ import annotations

import argparse
import glob
import hashlib
import inspect
import json
import os
import shlex
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import results_db  # noqa: E402

from emovox.audio import Preprocess, decode, preprocess  # noqa: E402
from emovox.encoders.mel import log_mel_spectrogram, split_chunks  # noqa: E402
from emovox.evaluation.config import read_config  # noqa: E402
from emovox.features.cache import CacheEntry, FeatureCache  # noqa: E402
from emovox.features.decode_loop import load_clip  # noqa: E402
from emovox.features.embeddings import embedding_code_version  # noqa: E402
from emovox.features.pooling import merge_chunk_stats  # noqa: E402
from emovox.inference.backends import Encoder, OnnxEncoder  # noqa: E402
from emovox.inference.build import build_default_model, fit_head  # noqa: E402
from emovox.inference.bundle import BundleConfig, bundle_path, read_bundle  # noqa: E402
from emovox.inference.export import cached_onnx  # noqa: E402
from emovox.inference.quantize import cached_int8_onnx, file_digest  # noqa: E402
from emovox.io import cache_dir, corpora_root  # noqa: E402
from emovox.progress import progress_bar  # noqa: E402

FOUR = ["ravdess", "tess", "savee", "crema_d"]
SECTION = "Bundled model: fp32 vs int8 encoder graph (onnx-int8 backend)"
#: the recipe's settings, read from build_default_model's defaults so they cannot drift
RECIPE = {
    k: v.default
    for k, v in inspect.signature(build_default_model).parameters.items()
    if k in ("labels", "encoder", "C", "k", "seed")
}


@dataclass(frozen=True)
class GraphEmbedding:
    """The cache settings of pooled statistics from one ONNX graph (for :class:`FeatureCache`):
    the graph's bytes, the layers and statistics it pools."""

    graph: str  # file_digest of the .onnx file
    layers: tuple[int, ...]
    stats: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        return {"graph": self.graph, "layers": list(self.layers), "stats": list(self.stats)}

    def code_version(self) -> str:
        return embedding_code_version()

    def key(self) -> str:
        blob = json.dumps(self.to_dict() | {"code": self.code_version()}, sort_keys=True)
        return "onnx-" + hashlib.sha1(blob.encode()).hexdigest()[:12]


def pooled_of(y: np.ndarray, encoder: Encoder, cfg: BundleConfig) -> np.ndarray:
    """Pooled statistics of a preprocessed waveform, as
    :meth:`emovox.inference.engine.EncoderHead.features` computes them after preprocessing."""
    parts = split_chunks(y)
    pooled = [encoder.pooled(log_mel_spectrogram(c)) for c in parts]
    return merge_chunk_stats(pooled, [len(c) for c in parts], len(cfg.layers), cfg.stats)


def embed_all(
    paths: list[str], graph: Path, cfg: BundleConfig, pre: Preprocess, tag: str
) -> tuple[list[np.ndarray | None], list[str | None], int]:
    """Pooled statistics of every clip with the graph at ``graph`` (cached per clip): rows
    (None where a clip failed), content hashes, and how many came from the cache."""
    encoder = OnnxEncoder(graph, threads=1)
    settings = GraphEmbedding(file_digest(graph), tuple(cfg.layers), tuple(cfg.stats))
    cache = FeatureCache(cache_dir() / "features")
    rows: list[np.ndarray | None] = [None] * len(paths)
    hashes: list[str | None] = [None] * len(paths)
    cached = 0
    with progress_bar(True) as bar:
        task = bar.add_task(tag, total=len(paths))
        for i, p in enumerate(paths):
            bar.advance(task)
            entry, fh = cache.lookup(p, settings, pre)  # type: ignore[arg-type]
            if entry is not None:
                rows[i], hashes[i] = entry.vector, entry.content_hash
                cached += 1
                continue
            out = load_clip(p, pre, lambda y, _h: pooled_of(y, encoder, cfg), step="embedding")
            if out.error is not None:
                print(f"skipped {p}: {out.error}", file=sys.stderr)
                continue
            rows[i], hashes[i] = out.value, out.content_hash
            if fh is not None:
                new = CacheEntry(out.value, out.content_hash, out.duration)
                cache.put(fh, settings, pre, new)  # type: ignore[arg-type]
    return rows, hashes, cached


def embedded(args: argparse.Namespace) -> dict:
    """fp32 and int8 embeddings of every clip of ``args.corpora`` (paper7), cached per clip,
    with the clips' labels, speakers and corpora (clips either graph could not embed dropped)."""
    from emovox.evaluation.experiment import ExperimentConfig, resolve_labels, scan

    folder = bundle_path(args.model)
    cfg, _, _ = read_bundle(folder)
    pre = Preprocess(**cfg.preprocess)
    corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
    manifest = scan(ExperimentConfig(corpora=corpora, roots=[str(corpora_root())]))
    kept, _ = manifest.restrict(resolve_labels(RECIPE["labels"], manifest))
    clips = kept.clips
    paths = [c.path for c in clips]
    graphs = {"fp32": cached_onnx(folder), "int8": cached_int8_onnx(folder)}
    emb = {v: embed_all(paths, g, cfg, pre, v) for v, g in graphs.items()}
    ok = np.array([all(emb[v][0][i] is not None for v in emb) for i in range(len(paths))])
    X = {v: np.stack([r for r, good in zip(emb[v][0], ok, strict=True) if good]) for v in emb}
    hashes = [h for h, good in zip(emb["fp32"][1], ok, strict=True) if good]
    used = [c for c, good in zip(clips, ok, strict=True) if good]
    y = np.array([c.emotion for c in used], dtype=object)
    speakers = np.array([c.speaker for c in used], dtype=object)
    corp = np.array([c.corpus for c in used], dtype=object)
    present = [lab for lab in resolve_labels(RECIPE["labels"], manifest) if lab in set(y)]
    return {
        "cfg": cfg, "graphs": graphs, "emb": emb, "ok": ok, "X": X, "hashes": hashes, "y": y,
        "speakers": speakers, "corp": corp, "present": present, "corpora": corpora,
    }  # fmt: skip


def accuracy(args: argparse.Namespace) -> list[dict]:
    """The three rows described in the module docs, upserted unless ``--no-db``."""
    from emovox.evaluation.metrics import score
    from emovox.evaluation.splits import make_split

    t0 = time.perf_counter()
    d = embedded(args)
    cfg, graphs, emb, ok, X = d["cfg"], d["graphs"], d["emb"], d["ok"], d["X"]
    y, speakers, corp, present = d["y"], d["speakers"], d["corp"], d["present"]
    hashes, corpora = d["hashes"], d["corpora"]
    split = make_split(
        "speaker-kfold", y, speakers, corp, k=RECIPE["k"], seed=RECIPE["seed"], hashes=hashes
    )
    variants = {"fp32": ("fp32", "fp32"), "int8": ("int8", "int8"), "fp32-head": ("fp32", "int8")}
    pred = {v: np.empty(len(y), dtype=object) for v in variants}
    for fold in split.folds:
        heads = {
            src: fit_head(X[src][fold.train], y[fold.train], present, RECIPE["C"], RECIPE["seed"])
            for src in ("fp32", "int8")
        }
        for v, (train, test) in variants.items():
            pred[v][fold.test] = heads[train][0].predict(X[test][fold.test])
    wall = time.perf_counter() - t0
    names = {
        "fp32": "default recipe, onnx fp32",
        "int8": "default recipe, onnx int8",
        "fp32-head": "default recipe, fp32 head on onnx int8",
    }
    rel = np.linalg.norm(X["int8"] - X["fp32"], axis=1) / np.linalg.norm(X["fp32"], axis=1)
    rows = []
    for v in variants:
        s = score(list(y), list(pred[v]), present)
        per_corpus = {}
        for c in sorted(set(corp)):
            m = corp == c
            labs = [lab for lab in present if lab in set(y[m])]
            sc = score(list(y[m]), list(pred[v][m]), labs)
            per_corpus[c] = {"ua": round(sc["ua"], 4), "wa": round(sc["wa"], 4), "n": int(m.sum())}
        rows.append(
            {
                "section": SECTION,
                "model": f"whisper-{RECIPE['encoder']} {names[v]}",
                "corpora": sorted(corpora),
                "labels": RECIPE["labels"],
                "protocol": "speaker-kfold",
                "leaky": False,
                "test": None,
                "wa": s["wa"],
                "ua": s["ua"],
                "macro_f1": s["macro_f1"],
                "per_class": s["per_class"],
                "per_corpus": per_corpus,
                "agreement_with_fp32": round(float(np.mean(pred[v] == pred["fp32"])), 4),
                "int8_relative_error_median": round(float(np.median(rel)), 5),
                "folds": len(split.folds),
                "n": int(len(y)),
                "skipped": int((~ok).sum()),
                "wall_s": round(wall, 2),
                "hardware": results_db.hardware(),
                "config": "bench/int8_accuracy.py",
                "command": "python bench/int8_accuracy.py --corpora " + ",".join(corpora),
                "bundle": cfg.card.get("name"),
                "graphs": {g: p.name for g, p in graphs.items()},
            }
        )
        print(
            f"{rows[-1]['model']}: UA {s['ua']:.4f} WA {s['wa']:.4f} "
            f"agreement with fp32 {rows[-1]['agreement_with_fp32']:.4f} "
            + " ".join(f"{c}:{d['ua']:.4f}" for c, d in per_corpus.items()),
            flush=True,
        )
    print(
        f"{len(y)} clips ({int((~ok).sum())} skipped), {len(split.folds)} folds, "
        f"cached fp32 {emb['fp32'][2]} int8 {emb['int8'][2]}, median |int8-fp32|/|fp32| "
        f"{np.median(rel):.4f}, {wall:.0f} s"
    )
    if not args.no_db:
        if args.results_json:
            results_db.RESULTS_JSON = Path(args.results_json)
            results_db.RESULTS_MD = Path(args.results_json).with_suffix(".md")
        results_db.upsert(rows)
        print(f"{len(rows)} rows upserted into {results_db.RESULTS_JSON}")
    return rows


#: the seven corpora, as the LOCO baseline config names them
SEVEN = read_config(results_db.ROOT / "configs" / "loco-baseline.toml")["experiment"]["corpora"]


def loco_accuracy(args: argparse.Namespace) -> list[dict]:
    """Leave one corpus out over ``args.corpora`` (default: all seven), the bundled recipe's
    head on fp32 embeddings, tested on each held-out corpus's fp32 and int8 embeddings (what
    ``backend="onnx-int8"`` gives a user): one row per held-out corpus and graph."""
    from emovox.evaluation.loco import held_out_score

    t0 = time.perf_counter()
    d = embedded(args)
    X, y, corp, present = d["X"], d["y"], d["corp"], d["present"]
    rows = []
    for c in sorted(set(corp)):
        test = corp == c
        head, _ = fit_head(X["fp32"][~test], y[~test], present, RECIPE["C"], RECIPE["seed"])
        known = [lab for lab in present if lab in set(y[~test])]
        scored = np.isin(y[test], known)
        preds = {v: head.predict(X[v][test]) for v in ("fp32", "int8")}
        for v, pred in preds.items():
            h = held_out_score(c, y[test][scored], pred[scored], known, y[test][~scored].tolist())
            rows.append(
                {
                    "section": SECTION,
                    "model": f"whisper-{RECIPE['encoder']} default recipe (fp32 head), onnx {v}",
                    "corpora": sorted(d["corpora"]),
                    "labels": RECIPE["labels"],
                    "protocol": "loco",
                    "leaky": False,
                    "test": None,
                    "test_corpora": [c],
                    "adapted": False,
                    "wa": h["wa"],
                    "ua": h["ua"],
                    "macro_f1": h["macro_f1"],
                    "chance": h["chance"],
                    "per_class": h["per_class"],
                    "n": h["n"],
                    "agreement_with_fp32": round(float(np.mean(pred == preds["fp32"])), 4),
                    "wall_s": round(time.perf_counter() - t0, 2),
                    "hardware": results_db.hardware(),
                    "config": "bench/int8_accuracy.py",
                    "command": "python bench/int8_accuracy.py --protocol loco",
                }
            )
            print(f"LOCO, held out {c}, {v}: UA {h['ua']:.4f} (chance {h['chance']:.3f})")
    for v in ("fp32", "int8"):
        mean = np.mean([r["ua"] for r in rows if r["model"].endswith(v)])
        print(f"mean LOCO UA, {v}: {mean:.4f}", flush=True)
    if not args.no_db:
        results_db.upsert(rows)
        print(f"{len(rows)} rows upserted into {results_db.RESULTS_JSON}")
    return rows


def parity(args: argparse.Namespace) -> dict:
    """fp32 vs int8 on ``args.parity`` CREMA-D clips (see the module docs)."""
    from bench_predict import reference_ms

    from emovox.inference.engine import load_bundle

    root = corpora_root() / "crema-d" / "AudioWAV"
    files = sorted(p for p in glob.glob(str(root / "*.opus")) if Path(p).name[:4] < "1080")
    rng = np.random.default_rng(0)
    files = [files[i] for i in sorted(rng.choice(len(files), args.parity, replace=False))]
    engines = {
        v: load_bundle(args.model, backend=b) for v, b in (("fp32", "onnx"), ("int8", "onnx-int8"))
    }
    wavs = [decode(f, 16_000) for f in files]
    mels = []
    for f, w in zip(files, wavs, strict=True):
        mels.append(
            log_mel_spectrogram(split_chunks(preprocess(w, engines["fp32"].preprocess_cfg, f))[0])
        )
    for e in engines.values():  # warm-up
        e.predict_proba(wavs[:2])
    enc: dict[str, list[list[float]]] = {v: [[] for _ in files] for v in engines}
    full: dict[str, list[list[float]]] = {v: [[] for _ in files] for v in engines}
    for r in range(args.rounds):
        for i, (w, m) in enumerate(zip(wavs, mels, strict=True)):
            order = list(engines) if (r + i) % 2 == 0 else list(engines)[::-1]
            for v in order:
                t = time.process_time()
                engines[v].pooled(m)
                enc[v][i].append(time.process_time() - t)
                t = time.process_time()
                engines[v].predict_proba([w])
                full[v][i].append(time.process_time() - t)
    P = {v: e.predict_proba(wavs) for v, e in engines.items()}
    F = {v: np.stack([e.pooled(m) for m in mels]) for v, e in engines.items()}
    cos = (F["fp32"] * F["int8"]).sum(1) / (
        np.linalg.norm(F["fp32"], axis=1) * np.linalg.norm(F["int8"], axis=1)
    )

    def ms(times: list[list[float]]) -> float:  # mean over clips of each clip's median
        return round(1e3 * float(np.mean([statistics.median(t) for t in times])), 2)

    res = {
        "clips": len(files),
        "seconds_mean": round(float(np.mean([len(w) for w in wavs])) / 16_000, 2),
        "rounds": args.rounds,
        "label_agreement": int((P["fp32"].argmax(1) == P["int8"].argmax(1)).sum()),
        "max_abs_prob_diff": round(float(np.abs(P["fp32"] - P["int8"]).max()), 4),
        "mean_abs_prob_diff": round(float(np.abs(P["fp32"] - P["int8"]).mean()), 5),
        "pooled_cosine_min": round(float(cos.min()), 6),
        "encoder_cpu_ms": {v: ms(t) for v, t in enc.items()},
        "path_cpu_ms": {v: ms(t) for v, t in full.items()},
        "reference_ms": round(reference_ms(), 2),
        "command": "python bench/int8_accuracy.py " + shlex.join(sys.argv[1:]),
    }
    res["encoder_speedup"] = round(res["encoder_cpu_ms"]["fp32"] / res["encoder_cpu_ms"]["int8"], 2)
    res["path_speedup"] = round(res["path_cpu_ms"]["fp32"] / res["path_cpu_ms"]["int8"], 2)
    print(json.dumps(res, indent=1))
    return res


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--corpora", default=None, help="default: the four (the seven with loco)")
    ap.add_argument("--protocol", default="speaker-kfold", choices=("speaker-kfold", "loco"))
    ap.add_argument("--model", default=None, help="bundle folder (default: the packaged one)")
    ap.add_argument("--results-json", default=None, help="another results.json (tests, smoke)")
    ap.add_argument("--no-db", action="store_true", help="print the rows, store nothing")
    ap.add_argument("--parity", type=int, default=0, help="parity and speed on N clips instead")
    ap.add_argument("--rounds", type=int, default=3, help="timing rounds per clip (--parity)")
    args = ap.parse_args()
    if args.corpora is None:
        args.corpora = ",".join(SEVEN if args.protocol == "loco" else FOUR)
    if args.parity:
        parity(args)
    elif args.protocol == "loco":
        loco_accuracy(args)
    else:
        accuracy(args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
