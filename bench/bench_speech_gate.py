"""How well the speech gate (emovox.audio.speech_gate) tells speech from non-speech.

    python bench/bench_speech_gate.py [--corpora DIR] [--speech 100] [--background 100]

Speech: ``--speech`` random CREMA-D clips and as many RAVDESS clips (seed 0). Non-speech:
``--background`` random ``background-*`` recordings of the Indian EmoSpeech corpus (ambient sound
of houses, metro, roads, ...) and synthetic sounds (white noise, pink noise, mains hum, chords,
a chord sequence, clicks). For each clip and detector (silero, energy) it records the seconds and
share of speech; then counts the clips the default gate (and a few other thresholds) passes.
Speech clips refused are false rejections; non-speech clips passed are false acceptances.

Writes ``bench/results/speech_gate.json``.
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from emovox.audio.decode import SAMPLE_RATE, decode  # noqa: E402
from emovox.audio.speech_gate import (  # noqa: E402
    MIN_SPEECH_FRACTION,
    MIN_SPEECH_SECONDS,
    SpeechGate,
)
from emovox.io import atomic_write_json  # noqa: E402

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
SWEEP = [(s, f) for s in (0.2, 0.3, 0.5, 0.75) for f in (0.0, 0.1, 0.2)]


def synthetic(seconds: float = 5.0, seed: int = 0) -> dict[str, np.ndarray]:
    """Non-speech test sounds, 16 kHz."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE)
    t = np.arange(n) / SAMPLE_RATE

    def chord(freqs: tuple[float, ...], tt: np.ndarray) -> np.ndarray:
        return sum(np.sin(2 * np.pi * h * f * tt) / h for f in freqs for h in (1, 2, 3))

    pink = np.fft.irfft(np.fft.rfft(rng.standard_normal(n)) / np.sqrt(np.arange(n // 2 + 1) + 1))
    seq = np.zeros(n)
    step = SAMPLE_RATE // 2  # a new chord every half second, each decaying: music-like
    chords = [(261.6, 329.6, 392.0), (220.0, 261.6, 329.6), (174.6, 220.0, 261.6), (196.0, 246.9)]
    for i, a in enumerate(range(0, n, step)):
        tt = t[a : a + step] - t[a]
        seq[a : a + step] = chord(chords[i % 4], tt)[: n - a] * np.exp(-3 * tt)[: n - a]
    clicks = np.zeros(n)
    clicks[:: SAMPLE_RATE // 10] = 0.9
    random_clicks = np.zeros(n)
    random_clicks[rng.integers(0, n, 25)] = rng.uniform(-1, 1, 25)
    sounds = {
        "white noise, full scale": rng.uniform(-1, 1, n),
        "white noise, -20 dBFS": 0.1 * rng.standard_normal(n),
        "pink noise": pink,
        "mains hum 50 Hz + harmonics": chord((50.0,), t),
        "C major chord (harmonic tones)": chord((261.6, 329.6, 392.0), t),
        "chord sequence (decaying notes)": seq,
        "click train 10 Hz": clicks,
        "random clicks": random_clicks,
    }
    return {k: (0.5 * v / np.max(np.abs(v))).astype(np.float32) if "white" not in k else
            v.astype(np.float32) for k, v in sounds.items()}  # fmt: skip


def measure(gate: SpeechGate, y: np.ndarray) -> dict[str, float]:
    a = gate.measure(y)
    return {"seconds": a.seconds, "fraction": a.fraction}


def passes(m: dict[str, float], min_s: float, min_f: float) -> bool:
    return m["seconds"] >= min_s and m["fraction"] >= min_f


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpora", type=Path, default=ROOT.parent / "shared" / "corpora")
    ap.add_argument("--speech", type=int, default=100, help="clips from each speech corpus")
    ap.add_argument("--background", type=int, default=100)
    ap.add_argument("--out", type=Path, default=HERE / "results" / "speech_gate.json")
    args = ap.parse_args()

    rnd = random.Random(0)
    c = args.corpora
    sets = {
        "crema-d": rnd.sample(sorted(c.glob("crema-d/AudioWAV/*.opus")), args.speech),
        "ravdess": rnd.sample(sorted(c.glob("ravdess/**/*.opus")), args.speech),
        "background": rnd.sample(
            sorted(c.glob("indian-emospeech/*/background-*")), args.background
        ),
    }
    gates = {d: SpeechGate(d) for d in ("silero", "energy")}
    clips: list[dict] = []
    t0 = time.perf_counter()
    for kind, files in sets.items():
        for f in files:
            y = decode(f)
            row = {"set": kind, "clip": str(f.relative_to(c)), "duration": len(y) / SAMPLE_RATE}
            row |= {d: measure(g, y) for d, g in gates.items()}
            clips.append(row)
    sounds = synthetic()
    for name, y in sounds.items():
        row = {"set": "synthetic", "clip": name, "duration": len(y) / SAMPLE_RATE}
        clips.append(row | {d: measure(g, y) for d, g in gates.items()})
    seconds = time.perf_counter() - t0

    def summary(min_s: float, min_f: float) -> dict:
        out: dict = {"min_seconds": min_s, "min_fraction": min_f}
        for d in gates:
            speech = [r for r in clips if r["set"] in ("crema-d", "ravdess")]
            bg = [r for r in clips if r["set"] == "background"]
            syn = [r for r in clips if r["set"] == "synthetic"]
            out[d] = {
                "speech_refused": sum(not passes(r[d], min_s, min_f) for r in speech),
                "speech_clips": len(speech),
                "background_refused": sum(not passes(r[d], min_s, min_f) for r in bg),
                "background_clips": len(bg),
                "synthetic_refused": sum(not passes(r[d], min_s, min_f) for r in syn),
                "synthetic_clips": len(syn),
            }
        return out

    default = summary(MIN_SPEECH_SECONDS, MIN_SPEECH_FRACTION)
    pct = {}
    for kind in ("crema-d", "ravdess", "background"):
        for d in gates:
            for key in ("seconds", "fraction"):
                v = [r[d][key] for r in clips if r["set"] == kind]
                q = np.percentile(v, [0, 5, 50, 100])
                pct[f"{kind}/{d}/{key}_min_p5_p50_max"] = [round(float(x), 3) for x in q]

    def default_passes(r: dict) -> bool:
        return passes(r["silero"], MIN_SPEECH_SECONDS, MIN_SPEECH_FRACTION)

    result = {
        "default": default,
        "sweep": [summary(s, f) for s, f in SWEEP],
        "percentiles": pct,
        "synthetic": {r["clip"]: {d: r[d] for d in gates} for r in clips[-len(sounds) :]},
        "passed_background_silero": [
            r["clip"] for r in clips if r["set"] == "background" and default_passes(r)
        ],
        "refused_speech_silero": [
            r["clip"] for r in clips if r["set"] in ("crema-d", "ravdess") and not default_passes(r)
        ],
        "seconds_total": round(seconds, 1),
        "clips": clips,
    }
    atomic_write_json(args.out, result)
    for d in gates:
        s = default[d]
        print(
            f"{d:>7}: speech refused {s['speech_refused']}/{s['speech_clips']}, background "
            f"refused {s['background_refused']}/{s['background_clips']}, synthetic refused "
            f"{s['synthetic_refused']}/{s['synthetic_clips']}"
        )
    print(f"wrote {args.out} ({seconds:.1f} s)")


if __name__ == "__main__":
    main()
