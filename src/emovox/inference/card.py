"""The model card of a bundle: what it says (limits, coverage, scores on corpora the recipe
never saw, read from a LOCO run) and ``model.json``'s ``card`` rendered as Markdown
(``card.md`` and ``docs/model-card.md``)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from emovox.data.corpora import corpus_info
from emovox.inference.domain import DEFAULT_QUANTILE, DomainScore


def domain_card(domain: DomainScore) -> str:
    """The model card's sentence on ``out_of_domain``."""
    what = (
        f"its distance from the {len(domain.scale)} main directions of the standardised "
        "training embeddings (relative to the training clips')"
        if domain.method == "residual"
        else f"a Mahalanobis distance in the {len(domain.scale)} main directions of the "
        "standardised training embeddings"
    )
    return (
        f"an answer is flagged out_of_domain when its audio lies far from the training clips: "
        f"{what} above {domain.threshold:.3f}, the {100 * DEFAULT_QUANTILE:.0f}th percentile on "
        "the held-out speakers (see docs/generalization.md)"
    )


def domain_temperature_lines(dt: dict[str, Any] | None) -> list[str]:
    """The card's paragraph on a temperature that rises with the domain score, if any."""
    if not dt:
        return []
    return [
        "The temperature is not one number: it rises with the input's domain score "
        f"(T = exp({dt['intercept']:.2f} + {dt['slope']:.2f} × score), about "
        f"{dt['temperature_validation_median']:.2f} on typical validation audio and "
        f"{dt['temperature_at_threshold']:.2f} at the out_of_domain threshold). It is fitted "
        "half on the validation speakers and half on every training corpus scored by a head "
        f"trained without it ({dt['held_out_clips']} clips of "
        f"{len(dt['held_out_corpora'])} corpora), so that audio unlike the training data "
        "gets the flatter probabilities that unseen corpora call for. With it, "
        f"{100 * dt['share_uncertain_validation']:.0f} % of validation answers and "
        f"{100 * dt['share_uncertain_held_out']:.0f} % of the held-out-corpus answers are "
        f"uncertain, and {100 * dt['wrong_flagged_held_out']:.0f} % of the wrong held-out "
        f"answers (accuracy {100 * (dt['accuracy_held_out_uncertain'] or 0):.0f} % flagged, "
        f"{100 * (dt['accuracy_held_out_certain'] or 0):.0f} % not; in-sample figures, the "
        "nested ones are in docs/generalization.md).",
        "",
    ]


def adaptation_section(cfg: dict[str, Any]) -> list[str]:
    """The card's lines on the adapted head (``--adapt``), or none for a bundle without it."""
    if cfg.get("adapted_temperature") is None:
        return []
    from emovox.inference.adapt import MIN_ITEMS, MIN_SPEECH_SECONDS

    return [
        "## Adaptation (`--adapt batch|recording`)",
        "",
        "A second head, fitted on embeddings standardised per training speaker (temperature "
        f"{cfg['adapted_temperature']:.2f}, set on the validation speakers), answers when the "
        "pooled embeddings are standardised over a batch of files from one speaker or channel, "
        f"or over a long recording's segments. It needs at least {MIN_ITEMS} clips or segments "
        f"and {MIN_SPEECH_SECONDS:g} s of speech; with less the plain head answers and the "
        "output says why. Every answer says whether it was `adapted`. Under leave-one-corpus-out "
        "the same recipe is the loco-speaker-norm (ADAPTED) column of docs/generalization.md.",
        "",
    ]


def card_head(card: dict[str, Any], built_end: str, what: str) -> list[str]:
    """A card's first sections: title, how it was built (the sentence ended by ``built_end``),
    what it is, its labels and its training data."""
    return [
        f"# Model card: {card['name']}",
        "",
        f"Built {card['created']} by `{card['command']}` in {card['build_seconds']:.0f} s "
        f"({card['hardware']})" + built_end,
        "",
        "## What it is",
        "",
        what,
        "",
        f"Labels: {', '.join(card['labels'])}.",
        "",
        "## Training data",
        "",
        *training_table(card),
        "",
    ]


