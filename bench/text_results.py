"""What was said and how: transcription (text) features beside the acoustic model.

Usage: python bench/text_results.py [--corpora ravdess,crema_d] [--render-only]

For each corpus, on the same speaker-independent folds (those of the existing frozen-Whisper
rows: RAVDESS speaker 6-fold, CREMA-D speaker 5-fold; each corpus's own emotions):
  audio-logreg       the bundled recipe: frozen Whisper tiny.en pooled layers + logistic
                     regression (C = 0.01), run by emovox.evaluation.experiment.evaluate
  text-logreg        the clip's transcript (packaged tiny.en, cached on disk) as VADER's four
                     scores + all-MiniLM-L6-v2 sentence embedding -> standardised logistic
                     regression (C = 0.01)
  audio+text-late    the mean of the two probability sets (equal weights, fixed in advance)
  audio+text-concat  both feature vectors side by side -> one standardised logistic regression

Rows go to docs/results.json (section "Transcription (text) features"), the table and the
reading of it (what the text head picks up, what fusion does, what the text costs) to
docs/text.md, details (timings, VADER scores per emotion, transcript counts) to
bench/results/text_features.json. Transcripts are cached (emovox.text.cache), so only the first
run transcribes (about 0.1 s of one core per clip).
"""

from __future__ import annotations

import argparse
import os
import re
import textwrap
import time
from collections import Counter

import numpy as np
import results_db

from emovox.data.labels import label_set_name
from emovox.evaluation.experiment import ExperimentConfig, evaluate, load_dataset
from emovox.evaluation.metrics import score
from emovox.io import atomic_write_json
from emovox.models import make_model
from emovox.text.cache import TranscriptCache
from emovox.text.features import VADER_COLUMNS, load_sentence_model, text_features
from emovox.text.head import fold_probabilities, late_fusion, predicted_labels, text_head
from emovox.text.transcribe import Transcriber

SECTION = "Transcription (text) features"
CONFIG = "bench/text_results.py"
AUDIO_FEATURES = "whisper:tiny.en"
AUDIO_C = 0.01
SETUPS = {  # corpus: (labels, protocol, k): as the frozen-Whisper rows of bench/whisper_results.py
    "ravdess": ("auto", "speaker-kfold", 6),
    "crema_d": ("auto", "speaker-kfold", 5),
}
MODELS = ("audio-logreg", "text-logreg", "audio+text-late", "audio+text-concat")
DETAILS = results_db.ROOT / "bench" / "results" / "text_features.json"
DOC = results_db.ROOT / "docs" / "text.md"
MARKER = "text-features-bench"
READING_MARKER = "text-reading"  # the paragraph reading the table (numbers from the same data)
COST_MARKER = "text-cost"  # what the text side costs (from the saved timings)
NAMES = {"ravdess": "RAVDESS", "crema_d": "CREMA-D"}
ADJECTIVES = {"disgust": "disgusted"}  # emotion label -> the word for its speech / clips
FUSIONS = ("audio+text-late", "audio+text-concat")


def audio_probabilities(predictions: list[dict], ids: list[str], labels) -> np.ndarray:
    """The ``p_<label>`` columns of evaluate()'s predictions, in the order of ``ids``."""
    by_id = {p["id"]: p for p in predictions}
    if len(by_id) != len(predictions) or set(by_id) != set(ids):
        raise RuntimeError("audio predictions do not cover each clip exactly once")
    return np.array([[by_id[i][f"p_{lab}"] for lab in labels] for i in ids])


def words_only(text: str) -> str:
    """Lower-cased words without punctuation: what was said, without the transcriber's ``!``
    and capitals (which carry how it was said)."""
    return " ".join(re.sub(r"[^\w\s']", " ", text.lower()).split())


def usual_share(plain: list[str], sentences: list, y: np.ndarray, labels) -> dict[str, float]:
    """By emotion, the share of clips transcribed as their sentence's most common transcript
    (plain words): how often tiny.en heard the sentence the usual way."""
    usual = {
        s: Counter(t for t, s2 in zip(plain, sentences, strict=True) if s2 == s).most_common(1)[0][
            0
        ]
        for s in set(sentences)
    }
    hit = np.array([t == usual[s] for t, s in zip(plain, sentences, strict=True)])
    return {lab: round(float(hit[y == lab].mean()), 4) for lab in labels}


