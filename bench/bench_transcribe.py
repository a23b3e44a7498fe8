"""Speech to text (``emovox.text``) on ONE CPU core: word error rate, speed, the not-English
warning, words placed in emotion segments, and the emotion-only path left as it was.

    python bench/bench_transcribe.py [--corpora DIR] [--actors 4] [--quick]

Measures, in one run:
- word error rate (WER) of the packaged Whisper tiny.en on CREMA-D clips whose sentence is
  known (12 sentences x ``--actors`` actors, half female, half male x 3 emotions), for the two
  windows of :class:`emovox.text.Transcriber` (``fit``: the clip plus 10 s; ``full``:
  faster-whisper's 30 s window), with the real-time factor of each (audio seconds per CPU
  second of this process, and per wall second);
- the not-English warning: the share of clips flagged in four English corpora and in the
  Spanish and Korean ones;
- a long recording (CREMA-D clips joined with pauses): WER and speed of the whole, and
  ``predict(..., transcribe=True)``: how many words land in the emotion segment of their clip;
- the emotion-only path: its CPU time per clip with and without ``transcribe=True``, and (in a
  child process) that it imports no speech-to-text module.

Text is compared after lower-casing, spelling out numbers (``11`` → ``eleven``) and dropping
punctuation; WER is jiwer's (``pip install jiwer``). Writes ``bench/results/transcribe.json``
and the tables of ``docs/text.md``.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import random
import re
import subprocess
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numpy as np  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))

import results_db  # noqa: E402

from emovox.audio.decode import SAMPLE_RATE as SR  # noqa: E402
from emovox.audio.decode import decode  # noqa: E402
from emovox.io import atomic_write_json  # noqa: E402

#: the 12 CREMA-D sentences (Cao et al. 2014, the corpus documentation)
SENTENCES = {
    "IEO": "It's eleven o'clock",
    "TIE": "That is exactly what happened",
    "IOM": "I'm on my way to the meeting",
    "IWW": "I wonder what this is about",
    "TAI": "The airplane is almost full",
    "MTI": "Maybe tomorrow it will be cold",
    "IWL": "I would like a new alarm clock",
    "ITH": "I think I have a doctor's appointment",
    "DFA": "Don't forget a jacket",
    "ITS": "I think I've seen this before",
    "TSI": "The surface is slick",
    "WSI": "We'll stop in a couple of minutes",
}
EMOTIONS = ("ANG", "NEU", "SAD")
OTHER_ENGLISH = {
    "ravdess": "ravdess/Audio_Speech_Actors_01-24/*/*.opus",
    "savee": "savee/AudioData/*/*.opus",
    "tess": "tess/**/*.opus",
}
NOT_ENGLISH = {
    "spanish-acted": "spanish-acted/data/*/*.opus",
    "korean-emotiontts": "korean-emotiontts/**/*.opus",
}
_ONES = ("zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen "
         "fifteen sixteen seventeen eighteen nineteen").split()  # fmt: skip
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()


def number_words(n: int) -> str:
    """0-99 in words (larger numbers stay digits)."""
    if n < 20:
        return _ONES[n]
    if n < 100:
        return _TENS[n // 10] + ("" if n % 10 == 0 else " " + _ONES[n % 10])
    return str(n)


def normalise(text: str) -> str:
    """Lower case, numbers in words, punctuation dropped (apostrophes inside words kept)."""
    text = text.lower().replace("’", "'")
    text = re.sub(r"\d+", lambda m: f" {number_words(int(m[0]))} ", text)
    text = re.sub(r"[^a-z' ]+", " ", text)
    return " ".join(w.strip("'") for w in text.split() if w.strip("'"))


def wer(refs: list[str], hyps: list[str]) -> float:
    import jiwer

    pairs = [(normalise(r), normalise(h)) for r, h in zip(refs, hyps, strict=True)]
    return float(jiwer.wer([r for r, _ in pairs], [h or "<empty>" for _, h in pairs]))


# ------------------------------------------------------------------------------ data


def crema_clips(root: Path, n_actors: int, seed: int = 0) -> list[dict]:
    """``n_actors`` actors (half female, half male, drawn at random among those with every
    sentence in every emotion of :data:`EMOTIONS`) x 12 sentences x the emotions."""
    folder = root / "crema-d" / "AudioWAV"
    files = {p.stem: p for p in folder.glob("*.opus")}
    sex = {}
    with open(root / "crema-d" / "VideoDemographics.csv", newline="") as f:
        for row in csv.DictReader(f):
            sex[row["ActorID"]] = row["Sex"].lower()

    def clip(actor: str, s: str, e: str) -> Path | None:
        found = sorted(p for stem, p in files.items() if stem.startswith(f"{actor}_{s}_{e}_"))
        return found[0] if found else None

    complete = [a for a in sorted(sex) if all(clip(a, s, e) for s in SENTENCES for e in EMOTIONS)]
    rng = random.Random(seed)
    chosen = []
    for want in ("female", "male"):
        pool = [a for a in complete if sex[a] == want]
        chosen += rng.sample(pool, n_actors // 2)
    return [
        {"path": str(clip(a, s, e)), "actor": a, "sex": sex[a], "sentence": s, "emotion": e}
        for a in sorted(chosen)
        for s in SENTENCES
        for e in EMOTIONS
    ]


def sample_files(root: Path, pattern: str, n: int, seed: int = 0) -> list[Path]:
    files = sorted(root.glob(pattern))
    return random.Random(seed).sample(files, min(n, len(files)))


# ------------------------------------------------------------------------------ measurements


def timed(fn, *args, **kwargs) -> tuple[object, float, float]:
    """``fn(*args)``, its CPU seconds (this process) and wall seconds."""
    c, w = time.process_time(), time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.process_time() - c, time.perf_counter() - w


class FitCounter:
    """Counts the fitted-window results the decoder was unsure of (redone the full way)."""

    def __init__(self) -> None:
        from emovox.text import window

        self.window, self.original = window, window.fitted_segment
        self.tried = self.redone = 0

    def __enter__(self) -> FitCounter:
        def counted(*a, **k):
            r = self.original(*a, **k)
            self.tried += 1
            self.redone += r is None
            return r

        self.window.fitted_segment = counted
        return self

    def __exit__(self, *exc) -> None:
        self.window.fitted_segment = self.original


def short_clips(clips: list[dict], audio: list[np.ndarray], window: str) -> dict:
    from emovox.text import Transcriber

    t = Transcriber(window=window)
    t.transcribe_samples(audio[0])  # load and warm up
    with FitCounter() as fc:
        results = []
        cpu = wall = 0.0
        for y in audio:
            tr, c, w = timed(t.transcribe_samples, y)
            results.append(tr)
            cpu, wall = cpu + c, wall + w
    seconds = sum(len(y) for y in audio) / SR
    refs = [SENTENCES[c["sentence"]] for c in clips]
    hyps = [r.text for r in results]
    by = {}
    for key in ("emotion", "sex", "sentence"):
        for v in sorted({c[key] for c in clips}):
            idx = [i for i, c in enumerate(clips) if c[key] == v]
            by[f"{key}={v}"] = round(wer([refs[i] for i in idx], [hyps[i] for i in idx]), 4)
    wrong = [
        {"clip": Path(c["path"]).name, "heard": h}
        for c, h, r in zip(clips, hyps, refs, strict=True)
        if normalise(h) != normalise(r)
    ]
    return {
        "window": window,
        "clips": len(clips),
        "audio_seconds": round(seconds, 1),
        "wer": round(wer(refs, hyps), 4),
        "wer_by": by,
        "exact_sentences": len(clips) - len(wrong),
        "rtf_cpu": round(seconds / cpu, 1),
        "rtf_wall": round(seconds / wall, 1),
        "ms_per_clip_cpu": round(1000 * cpu / len(clips), 1),
        "redone_full": fc.redone if window == "fit" else None,
        "flagged_not_english": sum(r.warning is not None for r in results),
        "wrong": wrong,
    }


def language_check(root: Path, crema_flagged: int, crema_n: int, n: int) -> dict:
    """Share of clips the default transcriber flags as probably not English, per corpus."""
    from emovox.text import default_transcriber

    t = default_transcriber()
    out = {"crema-d": {"clips": crema_n, "flagged": crema_flagged, "english": True}}
    for sets, english in ((OTHER_ENGLISH, True), (NOT_ENGLISH, False)):
        for name, pattern in sets.items():
            files = sample_files(root, pattern, n if english else 2 * n)
            flagged = sum(t.transcribe(f).warning is not None for f in files)
            out[name] = {"clips": len(files), "flagged": flagged, "english": english}
    return out


def long_recording(clips: list[dict], audio: list[np.ndarray], n: int) -> dict:
    """``n`` clips joined with 1 s pauses: WER and speed of the whole (both windows give the
    full path here; with and without faster-whisper's speech filter), and where
    ``predict(transcribe=True)`` puts each clip's words."""
    import emovox
    from emovox.text import Transcriber

    pick = random.Random(1).sample(range(len(clips)), n)
    pause = np.zeros(SR, np.float32)
    parts, spans, t0 = [], [], 0.0
    for i in pick:
        parts += [audio[i], pause]
        spans.append((t0, t0 + len(audio[i]) / SR, SENTENCES[clips[i]["sentence"]]))
        t0 += (len(audio[i]) + len(pause)) / SR
    y = np.concatenate(parts)
    ref = " ".join(s for _, _, s in spans)
    out: dict = {"clips": n, "audio_seconds": round(len(y) / SR, 1)}
    for name, t in (("plain", Transcriber()), ("vad_filter", Transcriber(vad_filter=True))):
        t.transcribe_samples(audio[0])
        tr, cpu, wall = timed(t.transcribe_samples, y)
        out[name] = {
            "wer": round(wer([ref], [tr.text]), 4),
            "rtf_cpu": round(len(y) / SR / cpu, 1),
            "rtf_wall": round(len(y) / SR / wall, 1),
        }
    model = emovox.load()
    model.predict(y, sr=SR)  # warm-up
    _, emo_cpu, _ = timed(model.predict, y, sr=SR)
    p, both_cpu, _ = timed(model.predict, y, sr=SR, transcribe=True)
    placed = []
    for start, end, sentence in spans:
        inside = [s for s in p.segments if start - 0.3 <= (s["start"] + s["end"]) / 2 <= end + 0.3]
        placed.append((sentence, " ".join(s["text"] for s in inside)))
    out["predict"] = {
        "segments": len(p.segments),
        "placement_wer": round(wer([r for r, _ in placed], [h for _, h in placed]), 4),
        "emotion_only_rtf_cpu": round(len(y) / SR / emo_cpu, 1),
        "with_text_rtf_cpu": round(len(y) / SR / both_cpu, 1),
    }
    return out


_CHILD = """
import json, sys, time, emovox
files = json.loads(sys.argv[1])
m = emovox.load()
m.predict(files[0])
c = time.process_time()
m.predict(files)
cpu = time.process_time() - c
text = ('faster_whisper', 'ctranslate2', 'tokenizers', 'jiwer')
names = sorted(k for k in sys.modules if k.split('.')[0] in text or k.startswith('emovox.text'))
print(json.dumps({"cpu": cpu, "modules": names}))
"""


def emotion_only(clips: list[dict], n: int) -> dict:
    """The emotion-only path: CPU ms per clip in a fresh process (and the speech-to-text modules
    it imported: none expected), and in this process with and without ``transcribe=True``."""
    import emovox

    files = [c["path"] for c in clips[:n]]
    r = subprocess.run(
        [sys.executable, "-c", _CHILD, json.dumps(files)],
        capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"},
    )  # fmt: skip
    child = json.loads(r.stdout.strip().splitlines()[-1])
    model = emovox.load()
    model.predict(files[0], transcribe=True)  # warm-up both
    runs: dict[str, list[float]] = {"off": [], "on": []}
    for _ in range(2):  # interleaved, so a busy machine slows both alike
        runs["off"].append(timed(model.predict, files)[1])
        runs["on"].append(timed(model.predict, files, transcribe=True)[1])
    return {
        "clips": n,
        "child_ms_per_clip_cpu": round(1000 * child["cpu"] / n, 1),
        "child_text_modules_imported": child["modules"],
        "ms_per_clip_cpu_off": round(1000 * min(runs["off"]) / n, 1),
        "ms_per_clip_cpu_transcribe": round(1000 * min(runs["on"]) / n, 1),
    }


# ------------------------------------------------------------------------------ report


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def render(res: dict) -> str:
    fit, full = res["short"]["fit"], res["short"]["full"]
    c = res["corpus"]
    lines = [
        f"CREMA-D: {fit['clips']} clips ({c['actors']} actors: {c['female']} female, "
        f"{c['male']} male; all 12 sentences; emotions {', '.join(EMOTIONS)}), "
        f"{fit['audio_seconds']} s of audio. One CPU thread, int8, beam 1, word times on. "
        "RTF = audio seconds per second of processing (CPU time of the process; wall time on "
        "a shared machine in brackets).",
        "",
        "| window | WER | sentences exact | RTF | CPU ms per clip | redone full |",
        "|---|---|---|---|---|---|",
    ]
    for r in (fit, full):
        lines.append(
            f"| {r['window']} | {r['wer']:.3f} | {r['exact_sentences']}/{r['clips']} | "
            f"{r['rtf_cpu']}x ({r['rtf_wall']}x) | {r['ms_per_clip_cpu']} | "
            f"{'-' if r['redone_full'] is None else r['redone_full']} |"
        )
    by = fit["wer_by"]
    lines += [
        "",
        "WER of the default (`fit`) by emotion: "
        + ", ".join(f"{k.split('=')[1]} {v:.3f}" for k, v in by.items() if k.startswith("emo"))
        + "; by sex: "
        + ", ".join(f"{k.split('=')[1]} {v:.3f}" for k, v in by.items() if k.startswith("sex"))
        + ".",
        "",
        "Not-English warning (default transcriber), share of clips flagged:",
        "",
        "| corpus | language | clips | flagged |",
        "|---|---|---|---|",
    ]
    for name, r in res["language"].items():
        lang = "English" if r["english"] else "not English"
        lines.append(
            f"| {name} | {lang} | {r['clips']} | {r['flagged']} ({r['flagged'] / r['clips']:.0%}) |"
        )
    lr = res["long"]
    pr = lr["predict"]
    eo = res["emotion_only"]
    lines += [
        "",
        f"Long recording: {lr['clips']} of those clips joined with 1 s pauses "
        f"({lr['audio_seconds']} s):",
        "",
        "| what | WER | RTF |",
        "|---|---|---|",
        f"| transcription (30 s windows) | {lr['plain']['wer']:.3f} | "
        f"{lr['plain']['rtf_cpu']}x ({lr['plain']['rtf_wall']}x) |",
        f"| same, faster-whisper's speech filter on | {lr['vad_filter']['wer']:.3f} | "
        f"{lr['vad_filter']['rtf_cpu']}x ({lr['vad_filter']['rtf_wall']}x) |",
        f"| `predict(transcribe=True)`: words in their clip's emotion segments "
        f"({pr['segments']} segments) | {pr['placement_wer']:.3f} | {pr['with_text_rtf_cpu']}x |",
        f"| `predict()` emotion only | - | {pr['emotion_only_rtf_cpu']}x |",
        "",
        f"Emotion-only path ({eo['clips']} clips): {eo['ms_per_clip_cpu_off']} CPU ms per clip "
        f"with transcription off (the default), {eo['ms_per_clip_cpu_transcribe']} with "
        f"`transcribe=True`; in a fresh process {eo['child_ms_per_clip_cpu']} ms per clip, "
        "speech-to-text modules imported: "
        + (", ".join(eo["child_text_modules_imported"]) or "none")
        + ".",
        "",
        f"Machine: {res['machine']}; faster-whisper {res['versions']['faster_whisper']}, "
        f"ctranslate2 {res['versions']['ctranslate2']}.",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    ap.add_argument("--actors", type=int, default=4, help="CREMA-D actors (even: half female)")
    ap.add_argument("--quick", action="store_true", help="fewer clips (a smoke run)")
    ap.add_argument("--out", type=Path, default=HERE / "results" / "transcribe.json")
    ap.add_argument("--docs", type=Path, default=ROOT / "docs" / "text.md")
    args = ap.parse_args()
    import ctranslate2
    import faster_whisper

    clips = crema_clips(args.corpora, 2 if args.quick else args.actors)
    if args.quick:
        clips = clips[::5]  # every emotion, sentence and actor
    audio = [decode(c["path"]) for c in clips]
    print(f"{len(clips)} CREMA-D clips", flush=True)
    res: dict = {
        "corpus": {
            "clips": len(clips),
            "actors": len({c["actor"] for c in clips}),
            "female": len({c["actor"] for c in clips if c["sex"] == "female"}),
            "male": len({c["actor"] for c in clips if c["sex"] == "male"}),
            "emotions": list(EMOTIONS),
        },
        "short": {},
    }
    for window in ("fit", "full"):
        res["short"][window] = r = short_clips(clips, audio, window)
        print(f"{window}: WER {r['wer']:.3f}, RTF {r['rtf_cpu']}x CPU", flush=True)
    n = 6 if args.quick else 24
    res["language"] = language_check(
        args.corpora, res["short"]["fit"]["flagged_not_english"], len(clips), n
    )
    print("language:", {k: v["flagged"] for k, v in res["language"].items()}, flush=True)
    res["long"] = long_recording(clips, audio, min(len(clips), 8 if args.quick else 40))
    print("long:", res["long"], flush=True)
    res["emotion_only"] = emotion_only(clips, min(len(clips), 12 if args.quick else 48))
    print("emotion only:", res["emotion_only"], flush=True)
    res["machine"] = f"{cpu_name()}, {os.cpu_count()} CPUs"
    res["versions"] = {
        "faster_whisper": faster_whisper.__version__,
        "ctranslate2": ctranslate2.__version__,
    }
    print(render(res))
    if not args.quick:  # a smoke run writes nothing
        atomic_write_json(args.out, res)
        results_db.write_section(args.docs, "transcribe-bench", render(res))


if __name__ == "__main__":
    main()
