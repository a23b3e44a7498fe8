"""``emovox demo``: the default model on six bundled CREMA-D clips, then on one long recording.

The clips (``emovox/assets/demo/``, one per CREMA-D emotion, each under 3 s, 16 kHz mono Opus as
distributed in the project's corpus copy) are credited in ``CREDITS.md`` there; ``clips.json``
holds their true labels. :func:`export_demo_clips` re-creates the folder from a CREMA-D copy.

The demo predicts each clip, joins the clips with silence into one recording, runs the
long-recording path (:mod:`emovox.inference.timeline`) on it, and writes a report folder:
``predictions.json``, ``long.flac``, ``timeline.json``/``.csv``/``.png`` and ``summary.md``.
"""

from __future__ import annotations

import csv
import json
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from emovox.audio import SAMPLE_RATE, decode

#: CREMA-D's emotion codes and the crowd's one-letter votes (summaryTable.csv ``VoiceVote``).
_CODES = {
    "NEU": ("neutral", "N"),
    "HAP": ("happy", "H"),
    "SAD": ("sad", "S"),
    "ANG": ("angry", "A"),
    "FEA": ("fearful", "F"),
    "DIS": ("disgust", "D"),
}
#: Distributed CREMA-D clips that are identical audio under two labels (never picked).
_DUPLICATES = {
    "1017_IWW_ANG_XX", "1017_IWW_FEA_XX", "1013_WSI_DIS_XX", "1013_WSI_SAD_XX",
    "1006_TIE_NEU_XX", "1006_TIE_HAP_XX",
}  # fmt: skip

CREDITS = """\
# Demo clips: credit and licence

The six clips in this folder are unmodified files of the **CREMA-D** corpus (Crowd-sourced
Emotional Multimodal Actors Dataset), as re-encoded to 16 kHz mono Ogg/Opus (32 kbit/s) in the
project's corpus copy; only their audio is included, one clip per emotion.

> H. Cao, D. G. Cooper, M. K. Keutmann, R. C. Gur, A. Nenkova and R. Verma,
> "CREMA-D: Crowd-sourced Emotional Multimodal Actors Dataset,"
> *IEEE Transactions on Affective Computing*, vol. 5, no. 4, pp. 377-390, 2014.
> doi:10.1109/TAFFC.2014.2336244

CREMA-D is made available under the Open Database License
(http://opendatacommons.org/licenses/odbl/1.0/). Any rights in individual contents of the
database are licensed under the Database Contents License
(http://opendatacommons.org/licenses/dbcl/1.0/).

File names keep CREMA-D's pattern `ActorID_Sentence_Emotion_Level`. `clips.json` gives each
clip's intended (true) emotion, actor, sex and sentence code.

How they were chosen (`emovox.inference.demo.export_demo_clips`, deterministic): for each emotion,
clips
shorter than 3 s whose crowd vote from audio alone (`VoiceVote` in CREMA-D's `summaryTable.csv`)
was the intended emotion, untied; acted intensity `HI` preferred (neutral clips are `XX`); the
highest `VoiceLevel` (the raters' mean perceived intensity) first; a different actor and sentence
for every clip, alternating female and male speakers. They were not chosen by any model's
predictions.
"""


@dataclass(frozen=True)
class DemoClip:
    """One bundled clip and its true label."""

    file: str
    label: str
    actor: str
    sex: str
    sentence: str
    duration: float

    @property
    def path(self) -> Path:
        return demo_dir() / self.file


def demo_dir() -> Path:
    """The packaged demo folder (``emovox/assets/demo``)."""
    return Path(str(resources.files("emovox") / "assets" / "demo"))


def load_clips(folder: str | Path | None = None) -> list[DemoClip]:
    """The demo clips listed in ``clips.json``."""
    folder = Path(folder) if folder else demo_dir()
    meta = json.loads((folder / "clips.json").read_text())
    return [DemoClip(**c) for c in meta["clips"]]


# ------------------------------------------------------------------------------- building