def scored(y: np.ndarray, probs: np.ndarray, labels, folds) -> dict:
    """Pooled metrics of out-of-fold probabilities, plus each fold's UA."""
    pred = predicted_labels(probs, labels)
    m = score(y, pred, labels)
    m["fold_ua"] = [score(y[f.test], pred[f.test], labels)["ua"] for f in folds]
    return m


def run_corpus(corpus: str, sentence_model) -> tuple[list[dict], dict]:
    labels_spec, protocol, k = SETUPS[corpus]
    cfg = ExperimentConfig(
        model="logreg",
        corpora=[corpus],
        labels=labels_spec,
        protocol=protocol,
        k=k,
        features=AUDIO_FEATURES,
        params={"C": AUDIO_C},
        out_dir="runs/text",
        name=f"audio-logreg-{corpus}",
    )
    t0 = time.perf_counter()
    data = load_dataset(cfg, progress=False)
    t_load = time.perf_counter() - t0
    labels, y = data.labels, data.y
    ids = [c.id for c in data.clips]

    t0 = time.perf_counter()
    audio = evaluate(data, cfg, write=False)
    walls = {"audio-logreg": time.perf_counter() - t0}
    folds = audio.split.folds
    p_audio = audio_probabilities(audio.predictions, ids, labels)

    t0, c0 = time.perf_counter(), time.process_time()
    cache = TranscriptCache(Transcriber(word_timestamps=False))
    transcripts = [cache.transcript(c.path) for c in data.clips]
    t_transcribe = time.perf_counter() - t0, time.process_time() - c0
    texts = [t.text for t in transcripts]

    t0 = time.perf_counter()
    X_text = text_features(texts, model=sentence_model)
    t_features = time.perf_counter() - t0

    t0 = time.perf_counter()
    p_text = fold_probabilities(text_head, X_text, y, folds, labels)
    plain = [words_only(t) for t in texts]
    p_plain = fold_probabilities(
        text_head, text_features(plain, model=sentence_model), y, folds, labels
    )
    walls["text-logreg"] = time.perf_counter() - t0 + t_features
    t0 = time.perf_counter()
    p_late = late_fusion([p_audio, p_text])
    walls["audio+text-late"] = time.perf_counter() - t0 + walls["audio-logreg"]
    walls["audio+text-late"] += walls["text-logreg"]
    t0 = time.perf_counter()
    X_both = np.hstack([data.X, X_text])
    p_concat = fold_probabilities(lambda: make_model("logreg", C=AUDIO_C), X_both, y, folds, labels)
    walls["audio+text-concat"] = time.perf_counter() - t0 + t_features

    probs = dict(zip(MODELS, (p_audio, p_text, p_late, p_concat), strict=True))
    chance = 1.0 / len(labels)
    rows = []
    for name, p in probs.items():
        m = scored(y, p, labels, folds)
        rows.append(
            {
                "section": SECTION,
                "model": name,
                "corpora": [corpus],
                "labels": label_set_name(labels),
                "protocol": protocol,
                "leaky": audio.split.leaky,
                "test": None,
                "wa": m["wa"],
                "ua": m["ua"],
                "macro_f1": m["macro_f1"],
                "per_class": m["per_class"],
                "folds": len(folds),
                "fold_ua": m["fold_ua"],
                "n": len(y),
                "chance": chance,
                "wall_s": round(walls[name], 2),
                "hardware": results_db.hardware(),
                "config": CONFIG,
                "command": f"python {CONFIG} --corpora {corpus}",
            }
        )
        print(f"{corpus:8s} {name:18s} UA {m['ua']:.3f} WA {m['wa']:.3f} ({walls[name]:.0f} s)")
    compound = X_text[:, VADER_COLUMNS.index("compound")]
    exclaimed = np.array(["!" in t for t in texts])
    details = {
        "corpus": corpus,
        "labels": list(labels),
        "clips": len(y),
        "chance": chance,
        "folds": len(folds),
        "ua": {r["model"]: r["ua"] for r in rows},
        "fold_ua": {r["model"]: r["fold_ua"] for r in rows},
        "transcripts": {
            "transcribed_now": sum(not t.cached for t in transcripts),
            "empty": sum(not t.text for t in transcripts),
            "errors": sum(t.error is not None for t in transcripts),
            "warnings": sum(t.warning is not None for t in transcripts),
            "distinct": len(set(texts)),
            "distinct_words_only": len(set(plain)),
            "sentences_in_corpus": len({c.text for c in data.clips}),
            "most_common": Counter(texts).most_common(3),
        },
        "vader_compound_mean": {lab: round(float(compound[y == lab].mean()), 4) for lab in labels},
        "vader_nonzero_share": round(float(np.mean(compound != 0)), 4),
        "exclaimed_share": {lab: round(float(exclaimed[y == lab].mean()), 4) for lab in labels},
        "usual_transcript_share": usual_share(plain, data.column("text"), y, labels),
        "text_words_only_ua": scored(y, p_plain, labels, folds)["ua"],
        "seconds": {
            "load_embeddings": round(t_load, 1),
            "transcripts_wall": round(t_transcribe[0], 1),
            "transcripts_cpu": round(t_transcribe[1], 1),
            "text_features": round(t_features, 1),
            **{f"head {k}": round(v, 1) for k, v in walls.items()},
        },
    }
    return rows, details


