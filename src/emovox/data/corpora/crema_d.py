"""CREMA-D: ``AudioWAV/AAAA_SSS_EEE_LL.ext`` (Cao et al. 2014).

Actors 1001-1091, 12 sentences, emotions ANG DIS FEA HAP NEU SAD, level LO MD HI XX. The
distributed misnaming ``1040_ITH_SAD_X`` is read as level XX (its id uses ``XX``). Genders come
from ``VideoDemographics.csv`` in the corpus folder (or next to ``AudioWAV``) when present.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from pathlib import Path

from emovox.data.corpora.common import bad_name, finish, iter_audio_files, make_clip
from emovox.data.manifest import Clip, Manifest, Problem

NAME = "crema_d"
#: What the corpus is: its language and how it was recorded (model cards list these).
LANGUAGE = "English (US)"
RECORDING = "acted by 91 actors of varied ages and backgrounds, 12 sentences, studio"
PATTERN = "CREMA-D pattern AAAA_SSS_EEE_LL"
EMOTIONS: dict[str, str] = {
    "ANG": "angry",
    "DIS": "disgust",
    "FEA": "fearful",
    "HAP": "happy",
    "NEU": "neutral",
    "SAD": "sad",
}
SENTENCES = frozenset(
    {"IEO", "TIE", "IOM", "IWW", "TAI", "MTI", "IWL", "ITH", "DFA", "ITS", "TSI", "WSI"}
)
LEVELS = frozenset({"LO", "MD", "HI", "XX"})
DEMOGRAPHICS = "VideoDemographics.csv"

_STEM = re.compile(r"^(\d{4})_([A-Za-z]{3})_([A-Za-z]{3})_([A-Za-z]{1,2})$")


def looks_like(folder: Path, stems: Sequence[str]) -> bool:
    """A folder of ``1001_DFA_ANG_XX``-style files."""
    return any(_STEM.match(s) for s in stems)


def root_for(folder: Path) -> Path:
    """The corpus root for a matching folder: the parent of ``AudioWAV``."""
    return folder.parent if folder.name.lower() == "audiowav" else folder


def read_genders(root: Path) -> dict[str, str]:
    """Actor id -> "female"/"male" from ``VideoDemographics.csv`` (empty when not found)."""
    root = Path(root)
    candidates = [root / DEMOGRAPHICS, root.parent / DEMOGRAPHICS]
    if root.is_dir():
        candidates[1:1] = sorted(root.glob(f"*/{DEMOGRAPHICS}"))
    for csv_path in candidates:
        if csv_path.is_file():
            with open(csv_path, newline="", encoding="utf-8-sig") as fh:
                rows = csv.DictReader(fh)
                return {
                    (r.get("ActorID") or "").strip(): (r.get("Sex") or "").strip().lower()
                    for r in rows
                    if (r.get("Sex") or "").strip().lower() in ("female", "male")
                }
    return {}


def parse(path: Path, genders: dict[str, str] | None = None) -> Clip | Problem:
    """One CREMA-D file as a clip (probed), or the problem with its name."""
    m = _STEM.match(path.stem)
    if not m:
        return bad_name(path, NAME, PATTERN)
    actor, sentence, emotion, level = m.group(1), *(g.upper() for g in m.groups()[1:])
    note = None
    if level == "X":  # known misnaming of 1040_ITH_SAD_XX in some copies
        level, note = "XX", "level 'X' read as XX (a known misnaming in some copies)"
    checks = [
        (1001 <= int(actor) <= 1091, f"actor {actor} (1001-1091)"),
        (sentence in SENTENCES, f"sentence {sentence}"),
        (emotion in EMOTIONS, f"emotion {emotion} ({' '.join(EMOTIONS)})"),
        (level in LEVELS, f"level {level} (LO MD HI XX)"),
    ]
    bad = [what for ok, what in checks if not ok]
    if bad:
        return Problem(str(path), "invalid CREMA-D " + ", ".join(bad), NAME)
    return make_clip(
        path,
        NAME,
        id=f"{NAME}:{actor}_{sentence}_{emotion}_{level}",
        emotion=EMOTIONS[emotion],
        label=emotion,
        speaker=f"{NAME}:{actor}",
        gender=(genders or {}).get(actor),
        text=f"{NAME}:{sentence}",
        note=note,
    )


def load(root: Path) -> Manifest:
    """Every audio file under ROOT as a CREMA-D clip or a problem."""
    genders = read_genders(root)
    return finish(parse(p, genders) for p in iter_audio_files(root))
