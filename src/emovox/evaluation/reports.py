"""Run folders: config.json, metrics.json, predictions.csv, confusion matrix (PNG + JSON), summary.

Every score written says its protocol; a leaky protocol is marked LEAKY wherever it appears.
A leave-one-corpus-out run also gets a table of its held-out corpora (UA beside chance).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from emovox.io import atomic_write_bytes, atomic_write_json, atomic_write_text


def protocol_tag(protocol: str, leaky: bool) -> str:
    return f"{protocol} (LEAKY)" if leaky else f"{protocol} (speaker-independent)"


def confusion_png(cm: Sequence[Sequence[int]], labels: Sequence[str], title: str) -> bytes:
    """A row-normalised confusion matrix as PNG bytes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    m = np.asarray(cm, dtype=float)
    norm = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(1.0 + 0.8 * len(labels), 0.8 + 0.7 * len(labels)), dpi=110)
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right")
    ax.set_yticks(range(len(labels)), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=9)
    for i in range(len(labels)):
        for j in range(len(labels)):
            ax.text(
                j,
                i,
                f"{norm[i, j]:.2f}\n({int(m[i, j])})",
                ha="center",
                va="center",
                fontsize=6,
                color="white" if norm[i, j] > 0.5 else "black",
            )
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    return buf.getvalue()


def summary_text(config: dict, metrics: dict) -> str:
    """A short human-readable account of a run."""
    tag = protocol_tag(metrics["protocol"], metrics["leaky"])
    corpora = ", ".join(config.get("corpora", []))
    loco = metrics.get("loco")
    pooled = "pooled over the held-out corpora: " if loco else ""
    lines = [
        f"# {config.get('name', 'run')}: {config.get('model')} on {corpora}",
        "",
        f"- protocol: **{tag}**, {metrics.get('folds', '?')} folds",
        f"- labels: {', '.join(metrics['labels'])}",
        f"- clips scored: {metrics['n']} (skipped: {metrics.get('skipped', 0)}, "
        f"excluded by label set: {sum(metrics.get('excluded', {}).values())})",
        f"- {pooled}WA {metrics['wa']:.3f} | UA {metrics['ua']:.3f} | "
        f"macro-F1 {metrics['macro_f1']:.3f}",
        "",
    ]
    if loco:
        from emovox.evaluation.loco import loco_table

        lines += ["## Held-out corpora", "", *loco_table(loco), "", "## Pooled", ""]
    lines += [
        "| emotion | recall | clips |",
        "|---|---|---|",
    ]
    for lab, r in metrics["per_class"].items():
        lines.append(f"| {lab} | {r:.3f} | {metrics['support'][lab]} |")
    audit = metrics.get("leakage")
    if audit:
        lines += [
            "",
            f"Leakage audit (summed over folds): shared speakers {audit['shared_speakers']}, "
            f"identical audio {audit['identical_audio']}, "
            f"shared sentences {audit['shared_sentences']}.",
        ]
    if metrics["leaky"]:
        lines += [
            "",
            "LEAKY: speakers, sentences (and identical recordings) appear on both sides of the "
            "split, so this score overstates accuracy on unseen speakers.",
        ]
    note = adaptation_note(metrics.get("adapt"))
    if note:
        lines += ["", note]
    if metrics.get("train_views"):
        lines += ["", f"Training views (training clips only): {', '.join(metrics['train_views'])}."]
    return "\n".join(lines) + "\n"


def adaptation_note(adapt: str | None) -> str:
    """What a per-speaker / per-corpus standardised score assumes ('' when none was used)."""
    if not adapt or adapt == "none":
        return ""
    return (
        f"ADAPTED per {adapt}: features were standardised with the statistics of each {adapt}'s "
        f"own clips, test {adapt}s included (no labels used). The score assumes several "
        f"unlabeled recordings of each {adapt} at use time; acted corpora give every speaker "
        "every emotion in similar amounts, the best case for this normalisation."
    )


def write_run(
    run_dir: str | Path,
    config: dict,
    metrics: dict,
    predictions: Sequence[dict],
    skipped: Sequence[tuple[str, str]] = (),
) -> Path:
    """Write the run folder atomically, file by file."""
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_json(run_dir / "config.json", config)
    atomic_write_json(run_dir / "metrics.json", metrics)
    atomic_write_json(
        run_dir / "confusion.json", {"labels": metrics["labels"], "matrix": metrics["confusion"]}
    )
    title = f"{config.get('model')} · {protocol_tag(metrics['protocol'], metrics['leaky'])}"
    atomic_write_bytes(
        run_dir / "confusion.png", confusion_png(metrics["confusion"], metrics["labels"], title)
    )
    buf = io.StringIO()
    if predictions:
        w = csv.DictWriter(buf, fieldnames=list(predictions[0].keys()))
        w.writeheader()
        w.writerows(predictions)
    atomic_write_text(run_dir / "predictions.csv", buf.getvalue())
    if skipped:
        atomic_write_text(
            run_dir / "skipped.csv",
            "path,reason\n"
            + "".join(f'"{p}","{r.replace(chr(34), chr(39))}"\n' for p, r in skipped),
        )
    atomic_write_text(run_dir / "summary.md", summary_text(config, metrics))
    return run_dir