def load_details() -> dict:
    import json

    return json.loads(DETAILS.read_text()) if DETAILS.exists() else {}


def _by_emotion(values: dict[str, float], fmt: str = "{:.0%}") -> str:
    return ", ".join(f"{k} {fmt.format(round(v, 2) + 0.0)}" for k, v in values.items())


def corpus_notes(corpus: str, d: dict) -> list[str]:
    """What the text of one corpus holds: the lines under docs/text.md's table."""
    tr, s = d["transcripts"], d["seconds"]
    lo, hi = min(d["fold_ua"]["text-logreg"]), max(d["fold_ua"]["text-logreg"])
    return [
        f"- **{corpus}**: {tr['sentences_in_corpus']} sentences, {tr['distinct']} distinct "
        f"transcripts ({tr['distinct_words_only']} as lower-cased words without punctuation), "
        f"{tr['empty']} empty. Text UA per fold {100 * lo:.1f} to {100 * hi:.1f}; on the plain "
        f"words {100 * d['text_words_only_ua']:.1f}.",
        f"  - transcribed as their sentence's usual words: "
        f"{_by_emotion(d['usual_transcript_share'])}",
        f"  - transcripts with `!`: {_by_emotion(d['exclaimed_share'])}",
        f"  - VADER compound non-zero on {d['vader_nonzero_share']:.0%} of clips; mean: "
        f"{_by_emotion(d['vader_compound_mean'], '{:+.2f}')}",
        f"  - text features {s['text_features']:.0f} s, text head {s['head text-logreg']:.0f} s "
        f"({d['folds']} folds, features included), audio head {s['head audio-logreg']:.0f} s",
    ]