def render_card(cfg: dict[str, Any]) -> str:
    """The model card (``model.json``'s ``card``) as Markdown."""
    card = cfg["card"]
    ev = card["evaluation"]
    cal = card["calibration"]
    lines = [
        *card_head(card, ".", card["architecture"] + "."),
        f"{card['training_speakers']} training speakers; {len(card['held_out_speakers'])} "
        "speakers held out for calibration (including the speakers of the bundled demo clips, "
        "so the demo shows voices the model never learnt from). Clips outside the label set: "
        + (", ".join(f"{k} {v}" for k, v in card["excluded_clips"].items()) or "none")
        + f"; unusable clips skipped: {card['skipped_clips']}.",
        "",
        "## Speaker-independent scores",
        "",
        f"{ev['protocol']}: UA (mean per-class recall) **{100 * ev['ua']:.1f} %**, "
        f"WA {100 * ev['wa']:.1f} %, macro-F1 {100 * ev['macro_f1']:.1f} %.",
        "",
        "| corpus | clips | UA | WA |",
        "|---|---|---|---|",
        *[
            f"| {c} | {v['n']} | {100 * v['ua']:.1f} | {100 * v['wa']:.1f} |"
            for c, v in ev["per_corpus"].items()
        ],
        "",
        "Per-class recall: "
        + ", ".join(f"{k} {100 * v:.1f}" for k, v in ev["per_class_recall"].items())
        + ".",
        "",
        *paper_corpora_lines(ev),
        *generalization_section(card),
        '## Probabilities and "uncertain"',
        "",
        "Probabilities are temperature-scaled ("
        + (
            "T rising with the domain score, below"
            if cal.get("domain_temperature")
            else f"T = {cal['temperature']:.2f}"
        )
        + ") on "
        f"{cal['validation_clips']} clips of {cal['validation_speakers']} held-out speakers: "
        f"expected calibration error {cal['ece_before']:.3f} before, {cal['ece_after']:.3f} "
        f"after. {card['uncertain'][0].upper() + card['uncertain'][1:]}. On the held-out "
        f"speakers {100 * cal['share_uncertain']:.0f} % of predictions are flagged; accuracy "
        f"is {100 * (cal['accuracy_when_certain'] or 0):.0f} % when not flagged and "
        f"{100 * (cal['accuracy_when_uncertain'] or 0):.0f} % when flagged.",
        "",
        *domain_temperature_lines(cal.get("domain_temperature")),
        *(
            [
                "## Unfamiliar audio (out_of_domain)",
                "",
                card["out_of_domain"][0].upper() + card["out_of_domain"][1:] + ". It catches "
                "audio unlike the training recordings (other studios, channels, languages), on "
                "which the probabilities are overconfident; the answer is still given.",
                "",
            ]
            if card.get("out_of_domain")
            else []
        ),
        *adaptation_section(cfg),
        "## Limits",
        "",
        *[f"- {x}" for x in card["limits"]],
        "",
        "The encoder weights are OpenAI's Whisper tiny.en (MIT licence, see "
        "`LICENSE-whisper.txt` beside the weights).",
        "",
    ]
    return "\n".join(lines)


def training_table(card: dict[str, Any]) -> list[str]:
    """The training corpora, with their language and recording conditions when the card lists
    them, and the training views (recording conditions simulated on the training clips)."""
    cover = {c["corpus"]: c for c in card.get("coverage", [])}
    if not cover:
        rows = [f"| {c} | {n} |" for c, n in card["training_data"].items()]
        return ["| corpus | clips |", "|---|---|", *rows]
    lines = ["| corpus | clips | language | recorded |", "|---|---|---|---|"]
    for c, n in card["training_data"].items():
        info = cover.get(c, {})
        lines.append(f"| {c} | {n} | {info.get('language', '?')} | {info.get('recording', '?')} |")
    views = card.get("training_views") or []
    if views:
        lines += [
            "",
            f"Every training clip is also seen as {len(views)} simulated recording condition(s) "
            f"({', '.join(f'`{v}`' for v in views)}): each draws a channel (telephone band, "
            "Opus or MP3 at a low bitrate, reverberation, clipping, or none), then noise at "
            "0-20 dB SNR (white, pink, brown, mains hum or babble) and sometimes a speed or "
            "pitch change (`emovox.deep.conditions`). Validation and test clips are never "
            "altered.",
        ]
    return lines


