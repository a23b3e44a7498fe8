"""Build the fast model (:mod:`emovox.inference.fast`) by distilling the default model's recipe:
the API behind ``emovox build-fast-model``.

1. the default recipe's training data: every clip's frozen Whisper embedding, and each training
   view's (:func:`emovox.inference.build.training_data`, cached);
2. the student's input: the fast log-mel of every clip and of its views (cached);
3. speaker k-fold: per fold a teacher of the default recipe is fitted on the fold's training
   speakers only (so no test speaker reaches the student, even through the teacher), and the
   student distilled from it on the same clips and their views (soft labels and embedding
   targets); the test speakers' plain clips are scored, for the student and the teacher;
4. optionally leave-one-corpus-out the same way, for the card's generalization table;
5. the final student, distilled from the packaged default model's head on the training
   speakers, its temperature fitted on the validation speakers; written with its card.

Each fold's outcome is kept in ``run_dir`` (and each student's training checkpoints), so an
interrupted build resumes where it stopped.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import time
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emovox.data.corpora import corpus_info
from emovox.deep.distill import DistillConfig, distill, predict_logits
from emovox.evaluation.loco import held_out_score
from emovox.evaluation.metrics import score
from emovox.evaluation.splits import leave_one_corpus_out, make_split
from emovox.features.decode_loop import load_clip
from emovox.features.embeddings import apply_view, check_view
from emovox.features.fast_mel import HOP, N_FFT, N_MELS, fast_log_mel
from emovox.inference.build import (
    PAPER_CORPORA,
    TrainingData,
    fit_head,
    head_tensors,
    logits,
    training_data,
    validation_mask,
)
from emovox.inference.calibration import fit_temperature, softmax
from emovox.inference.fast import write_fast_bundle
from emovox.inference.fold_store import FoldStore
from emovox.io import atomic_write_json, atomic_write_text, cache_dir
from emovox.progress import progress_bar

Log = Callable[[str], None]
#: Views distilled by default: one random recording condition per clip.
DEFAULT_VIEWS = ("condition:1",)
#: Teacher embedding directions the student's projection matches.
EMBED_DIMS = 64


def mels_version() -> str:
    """Version of the code that makes the student's inputs (decoding, preprocessing, the front
    end and the views)."""
    from emovox.features.code_version import source_version
    from emovox.features.embeddings import VIEW_MODULES

    modules = ("emovox.audio.decode", "emovox.audio.preprocess", "emovox.features.fast_mel")
    return source_version((*modules, *VIEW_MODULES), (apply_view,))


def student_mels(
    data: TrainingData,
    views: Sequence[str],
    n_mels: int = N_MELS,
    progress: bool = True,
    say: Log | None = None,
) -> tuple[list[np.ndarray], dict[str, list[np.ndarray | None]]]:
    """The fast log-mel (float16) of every clip of ``data`` and of each view of it (the same
    view waveform the teacher embedded: seeded by the clip's content hash). Cached in one file
    keyed by the settings, the code version and the clips' content hashes."""
    pre = data.preprocess
    hashes = [data.result.hashes[i] for i in np.flatnonzero(data.result.ok)]
    key = hashlib.sha1(
        json.dumps(
            {
                "v": mels_version(),
                "n_mels": n_mels,
                "n_fft": N_FFT,
                "hop": HOP,
                "views": list(views),
                "pre": str(pre),
                "clips": hashes,
            }
        ).encode()
    ).hexdigest()[:20]
    path = cache_dir() / "fast-mels" / f"{key}.npz"
    names = ["plain", *views]
    if path.is_file():
        z = np.load(path, allow_pickle=False)
        out: dict[str, list[np.ndarray | None]] = {}
        for name in names:
            flat, offs = z[f"{name}/flat"], z[f"{name}/offsets"]
            out[name] = [
                None if offs[i] == offs[i + 1] else flat[:, offs[i] : offs[i + 1]]
                for i in range(len(offs) - 1)
            ]
        return out.pop("plain"), out  # type: ignore[return-value]

    def compute(y: np.ndarray, chash: str) -> list[np.ndarray | None]:
        row: list[np.ndarray | None] = [fast_log_mel(y, n_mels).astype(np.float16)]
        for v in views:
            try:
                row.append(fast_log_mel(apply_view(y, v, chash, pre.sample_rate), n_mels))
            except Exception:  # noqa: BLE001 - a view that cannot be made drops that row only
                row.append(None)
        return row

    per: dict[str, list[np.ndarray | None]] = {n: [] for n in names}
    failed = 0
    with progress_bar(progress) as bar:
        task = bar.add_task("fast log-mel", total=len(data.clips))
        for c in data.clips:
            bar.advance(task)
            outcome = load_clip(c.path, pre, compute, step="fast log-mel")
            row = outcome.value if outcome.error is None else [None] * len(names)
            failed += outcome.error is not None
            for n, m in zip(names, row, strict=True):
                per[n].append(None if m is None else m.astype(np.float16))
    if failed and say:
        say(f"fast log-mel: {failed} clip(s) failed (left out of the student's rows)")
    arrays = {}
    for n in names:
        lens = [0 if m is None else m.shape[1] for m in per[n]]
        offs = np.concatenate([[0], np.cumsum(lens)]).astype(np.int64)
        present = [m for m in per[n] if m is not None]
        flat = np.concatenate(present, axis=1) if present else np.zeros((n_mels, 0), np.float16)
        arrays[f"{n}/flat"], arrays[f"{n}/offsets"] = flat, offs
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp.npz")  # parallel builds: one each
    np.savez(tmp, **arrays)
    tmp.replace(path)
    plain = per.pop("plain")
    return plain, per  # type: ignore[return-value]


class EmbeddingTargets:
    """The teacher's standardised embeddings reduced to their first ``dims`` principal
    directions (fitted on training rows) and scaled to unit variance: what the student's
    projection learns to match."""

    def __init__(self, head: dict[str, np.ndarray], dims: int = EMBED_DIMS, seed: int = 0):
        self.head, self.dims, self.seed = head, dims, seed

    def fit(self, X: np.ndarray) -> EmbeddingTargets:
        Xs = self._standardise(X)
        rng = np.random.default_rng(self.seed)
        sub = Xs[rng.choice(len(Xs), min(len(Xs), 4000), replace=False)]
        self.center = sub.mean(0)
        _, s, vt = np.linalg.svd(sub - self.center, full_matrices=False)
        self.components = vt[: self.dims]
        self.scale = s[: self.dims] / np.sqrt(len(sub) - 1)
        return self

    def _standardise(self, X: np.ndarray) -> np.ndarray:
        return (np.asarray(X, dtype=np.float64) - self.head["mean"]) / self.head["scale"]

    def transform(self, X: np.ndarray) -> np.ndarray:
        Z = (self._standardise(X) - self.center) @ self.components.T / self.scale
        return Z.astype(np.float32)


def student_rows(
    data: TrainingData,
    mels: list[np.ndarray | None],
    view_mels: dict[str, list[np.ndarray | None]],
    idx: np.ndarray,
) -> tuple[list[np.ndarray], np.ndarray, np.ndarray]:
    """The student's training rows for clips ``idx``: each clip's log-mel and each view's,
    with the teacher embedding of the same audio and the clip's index (for its label)."""
    M: list[np.ndarray] = []
    X: list[np.ndarray] = []
    src: list[int] = []
    for i in idx:
        if mels[i] is not None:
            M.append(mels[i])  # type: ignore[arg-type]
            X.append(data.X[i])
            src.append(int(i))
    for view, vm in view_mels.items():
        Xv, okv = data.views[view]
        for i in idx:
            if vm[i] is not None and okv[i]:
                M.append(vm[i])  # type: ignore[arg-type]
                X.append(Xv[i])
                src.append(int(i))
    return M, np.stack(X), np.array(src)


def distill_on(
    data: TrainingData,
    mels: list[np.ndarray | None],
    view_mels: dict[str, list[np.ndarray | None]],
    idx: np.ndarray,
    head: dict[str, np.ndarray],
    labels: Sequence[str],
    cfg: DistillConfig,
    run_dir: Path | None,
    say: Log,
) -> Any:
    """Distil a student from ``head`` (the teacher, on the embeddings) on clips ``idx``."""
    M, X, src = student_rows(data, mels, view_mels, idx)
    y = np.array([list(labels).index(data.clips[i].emotion) for i in src])
    Z = logits(head, X).astype(np.float32)
    targets = EmbeddingTargets(head, seed=cfg.seed).fit(data.X[idx]).transform(X)
    say(f"distilling on {len(M)} rows ({len(idx)} clips and their views)")
    return distill(M, Z, y, labels, cfg, targets=targets, run_dir=run_dir, log=say)


def _predict(net: Any, mels: list[np.ndarray | None], idx: np.ndarray, labels: Sequence[str]):
    Z = predict_logits(net, [mels[i] for i in idx])  # type: ignore[misc]
    return np.array([labels[k] for k in Z.argmax(1)], dtype=object), Z


def _folds_file(run_dir: Path, protocol: str) -> Path:
    return run_dir / f"{protocol}-folds.json"


def fold_settings(cfg: DistillConfig, C: float, views: Sequence[str]) -> dict[str, Any]:
    """What a kept fold result must have been made with to be read back (the thread count
    is not a setting)."""
    distill = {k: v for k, v in cfg.to_dict().items() if k != "threads"}
    return {"distill": distill, "C": C, "views": sorted(views)}


def run_protocol(
    protocol: str,
    data: TrainingData,
    mels: list[np.ndarray | None],
    view_mels: dict[str, list[np.ndarray | None]],
    labels: Sequence[str],
    C: float,
    cfg: DistillConfig,
    run_dir: Path,
    k: int = 5,
    say: Log | None = None,
) -> dict[str, Any]:
    """Student and teacher scored under ``protocol`` (``"speaker-kfold"`` or ``"loco"``); each
    finished fold is kept in ``run_dir`` with its settings and not redone (a fold of other
    settings is). Another process on the same ``run_dir`` shares the folds
    (:class:`~emovox.inference.fold_store.FoldStore`)."""
    say = say or (lambda _m: None)
    y = np.array([c.emotion for c in data.clips], dtype=object)
    speakers = np.array([c.speaker for c in data.clips], dtype=object)
    corp = np.array([c.corpus for c in data.clips], dtype=object)
    usable = np.array([m is not None for m in mels])
    if protocol == "speaker-kfold":
        folds = make_split(
            "speaker-kfold", y, speakers, list(corp), k=k, seed=cfg.seed, hashes=data.result.hashes
        ).folds
    elif protocol == "loco":
        folds = leave_one_corpus_out(list(y), list(corp))
    else:
        raise ValueError(f"protocol must be speaker-kfold or loco, got {protocol!r}")
    store = FoldStore(_folds_file(run_dir, protocol), fold_settings(cfg, C, list(view_mels)))
    stale = store.stale()
    if stale:
        say(f"{store.path}: {len(stale)} fold(s) of other settings, redone")
    index = {fold.name: fi for fi, fold in enumerate(folds)}

    def compute(name: str) -> None:
        fi = index[name]
        fold = folds[fi]
        t0 = time.perf_counter()
        train = np.asarray(fold.train)[usable[fold.train]]
        test = np.asarray(fold.test)[usable[fold.test]]
        present = [lab for lab in labels if lab in set(y[train])]
        model, order = fit_head(data.X[train], y[train], present, C, cfg.seed)
        head = head_tensors(model, order)
        say(f"{protocol} fold {fi + 1}/{len(folds)} ({fold.name}): teacher fitted")
        net = distill_on(
            data, mels, view_mels, train, head, present, cfg, run_dir / f"{protocol}-{fi}", say
        )
        pred, _ = _predict(net, mels, test, present)
        teacher = np.array([present[j] for j in logits(head, data.X[test]).argmax(1)], object)
        store.finish(fold.name, {
            "test": test.tolist(),
            "labels": present,
            "student": pred.tolist(),
            "teacher": teacher.tolist(),
            "seconds": round(time.perf_counter() - t0, 1),
        })  # fmt: skip

    for fold in folds:  # the folds no other process has taken, then everyone's
        if store.claim(fold.name):
            compute(fold.name)
    done = store.wait([fold.name for fold in folds], compute, say)
    return summarize(protocol, done, y, corp, labels)


def summarize(
    protocol: str, done: dict[str, Any], y: np.ndarray, corp: np.ndarray, labels: Sequence[str]
) -> dict[str, Any]:
    """UA of student and teacher: speaker k-fold overall, per corpus and on the paper's four
    corpora; LOCO per held-out corpus (:func:`held_out_score`) and the mean."""
    out: dict[str, Any] = {"protocol": protocol, "folds": len(done)}
    for who in ("student", "teacher"):
        if protocol == "loco":
            rows = []
            for fold in done.values():
                idx = np.array(fold["test"])
                h = held_out_score(str(corp[idx[0]]), y[idx], fold[who], fold["labels"])
                rows.append({k: h[k] for k in ("corpus", "n", "labels", "ua", "wa", "chance")})
            out[who] = {
                "held_out": rows,
                "mean_ua": float(np.mean([r["ua"] for r in rows])),
                "mean_chance": float(np.mean([r["chance"] for r in rows])),
            }
            continue
        idx = np.concatenate([np.array(f["test"]) for f in done.values()])
        pred = np.concatenate([np.array(f[who], dtype=object) for f in done.values()])
        present = [lab for lab in labels if lab in set(y[idx])]
        s = score(list(y[idx]), list(pred), present)
        res: dict[str, Any] = {"ua": s["ua"], "wa": s["wa"], "macro_f1": s["macro_f1"]}
        res["per_class"] = s["per_class"]
        res["per_corpus"] = {}
        for c in sorted(set(corp[idx])):
            m = corp[idx] == c
            labs = [lab for lab in present if lab in set(y[idx][m])]
            res["per_corpus"][c] = round(score(list(y[idx][m]), list(pred[m]), labs)["ua"], 4)
        paper = np.isin(corp[idx], PAPER_CORPORA)
        if paper.any():
            sp = score(list(y[idx][paper]), list(pred[paper]), present)
            res["paper_corpora"] = {"ua": sp["ua"], "wa": sp["wa"], "n": int(paper.sum())}
        out[who] = res
    return out


def build_fast_model(
    out: str | Path,
    roots: Sequence[str] | None = None,
    corpora: Sequence[str] = (),
    labels: str = "paper7",
    encoder: str = "tiny.en",
    C: float = 0.001,
    views: Sequence[str] = DEFAULT_VIEWS,
    cfg: DistillConfig | None = None,
    k: int = 5,
    loco: bool = False,
    teacher: str | Path | None = None,
    run_dir: str | Path = "runs/fast-model",
    val_fraction: float = 0.15,
    threshold: float = 0.5,
    progress: bool = True,
    log: Log | None = None,
) -> dict[str, Any]:
    """Distil, score and write a fast model to ``out``; returns its ``model.json`` content.

    ``teacher``: the default-model folder whose head the final student copies (None: the
    packaged default model), built on ``encoder`` with every layer pooled; its recipe (that
    encoder, a logistic head with ``C``) is refitted per fold for the scores. ``loco`` adds
    leave-one-corpus-out scores.
    """
    from emovox.inference.bundle import read_bundle

    say: Log = log or (lambda _m: None)
    t0 = time.perf_counter()
    cfg = cfg or DistillConfig()
    views = [check_view(v) for v in views]
    run = Path(run_dir)
    run.mkdir(parents=True, exist_ok=True)
    tcfg, _, thead = read_bundle(teacher)
    if list(tcfg.layers) != list(range(tcfg.n_blocks + 1)):
        raise ValueError("the teacher must pool every layer (the default recipe)")
    data = training_data(roots, corpora, labels, encoder, None, progress, say, views)
    if data.X.shape[1] != len(thead["mean"]):
        raise ValueError(
            f"the teacher's head reads {len(thead['mean'])} features, encoder {encoder!r} gives "
            f"{data.X.shape[1]}: pass the encoder the teacher was built on"
        )
    present = [lab for lab in tcfg.labels if lab in {c.emotion for c in data.clips}]
    mels, view_mels = student_mels(data, views, N_MELS, progress, say)
    say(f"{len(data.clips)} clips, views {views}")

    settings = fold_settings(cfg, C, views)
    reused = sum(  # folds an earlier (interrupted or parallel) run already finished
        len(FoldStore(_folds_file(run, p), settings).results())
        for p in ("speaker-kfold", "loco")
        if loco or p != "loco"
    )
    results = {"speaker-kfold": run_protocol("speaker-kfold", data, mels, view_mels, present, C,
                                             cfg, run, k, say)}  # fmt: skip
    if loco:
        results["loco"] = run_protocol("loco", data, mels, view_mels, present, C, cfg, run, k, say)
    atomic_write_json(run / "scores.json", results)

    # final student: the packaged teacher's head, training speakers only; T on validation
    speakers = np.array([c.speaker for c in data.clips], dtype=object)
    corp = [c.corpus for c in data.clips]
    is_val, val_spk = validation_mask(speakers, corp, val_fraction, cfg.seed)
    usable = np.array([m is not None for m in mels])
    train = np.flatnonzero(~is_val & usable)
    val = np.flatnonzero(is_val & usable)
    trained: dict[str, Any] = {}

    def train_final(name: str) -> None:
        trained[name] = distill_on(data, mels, view_mels, train, thead, present, cfg, run / name,
                                   say)  # fmt: skip
        final.finish(name, {"clips": len(train)})

    final = FoldStore(run / "final-done.json", settings)  # one process trains it, others wait
    final.wait(["final"], train_final, say)
    net = trained.get("final") or distill_on(  # another process trained it: its checkpoint
        data, mels, view_mels, train, thead, present, cfg, run / "final", say
    )
    _, Zv = _predict(net, mels, val, present)
    y_val = np.array([present.index(data.clips[i].emotion) for i in val])
    T = fit_temperature(Zv.astype(np.float64), y_val)
    P = softmax(Zv.astype(np.float64) / T)
    unc = P.max(1) < threshold
    right = P.argmax(1) == y_val
    counts = Counter(c.corpus for c in data.clips)
    card = {
        "name": f"emovox-fast-cnn-{labels}",
        "created": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%d"),
        "architecture": (
            f"{len(cfg.widths)} stride-2 conv3x3-BN-ReLU layers (widths {list(cfg.widths)}) on a "
            f"{N_MELS}-band log-mel (32 ms windows every 20 ms), mean+max pooling, linear head; "
            "temperature-scaled softmax"
        ),
        "teacher": tcfg.card.get("name", "default model"),
        "distillation": {
            **cfg.to_dict(),
            "views": views,
            "embedding_targets": EMBED_DIMS,
            "teacher_C": C,
        },
        "labels": present,
        "training_data": {c: counts[c] for c in sorted(counts)},
        "held_out_speakers": sorted(val_spk),
        "evaluation": results,
        "coverage": [corpus_info(c) for c in sorted(counts)],
        "calibration": {
            "validation_clips": len(val),
            "temperature": round(T, 4),
            "threshold": threshold,
            "share_uncertain": round(float(unc.mean()), 4),
            "validation_accuracy": round(float(right.mean()), 4),
        },
        "limits": [
            "Distilled from the default model: it inherits that model's limits (see its card) "
            "and adds its own error; no adapted head and no out-of-domain score.",
            "Clips shorter than about 0.3 s are repeated to fill the network's smallest input.",
        ],
        "command": "emovox build-fast-model --out DIR"
        + (f" --corpus {','.join(sorted(counts))}" if corpora else "")
        + f" --epochs {cfg.epochs} --widths {','.join(map(str, cfg.widths))}"
        + (" --loco" if loco else ""),
        "hardware": f"{platform.machine()} CPU, {platform.python_version()}",
        "build_seconds": round(time.perf_counter() - t0, 1),
        "reused_folds": reused,
    }
    from emovox.inference.card import render_fast_card

    model_json = write_fast_bundle(out, net, present, T, threshold, data.preprocess, card)
    atomic_write_text(Path(out) / "card.md", render_fast_card(model_json))
    return model_json
