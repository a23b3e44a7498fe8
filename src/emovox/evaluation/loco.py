"""Leave-one-corpus-out scores: each held-out corpus on its own emotions that the model knows.

A held-out corpus is scored on the emotions it has (mapped to the unified taxonomy) that the
training corpora also have: the model cannot name an emotion it never saw, so clips of other
emotions are counted as ``unscored``, not as errors. The model still chooses among every label
it learnt, so a prediction of an emotion the held-out corpus lacks (``calm`` for a corpus
without it) is an error, as it would be in use. Chance is one over the scored classes: the UA of
a constant guess.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Sequence

import numpy as np

from emovox.evaluation.metrics import score
from emovox.evaluation.splits import Split


def held_out_score(
    corpus: str,
    y_true: Sequence[str],
    y_pred: Sequence[str],
    known: Sequence[str],
    unscored: Sequence[str] = (),
) -> dict:
    """One held-out corpus: UA / WA / macro-F1 over its clips, the scored classes (its emotions
    among ``known``, the training labels), chance = 1 / their number, and the emotions of its
    ``unscored`` clips with their counts."""
    s = score(list(y_true), list(y_pred), list(known))
    classes = list(s["per_class"])
    return {
        "corpus": corpus,
        "n": s["n"],
        "labels": classes,
        "known": list(known),
        "ua": s["ua"],
        "wa": s["wa"],
        "macro_f1": s["macro_f1"],
        "chance": 1.0 / len(classes),
        "per_class": s["per_class"],
        "unscored": len(unscored),
        "unscored_emotions": dict(sorted(Counter(unscored).items())),
    }


def loco_scores(
    split: Split,
    y: Sequence[str],
    corpora: Sequence[str],
    labels: Sequence[str],
    predictions: Sequence[dict],
) -> dict:
    """Per held-out corpus (one per fold of a ``loco`` split): :func:`held_out_score` plus the
    fold's leakage audit; and the mean UA and mean chance over the held-out corpora.
    ``predictions`` are the run's rows (``fold``, ``pred``) in each fold's test order."""
    yy, corp = np.asarray(y, dtype=object), np.asarray(corpora, dtype=object)
    pred: dict[str, list[str]] = defaultdict(list)
    for row in predictions:
        pred[row["fold"]].append(row["pred"])
    held_out = []
    for i, fold in enumerate(split.folds):
        fit = set(yy[np.concatenate([fold.train, fold.val]).astype(int)].tolist())
        known = [lab for lab in labels if lab in fit]
        entry = held_out_score(
            str(corp[fold.test[0]]),
            yy[fold.test],
            pred[fold.name],
            known,
            yy[fold.unscored].tolist(),
        )
        if i < len(split.audits):
            entry["leakage"] = split.audits[i].as_dict()
        held_out.append(entry)
    return {
        "held_out": held_out,
        "mean_ua": float(np.mean([h["ua"] for h in held_out])),
        "mean_chance": float(np.mean([h["chance"] for h in held_out])),
    }


def loco_table(loco: dict) -> list[str]:
    """Markdown lines: one row per held-out corpus, then the mean UA over them."""
    lines = [
        "| held-out corpus | clips scored | not scored | classes | UA | chance | WA | "
        "shared speakers | identical audio | shared sentences |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for h in loco["held_out"]:
        leak = h.get("leakage", {})
        skipped = ", ".join(f"{e} {n}" for e, n in h["unscored_emotions"].items())
        lines.append(
            f"| {h['corpus']} | {h['n']} | {h['unscored']}{f' ({skipped})' if skipped else ''} "
            f"| {', '.join(h['labels'])} | {h['ua']:.3f} | {h['chance']:.3f} | {h['wa']:.3f} "
            f"| {leak.get('shared_speakers', '?')} | {leak.get('identical_audio', '?')} "
            f"| {leak.get('shared_sentences', '?')} |"
        )
    n = len(loco["held_out"])
    lines += [
        "",
        f"Mean UA over {n} held-out corpora: **{loco['mean_ua']:.3f}** (mean chance "
        f"{loco['mean_chance']:.3f}). Each corpus is scored on its own emotions that the "
        "training corpora have; 'not scored' clips have an emotion no training corpus has.",
    ]
    return lines