def text_table(details: dict) -> str:
    """The docs/text.md table: each corpus's UA of the four models, from docs/results.json."""
    rows = [r for r in results_db.load() if r.get("config") == CONFIG]
    lines = [
        "UA % (mean per-emotion recall) on speaker-independent folds, the same folds for every "
        "column; `python bench/text_results.py` (rows in `docs/results.json`, details in "
        "`bench/results/text_features.json`):",
        "",
        "| corpus | labels | protocol | clips | chance | audio | text | late fusion | concat |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    notes = []
    for corpus in SETUPS:
        found = [results_db.find(rows, model=m, corpora=[corpus]) for m in MODELS]
        first = next((r for r in found if r is not None), None)
        if first is None:
            continue
        cells = ["–" if r is None else f"{100 * r['ua']:.1f}" for r in found]
        lines.append(
            f"| {corpus} | {first['labels']} | {first['protocol']}, {first['folds']} folds | "
            f"{first['n']} | {100 * first['chance']:.1f} | " + " | ".join(cells) + " |"
        )
        d = details.get(corpus)
        if d:
            notes += corpus_notes(corpus, d)
    return "\n".join([*lines, "", *notes])


def _wrap(text: str, bullet: bool = False) -> str:
    """``text`` as a paragraph (or a ``-`` bullet) wrapped at 100 columns, as the hand prose."""
    kw = {"width": 100, "break_on_hyphens": False, "break_long_words": False}
    if bullet:
        return textwrap.fill(text, initial_indent="- ", subsequent_indent="  ", **kw)
    return textwrap.fill(text, **kw)


def _series(words: list[str], last: str = "and") -> str:
    """``a``, ``a and b``, ``a, b and c``."""
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def _pts(x: float) -> str:
    return f"{100 * x:.1f}"


def reading(details: dict, rows: list[dict]) -> str:
    """The reading under docs/text.md's table, every figure from ``details``
    (bench/results/text_features.json) and the rows of docs/results.json:

    - the text head's UA above chance, and on plain words (no punctuation, no capitals);
    - the emotions ending with ``!`` in the transcripts: the three with the highest share in
      every corpus (ranked by their smallest share), and those never ending so;
    - the emotions most often transcribed off their sentence's usual words (CREMA-D, the three
      lowest shares) and the text head's per-emotion recall there;
    - fusion against audio alone, as the table shows it (differences of the UA % rounded to one
      decimal, so the prose agrees with the table), called within the spread of the folds when
      every difference is under the standard deviation of the audio model's per-fold UA.
    """
    if any(c not in details for c in ("ravdess", "crema_d")):
        return "(Run `python bench/text_results.py` on both corpora for the reading of this table.)"
    rav, cre = details["ravdess"], details["crema_d"]
    per = {c: details[c] for c in SETUPS}
    compound = [v for d in per.values() for v in d["vader_compound_mean"].values()]
    lo, hi = (f"{round(x, 2) + 0.0:+.2f}" for x in (min(compound), max(compound)))
    vader = f"is {lo}" if lo == hi else f"is between {lo} and {hi}"
    above = [
        f"{100 * (d['ua']['text-logreg'] - d['chance']):.0f}{' points' * (i == 0)} on {NAMES[c]}"
        for i, (c, d) in enumerate(per.items())
    ]

    def adj(label: str) -> str:
        return ADJECTIVES.get(label, label)

    shares: dict[str, list[float]] = {}
    for d in per.values():
        for lab, v in d["exclaimed_share"].items():
            shares.setdefault(lab, []).append(v)
    exclaim = sorted((lab for lab in shares if min(shares[lab]) > 0), key=lambda k: -min(shares[k]))
    never = [adj(lab) for lab, v in shares.items() if max(v) == 0]
    never_clause = f", never a {_series(never, 'or')} one" if never else ""
    usual = cre["usual_transcript_share"]
    off = sorted(usual, key=usual.get)[:3]
    text_row = results_db.find(rows, model="text-logreg", corpora=["crema_d"])
    recall = text_row["per_class"] if text_row else {}
    others = [v for lab, v in recall.items() if lab != "neutral"]
    recall_note = (
        f" (the text head's neutral recall is {recall['neutral']:.0%} on CREMA-D, its other "
        f"emotions {100 * min(others):.0f} to {100 * max(others):.0f}%)"
        if "neutral" in recall and others
        else ""
    )

    gaps, within = [], True
    for c in SETUPS:
        audio = results_db.find(rows, model="audio-logreg", corpora=[c])
        spread = float(np.std(per[c]["fold_ua"]["audio-logreg"], ddof=1))
        for m in FUSIONS:
            fused = results_db.find(rows, model=m, corpora=[c])
            if audio and fused:
                gap = round(round(100 * audio["ua"], 1) - round(100 * fused["ua"], 1), 1)
                gaps.append(gap)
                within &= abs(audio["ua"] - fused["ua"]) < spread
    spread_words = "within" if within else "beyond"
    if gaps and min(gaps) > 0:
        fusion = (
            "neither late fusion nor concatenation beats audio alone (both "
            f"{min(gaps):.1f} to {max(gaps):.1f} points under it, {spread_words} the spread of "
            "the folds)."
        )
    elif gaps:
        fusion = (
            f"late fusion and concatenation stay within {max(map(abs, gaps)):.1f} points of audio "
            f"alone ({spread_words} the spread of the folds)."
        )
    else:
        fusion = "(no fusion rows yet)."

    sentences = ", ".join(
        f"{NAMES[c]}: {d['transcripts']['sentences_in_corpus']}{' sentences' * (i == 0)}"
        for i, (c, d) in enumerate(per.items())
    )
    return "\n\n".join(
        [
            _wrap(
                "**What this measures, and what it cannot.** RAVDESS and CREMA-D are acted "
                "corpora in which every actor says the same few sentences in every emotion "
                f"({sentences}), so the words carry no emotion by design, and VADER finds next to "
                f"no sentiment in them (its mean compound score {vader} for every emotion). What "
                f"the text head scores above chance (about {', '.join(above)}) is not the words' "
                "meaning but *how* the sentence was said, seen through the transcriber:"
            ),
            _wrap(
                f"punctuation: tiny.en ends many {_series(exclaim[:3])} clips with `!`"
                f"{never_clause}. Without punctuation and capitals, RAVDESS's text "
                f"head falls to chance ({_pts(rav['text_words_only_ua'])} vs "
                f"{_pts(rav['chance'])});",
                bullet=True,
            )
            + "\n"
            + _wrap(
                f"misrecognitions: {_series([adj(lab) for lab in off])} speech is transcribed off "
                "its sentence's usual words more often (CREMA-D: "
                f"{1 - usual[off[0]]:.0%} of {adj(off[0])} clips, {1 - usual['neutral']:.0%} of "
                f'neutral ones), so "the usual words" points to neutral{recall_note}. That is '
                f"what is left on CREMA-D's plain words ({_pts(cre['text_words_only_ua'])} vs "
                f"{_pts(cre['chance'])}).",
                bullet=True,
            ),
            _wrap(
                f"Both are acoustic cues the audio model already has, and fusion shows it: {fusion}"
            ),
        ]
    )


def cost(details: dict) -> str:
    """What the text side cost in the saved run (bench/results/text_features.json): reading the
    cached transcripts and computing the text features (VADER + MiniLM), wall time."""
    done = [(c, details[c]) for c in SETUPS if c in details]
    if not done:
        return "(Run `python bench/text_results.py` for the cost of the text features.)"
    read = _series(
        [f"{NAMES[c]}'s {d['clips']} in {d['seconds']['transcripts_wall']:.1f} s" for c, d in done]
    )
    feats = _series(
        [
            f"{d['seconds']['text_features']:.0f} s for {NAMES[c]}'s {d['clips']} (about "
            f"{round(d['clips'] / max(d['seconds']['text_features'], 1e-9), -1):.0f} a second)"
            for c, d in done
        ]
    )
    return _wrap(
        "Transcribing is the slow part (the *Measurements* above give tiny.en's CPU time per "
        "clip, with word times on); the transcripts are cached, so a rerun reads them instead "
        f"(the saved run read {read}). Computing the text features (VADER + MiniLM) of those "
        f"transcripts took {feats}, wall time on the shared machine "
        f"({details.get('hardware', 'hardware not recorded')})."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--corpora", default=",".join(SETUPS))
    ap.add_argument(
        "--render-only",
        action="store_true",
        help="only rewrite docs/text.md's table and its reading from the saved results",
    )
    args = ap.parse_args()
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    details = load_details()
    corpora = [] if args.render_only else args.corpora.split(",")
    unknown = [c for c in corpora if c not in SETUPS]
    if unknown:
        raise SystemExit(f"unknown corpus {unknown[0]!r}; choose from {', '.join(SETUPS)}")
    if corpora:
        sentence_model = load_sentence_model()
        for corpus in corpora:
            rows, details[corpus] = run_corpus(corpus, sentence_model)
            results_db.upsert(rows)
            atomic_write_json(DETAILS, details | {"hardware": results_db.hardware()})
    results_db.write_section(DOC, MARKER, text_table(details))
    rows = [r for r in results_db.load() if r.get("config") == CONFIG]
    results_db.write_section(DOC, READING_MARKER, reading(details, rows))
    results_db.write_section(DOC, COST_MARKER, cost(details))


if __name__ == "__main__":
    main()