def select_demo_clips(crema_root: str | Path, max_seconds: float = 3.0) -> list[DemoClip]:
    """Pick one CREMA-D clip per emotion (see ``CREDITS`` for the rule)."""
    import soundfile as sf

    root = Path(crema_root)
    audio = {p.stem: p for p in (root / "AudioWAV").iterdir() if p.is_file()}
    with open(root / "VideoDemographics.csv", newline="", encoding="utf-8-sig") as fh:
        sex = {r["ActorID"].strip(): r["Sex"].strip().lower() for r in csv.DictReader(fh)}
    with open(root / "summaryTable.csv", newline="", encoding="utf-8-sig") as fh:
        votes = {r["FileName"]: r for r in csv.DictReader(fh)}
    chosen: list[DemoClip] = []
    actors: set[str] = set()
    sentences: set[str] = set()
    for i, (code, (label, letter)) in enumerate(_CODES.items()):
        want_sex = "female" if i % 2 == 0 else "male"
        cands = []
        for stem, row in votes.items():
            parts = stem.split("_")
            if len(parts) != 4 or parts[2] != code or stem in _DUPLICATES or stem not in audio:
                continue
            if row["VoiceVote"] != letter:
                continue
            actor, sentence, level = parts[0], parts[1], parts[3]
            if actor in actors or sentence in sentences or sex.get(actor) != want_sex:
                continue
            pref = 0 if level == ("XX" if code == "NEU" else "HI") else 1
            cands.append((pref, -float(row["VoiceLevel"] or 0), stem))
        for _, _, stem in sorted(cands):
            dur = sf.info(str(audio[stem])).duration
            if dur < max_seconds:
                actor, sentence = stem.split("_")[:2]
                chosen.append(
                    DemoClip(
                        file=audio[stem].name,
                        label=label,
                        actor=actor,
                        sex=want_sex,
                        sentence=sentence,
                        duration=round(dur, 3),
                    )
                )
                actors.add(actor)
                sentences.add(sentence)
                break
        else:
            raise ValueError(f"no CREMA-D clip for {label} meets the demo rule")
    return chosen


def export_demo_clips(crema_root: str | Path, out: str | Path | None = None) -> Path:
    """Copy the chosen clips (bytes unchanged: already 16 kHz mono Opus) with ``clips.json``
    and ``CREDITS.md`` into ``out`` (default: the packaged demo folder)."""
    from emovox.io import atomic_write_json, atomic_write_text

    out = Path(out) if out else demo_dir()
    out.mkdir(parents=True, exist_ok=True)
    clips = select_demo_clips(crema_root)
    for c in clips:
        src = Path(crema_root) / "AudioWAV" / c.file
        y = decode(src)
        if len(y) / SAMPLE_RATE >= 3.0:
            raise ValueError(f"{src}: {len(y) / SAMPLE_RATE:.2f} s is not under 3 s")
        shutil.copyfile(src, out / c.file)
    atomic_write_json(
        out / "clips.json",
        {
            "source": "CREMA-D (Cao et al. 2014), ODbL 1.0 / DbCL 1.0; see CREDITS.md",
            "sample_rate": SAMPLE_RATE,
            "clips": [asdict(c) for c in clips],
        },
    )
    atomic_write_text(out / "CREDITS.md", CREDITS)
    return out


# ------------------------------------------------------------------------------- running


def join_clips(
    clips: list[DemoClip], gap: float = 1.5, lead: float = 1.0
) -> tuple[np.ndarray, list[dict[str, Any]]]:
    """The clips one after another with ``gap`` seconds of silence (and ``lead`` before the
    first and after the last); returns the waveform and each clip's span in seconds."""
    parts: list[np.ndarray] = [np.zeros(int(lead * SAMPLE_RATE), np.float32)]
    spans = []
    t = lead
    for i, c in enumerate(clips):
        y = decode(c.path)
        spans.append({"start": round(t, 3), "end": round(t + len(y) / SAMPLE_RATE, 3),
                      "label": c.label, "file": c.file})  # fmt: skip
        parts.append(y)
        t += len(y) / SAMPLE_RATE
        pause = gap if i < len(clips) - 1 else lead
        parts.append(np.zeros(int(pause * SAMPLE_RATE), np.float32))
        t += pause
    return np.concatenate(parts), spans


