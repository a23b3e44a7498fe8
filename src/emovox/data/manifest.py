"""Manifest rows (one per clip) and the scan report that lists what could not be used."""

from __future__ import annotations

import csv
import json
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

from emovox.data.labels import label_set


@dataclass(frozen=True)
class Clip:
    """One audio clip of a corpus, with its unified emotion and who said what."""

    id: str  # unique across corpora, e.g. "ravdess:03-01-05-01-02-01-12"
    corpus: str
    path: str
    emotion: str  # unified taxonomy (emovox.data.labels.EMOTIONS)
    label: str  # the corpus's own label, as written in its naming
    speaker: str  # unique across corpora, e.g. "ravdess:12"
    gender: str | None = None  # "female" / "male" where the corpus says
    text: str | None = None  # sentence / word id, unique across corpora
    duration: float | None = None  # seconds
    sample_rate: int | None = None
    note: str | None = None  # a known quirk of the published corpus that the loader repaired


@dataclass(frozen=True)
class Problem:
    """A file that a loader could not turn into a clip, and why."""

    path: str
    reason: str
    corpus: str | None = None


@dataclass
class Manifest:
    """Clips plus the problems found while scanning; nothing is dropped without a Problem."""

    clips: list[Clip] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.clips)

    def extend(self, other: Manifest) -> None:
        self.clips.extend(other.clips)
        self.problems.extend(other.problems)

    def corpora(self) -> list[str]:
        return sorted(
            {c.corpus for c in self.clips} | {p.corpus for p in self.problems if p.corpus}
        )

    def where(self, corpora: Sequence[str] | None = None) -> Manifest:
        """Only the clips (and problems) of the given corpora."""
        if not corpora:
            return Manifest(list(self.clips), list(self.problems))
        keep = set(corpora)
        return Manifest(
            [c for c in self.clips if c.corpus in keep],
            [p for p in self.problems if p.corpus in keep],
        )

    def restrict(self, labels: str | Iterable[str]) -> tuple[Manifest, Counter[str]]:
        """Keep clips whose emotion is in the label set; return the counts of excluded emotions."""
        allowed = set(label_set(labels))
        kept = [c for c in self.clips if c.emotion in allowed]
        excluded = Counter(c.emotion for c in self.clips if c.emotion not in allowed)
        return Manifest(kept, list(self.problems)), excluded

    def summary(self) -> dict[str, dict]:
        """Per corpus: clips, speakers, hours, emotions (label -> count) and problems."""
        out: dict[str, dict] = {}
        for name in self.corpora():
            clips = [c for c in self.clips if c.corpus == name]
            emotions = Counter(c.emotion for c in clips)
            out[name] = {
                "clips": len(clips),
                "speakers": len({c.speaker for c in clips}),
                "hours": round(sum(c.duration or 0.0 for c in clips) / 3600, 3),
                "emotions": dict(sorted(emotions.items())),
                "problems": [
                    {"path": p.path, "reason": p.reason} for p in self.problems if p.corpus == name
                ],
            }
            notes = [{"path": c.path, "note": c.note} for c in clips if c.note]
            if notes:
                out[name]["notes"] = notes
        stray = [{"path": p.path, "reason": p.reason} for p in self.problems if not p.corpus]
        if stray:  # audio outside any recognised layout: listed, never dropped
            out["unrecognised"] = {
                "clips": 0,
                "speakers": 0,
                "hours": 0.0,
                "emotions": {},
                "problems": stray,
            }
        return out

    # --- persistence -------------------------------------------------------------------------
    def to_csv(self, path: str | Path) -> None:
        names = [f.name for f in fields(Clip)]
        with open(path, "w", newline="", encoding="utf-8") as fh:
            w = csv.DictWriter(fh, fieldnames=names)
            w.writeheader()
            for c in self.clips:
                w.writerow(asdict(c))

    def to_json(self) -> str:
        return json.dumps(
            {
                "clips": [asdict(c) for c in self.clips],
                "problems": [asdict(p) for p in self.problems],
            }
        )