def paper_corpora_lines(ev: dict[str, Any]) -> list[str]:
    """The same folds scored on the paper's four corpora only, when the model learnt from more."""
    paper = ev.get("paper_corpora")
    if not paper:
        return []
    return [
        f"On the paper's four corpora merged ({', '.join(paper['corpora'])}; the clips of the "
        f"other corpora still train each fold): UA **{100 * paper['ua']:.1f} %**, "
        f"WA {100 * paper['wa']:.1f} % over {paper['n']} clips.",
        "",
    ]


def language(corpus: str) -> str:
    """A corpus's language, or ``?`` for a name no loader knows."""
    try:
        return corpus_info(corpus)["language"]
    except ValueError:
        return "?"


def generalization_section(card: dict[str, Any]) -> list[str]:
    """Leave-one-corpus-out scores of the same recipe beside the within-corpus ones."""
    gen = card.get("generalization")
    if not gen:
        return []
    within = card["evaluation"]["per_corpus"]
    lines = [
        "## Corpora it never saw (leave-one-corpus-out)",
        "",
        f"The recipe trained on all corpora but one and scored on that one, for each in turn "
        f"(`{gen['run']}`, {gen['protocol']}): the figure to expect on a recording like that "
        "corpus from a source the model never learnt from. Each corpus is scored on its own "
        "emotions that the others have; chance is 1 / their number. The within-corpus column "
        "is the speaker-independent score above.",
        "",
        "| corpus | language | held out: UA | chance | within corpus: UA |",
        "|---|---|---|---|---|",
    ]
    for h in gen["held_out"]:
        c = h["corpus"]
        inside = within.get(c, {}).get("ua")
        lines.append(
            f"| {c} | {language(c)} | {100 * h['ua']:.1f} "
            f"| {100 * h['chance']:.1f} | {'–' if inside is None else f'{100 * inside:.1f}'} |"
        )
    lines += [
        f"| **mean** | | **{100 * gen['mean_ua']:.1f}** | {100 * gen['mean_chance']:.1f} | |",
        "",
    ]
    if gen.get("note"):
        lines += [gen["note"], ""]
    return lines


def generalization_from_run(
    run: str | Path,
    encoder: str,
    C: float,
    labels: str,
    views: Sequence[str],
    layers: Sequence[int] | None = None,
) -> dict[str, Any]:
    """The card's leave-one-corpus-out section from an ``emovox evaluate --protocol loco`` run
    folder: its per-corpus UA and chance, and the mean. The run must be of the bundle's recipe
    (encoder, logistic head with the same C, labels, training views, every layer); a run of
    another recipe is a ``ValueError`` saying what differs."""
    run = Path(run)
    try:
        config = json.loads((run / "config.json").read_text())
        metrics = json.loads((run / "metrics.json").read_text())
    except (OSError, ValueError) as exc:
        raise ValueError(f"{run}: not a readable evaluation run folder ({exc})") from exc
    want = {
        "protocol": "loco",
        "model": "logreg",
        "features": f"whisper:{encoder}",
        "labels": labels,
        "train_views": list(views),
        "adapt": "none",
    }
    got = {k: config.get(k, [] if k == "train_views" else None) for k in want}
    diff = [f"{k} {got[k]!r} (bundle: {v!r})" for k, v in want.items() if got[k] != v]
    run_c = (config.get("params") or {}).get("C")
    if run_c is None or not np.isclose(float(run_c), C):
        diff.append(f"C {run_c!r} (bundle: {C!r})")
    if layers is not None:
        diff.append(f"layers {list(layers)} (LOCO runs pool every layer)")
    if diff or "loco" not in metrics:
        raise ValueError(
            f"{run} is not a LOCO run of this bundle's recipe: " + "; ".join(diff or ["no loco"])
        )
    loco = metrics["loco"]
    return {
        "run": run.name,
        "protocol": "leave one corpus out, the head refitted on the other corpora each time",
        "held_out": [
            {k: h[k] for k in ("corpus", "n", "labels", "ua", "chance")} for h in loco["held_out"]
        ],
        "mean_ua": loco["mean_ua"],
        "mean_chance": loco["mean_chance"],
    }