def _truth_for(seg: dict[str, Any], spans: list[dict[str, Any]]) -> str | None:
    best, overlap = None, 0.0
    for s in spans:
        o = min(seg["end"], s["end"]) - max(seg["start"], s["start"])
        if o > overlap:
            best, overlap = s["label"], o
    return best


def run_demo(
    predictor: Any, out_dir: str | Path, log: Callable[[str], None] = print
) -> dict[str, Any]:
    """Predict the clips and the joined recording; write the report folder; return a summary."""
    import soundfile as sf

    from emovox.io import atomic_write_json, atomic_write_text

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    clips = load_clips()
    preds = predictor.predict_many([c.path for c in clips], errors="return")
    rows = []
    for c, p in zip(clips, preds, strict=True):
        d = p.to_dict() | {"file": c.file, "true": c.label}
        d["path"] = f"emovox/assets/demo/{c.file}"
        d["correct"] = p.ok and p.label == c.label
        rows.append(d)
    atomic_write_json(out / "predictions.json", rows)

    y, spans = join_clips(clips)
    long_path = out / "long.flac"
    sf.write(long_path, y, SAMPLE_RATE, format="FLAC")
    tl = predictor.timeline(long_path)
    for s in tl.segments:
        s["true"] = _truth_for(s, spans)
    files = tl.write(out, "timeline")
    atomic_write_json(out / "spans.json", spans)

    card = predictor.card
    n_ok = sum(r["correct"] for r in rows)
    seg_ok = sum(s["label"] == s["true"] for s in tl.segments)
    known = [r for r in rows if r["true"] in predictor.labels]
    md = [
        f"# emovox demo: {card.get('name', 'model')}",
        "",
        f"Six CREMA-D clips (one per emotion; credit in `emovox/assets/demo/CREDITS.md`). "
        f"Model labels: {', '.join(predictor.labels)}; a prediction is *uncertain* when its "
        f"top probability is below {predictor.threshold:.2f}.",
        "",
        "| clip | true | predicted | probability | uncertain |",
        "|---|---|---|---|---|",
    ]
    for r in rows:
        if r.get("error"):
            md.append(f"| {r['file']} | {r['true']} | error: {r['error']} | | |")
            continue
        top = r["probabilities"][r["label"]]
        md.append(
            f"| {r['file']} | {r['true']} | {r['label']} | {top:.2f} | "
            f"{'yes' if r['uncertain'] else ''} |"
        )
    md += [
        "",
        f"Clips right: {n_ok} of {len(rows)} ({len(known)} of the true labels are among the "
        "model's labels). Six clips say little about accuracy: see the model card for scores "
        "measured on unseen speakers.",
        "",
        f"## One long recording ({tl.duration:.1f} s: the clips with silence between)",
        "",
        f"Speech found by VAD ({tl.vad}): {len(tl.segments)} segments, "
        f"{tl.speech_seconds():.1f} s; segments right: {seg_ok} of {len(tl.segments)}.",
        "",
        "| start | end | true | predicted | probability | uncertain |",
        "|---|---|---|---|---|---|",
    ]
    for s in tl.segments:
        md.append(
            f"| {s['start']:.2f} | {s['end']:.2f} | {s['true']} | {s['label']} | "
            f"{s['probabilities'][s['label']]:.2f} | {'yes' if s['uncertain'] else ''} |"
        )
    md += ["", "![timeline](timeline.png)", ""]
    limits = card.get("limits")
    if limits:
        md += ["## Limits (from the model card)", ""]
        md += [f"- {x}" for x in (limits if isinstance(limits, list) else [limits])]
        md.append("")
    atomic_write_text(out / "summary.md", "\n".join(md))
    result = {
        "clips": rows,
        "clips_correct": n_ok,
        "timeline": tl.to_dict(),
        "segments_correct": seg_ok,
        "report": str(out),
        "files": {k: str(v) for k, v in files.items()},
    }
    log(f"report: {out}")
    return result


if __name__ == "__main__":  # pragma: no cover
    import sys

    if len(sys.argv) != 2:
        sys.exit(
            "usage: python -m emovox.inference.demo CREMA_D_ROOT   (re-creates emovox/assets/demo)"
        )
    print(export_demo_clips(sys.argv[1]))
