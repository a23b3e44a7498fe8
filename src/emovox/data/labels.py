"""One emotion taxonomy for every corpus, and the named label sets models are trained on."""

from __future__ import annotations

from collections.abc import Iterable

#: The unified emotions, in a fixed order (EmoDB's boredom is kept as its own label).
EMOTIONS: tuple[str, ...] = (
    "neutral",
    "calm",
    "happy",
    "sad",
    "angry",
    "fearful",
    "disgust",
    "surprised",
    "boredom",
)

#: Named label sets. ``paper7`` is the paper's seven emotions (no calm), ``common6`` CREMA-D's six.
LABEL_SETS: dict[str, tuple[str, ...]] = {
    "paper7": ("neutral", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
    "common6": ("neutral", "happy", "sad", "angry", "fearful", "disgust"),
    "core4": ("neutral", "happy", "sad", "angry"),
    "ravdess8": ("neutral", "calm", "happy", "sad", "angry", "fearful", "disgust", "surprised"),
    "all": EMOTIONS,
}

# Spellings seen in corpus names and user folders, mapped onto the taxonomy.
_ALIASES: dict[str, str] = {
    "neutral": "neutral",
    "neu": "neutral",
    "n": "neutral",
    "calm": "calm",
    "happy": "happy",
    "happiness": "happy",
    "hap": "happy",
    "joy": "happy",
    "sad": "sad",
    "sadness": "sad",
    "angry": "angry",
    "anger": "angry",
    "ang": "angry",
    "fearful": "fearful",
    "fear": "fearful",
    "fea": "fearful",
    "anxiety": "fearful",
    "disgust": "disgust",
    "dis": "disgust",
    "disgusted": "disgust",
    "surprised": "surprised",
    "surprise": "surprised",
    "sur": "surprised",
    "ps": "surprised",
    "pleasant_surprise": "surprised",
    "pleasant_surprised": "surprised",
    "boredom": "boredom",
    "bored": "boredom",
}


class LabelError(ValueError):
    """An emotion name or label-set name that emovox does not know."""


def normalize_emotion(name: str) -> str:
    """Map a corpus or user spelling (``'Pleasant_surprise'``, ``'ANG'``) onto the taxonomy."""
    key = name.strip().lower().replace("-", "_").replace(" ", "_")
    if key in _ALIASES:
        return _ALIASES[key]
    raise LabelError(f"unknown emotion {name!r}; known: {', '.join(EMOTIONS)}")


def label_set(name_or_labels: str | Iterable[str]) -> tuple[str, ...]:
    """Resolve a label-set name (``paper7``) or a comma list / iterable of emotions."""
    if isinstance(name_or_labels, str):
        if name_or_labels in LABEL_SETS:
            return LABEL_SETS[name_or_labels]
        items = [s for s in name_or_labels.split(",") if s.strip()]
        if len(items) < 2:
            raise LabelError(
                f"unknown label set {name_or_labels!r}; use one of {', '.join(LABEL_SETS)} "
                "or a comma-separated list of at least two emotions"
            )
    else:
        items = list(name_or_labels)
    labels = tuple(dict.fromkeys(normalize_emotion(s) for s in items))
    return tuple(e for e in EMOTIONS if e in labels)


def label_set_name(labels: Iterable[str]) -> str:
    """The name of a known label set with exactly these emotions, else their comma list."""
    want = set(labels)
    for name, members in LABEL_SETS.items():
        if set(members) == want:
            return name
    return ",".join(e for e in EMOTIONS if e in want)