def limits(corpora: Sequence[str], gen: dict[str, Any] | None) -> list[str]:
    """The card's limits, from what the model learnt from and how it did on corpora it
    never saw."""
    langs = sorted({corpus_info(c)["language"] for c in corpora})
    out = [
        f"learnt from {len(corpora)} corpora ({', '.join(langs)}), almost all of it acted "
        "speech; spontaneous conversation, children, and languages or channels unlike these "
        "will score lower",
        "one label per segment; mixed or subtle emotions are forced into one of the labels",
    ]
    if gen:
        low = [h["corpus"] for h in gen["held_out"] if h["ua"] < h["chance"] + 0.10]
        out.append(
            f"on a corpus it never learnt from, expect far less than within its corpora: "
            f"leave-one-corpus-out mean UA {100 * gen['mean_ua']:.1f} % (chance "
            f"{100 * gen['mean_chance']:.1f} %)"
            + (
                f"; no more than 10 points above chance when {', '.join(low)} was held out"
                if low
                else ""
            )
        )
    else:
        out.append(
            "speaker-independent scores above are within these corpora; cross-corpus transfer "
            "is weaker (see docs/generalization.md)"
        )
    return out


def render_fast_card(cfg: dict[str, Any]) -> str:
    """The fast model's card (:mod:`emovox.inference.build_fast`) as Markdown: the student's
    scores beside its teacher's on the same folds."""
    card = cfg["card"]
    ev = card["evaluation"]
    cal = card["calibration"]
    kf = ev["speaker-kfold"]
    st, te = kf["student"], kf["teacher"]
    reused = card.get("reused_folds")
    built = f", reading {reused} finished folds back from the run folder" if reused else ""
    what = (
        card["architecture"] + f". Distilled from {card['teacher']} (soft labels at temperature "
        f"{card['distillation']['temperature']}, {card['distillation']['embedding_targets']} "
        "directions of its embedding, and the true labels), on every training clip and its "
        f"views {', '.join(card['distillation']['views']) or '(none)'}."
    )
    lines = [
        *card_head(card, built + '. `emovox.load("fast")`, `--model fast`.', what),
        "## Speaker-independent scores",
        "",
        f"Speaker {kf['folds']}-fold over all clips. For each fold a teacher of the default "
        "recipe is fitted on that fold's training speakers and the student distilled from it, "
        "so no test speaker reaches the student. UA (mean per-class recall):",
        "",
        "| corpora | fast model | its teacher (default recipe) |",
        "|---|---|---|",
        f"| all | {100 * st['ua']:.1f} | {100 * te['ua']:.1f} |",
    ]
    if "paper_corpora" in st:
        lines.append(
            f"| the paper's four | {100 * st['paper_corpora']['ua']:.1f} | "
            f"{100 * te['paper_corpora']['ua']:.1f} |"
        )
    lines += [
        *[
            f"| {c} | {100 * v:.1f} | {100 * te['per_corpus'][c]:.1f} |"
            for c, v in st["per_corpus"].items()
        ],
        "",
    ]
    if "loco" in ev:
        lo = ev["loco"]
        lines += [
            "## Leave one corpus out",
            "",
            "Each corpus held out whole, student and teacher trained on the others:",
            "",
            "| held-out corpus | clips | fast model UA | teacher UA | chance |",
            "|---|---|---|---|---|",
            *[
                f"| {s['corpus']} | {s['n']} | {100 * s['ua']:.1f} | {100 * t['ua']:.1f} | "
                f"{100 * s['chance']:.1f} |"
                for s, t in zip(lo["student"]["held_out"], lo["teacher"]["held_out"], strict=True)
            ],
            f"| mean | | {100 * lo['student']['mean_ua']:.1f} | "
            f"{100 * lo['teacher']['mean_ua']:.1f} | {100 * lo['student']['mean_chance']:.1f} |",
            "",
        ]
    lines += [
        '## Probabilities and "uncertain"',
        "",
        f"Temperature T = {cal['temperature']:.2f}, fitted on {cal['validation_clips']} clips of "
        f"held-out speakers; there {100 * cal['share_uncertain']:.0f} % of predictions fall "
        f"under the {cal['threshold']} threshold and are flagged uncertain.",
        "",
        "## Limits",
        "",
        *[f"- {lim}" for lim in card["limits"]],
        "",
    ]
    return "\n".join(lines)
