"""Indian EmoSpeech Command (Banga et al. 2019): ``<location>/<kw>-<env>-<emotion>-<time>-<hash>``.

Keywords help, bacho, stop, no, go, yes (``unknown``: a word outside that list, no sentence id);
environments safe, scream, gunshots, ``glass break`` (a space, as in some locations:
``Near Lake``); emotions Calm, Happy, Angry, Fearful in any case (calm is its own label). The
timestamp is 13-digit epoch ms, ``YYYYMMDDhhmmss``, or junk (``??``, ``... copy``): it is only
part of the id, never checked.

Not emotion clips, listed as problems so that ``corpora scan`` counts and shows them:

- ``background-*``: ambient recordings of real places with no command spoken; their emotion tags
  mean nothing. :func:`background_paths` lists them for noise mixing.
- emotion ``None`` on other keywords: no emotion label.

Speakers are the 56-hex hash (``indian_emospeech:<first 12 hex>``), except the "unknown user"
hash, which covers many people: those clips share one speaker id, :data:`UNKNOWN_SPEAKER`, so
every speaker-grouped split keeps them all on one side (they can never leak a person across a
split; but a fold that tests on them tests on many people at once). Only the named speakers
allow speaker-independent scores; use the unknown-user clips for training, or hold out the
corpus as a whole.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from emovox.data.corpora.common import bad_name, finish, iter_audio_files, make_clip
from emovox.data.labels import normalize_emotion
from emovox.data.manifest import Clip, Manifest, Problem

NAME = "indian_emospeech"
#: What the corpus is: its language and how it was recorded (model cards list these).
LANGUAGE = "English/Hindi"
RECORDING = (
    "short spoken commands acted on prompt by volunteers on their own phones and laptops, "
    "in real places with background noise"
)
PATTERN = "Indian EmoSpeech pattern <keyword>-<environment>-<emotion>-<timestamp>-<speaker hash>"
KEYWORDS = frozenset({"help", "bacho", "stop", "no", "go", "yes", "unknown", "background"})
ENVIRONMENTS = frozenset({"safe", "scream", "gunshots", "glass break"})
EMOTIONS = frozenset({"calm", "happy", "angry", "fearful"})
#: The hash the corpus uses for "unknown user" (many different people).
UNKNOWN_HASH = "d14a028c2a3a2bc9476102bb288234c415a2b01f828ea62ac5b3e42f"
#: The one speaker id shared by every unknown-user clip.
UNKNOWN_SPEAKER = f"{NAME}:unknown"
#: The problem reason of a ``background-*`` recording (ambient noise, no speech).
BACKGROUND = "background noise recording, no speech (keyword 'background'): not an emotion clip"
#: The problem reason of a clip whose emotion is ``None``.
NO_EMOTION = "no emotion label (emotion 'None')"

_STEM = re.compile(
    r"^(?P<keyword>[A-Za-z]+)-(?P<environment>[A-Za-z]+(?: [A-Za-z]+)*)-(?P<emotion>[A-Za-z]+)-"
    r"(?P<timestamp>.+)-(?P<hash>[0-9a-fA-F]{56})$"
)


def looks_like(folder: Path, stems: Sequence[str]) -> bool:
    """A location folder of ``help-safe-calm-<timestamp>-<hash>`` files."""
    return any((m := _STEM.match(s)) and m["keyword"].lower() in KEYWORDS for s in stems)


def root_for(folder: Path) -> Path:
    """The corpus root for a location folder: its parent."""
    return folder.parent


def speaker_of(hash_: str) -> str:
    """The speaker id for a speaker hash (:data:`UNKNOWN_SPEAKER` for the unknown user)."""
    h = hash_.lower()
    return UNKNOWN_SPEAKER if h == UNKNOWN_HASH else f"{NAME}:{h[:12]}"


def parse(path: Path) -> Clip | Problem:
    """One file as a clip (probed), or the problem: its name, background noise, no emotion."""
    m = _STEM.match(path.stem)
    if not m:
        return bad_name(path, NAME, PATTERN)
    keyword, environment, label = m["keyword"].lower(), m["environment"].lower(), m["emotion"]
    if keyword not in KEYWORDS:
        return Problem(str(path), f"unknown Indian EmoSpeech keyword {m['keyword']!r}", NAME)
    if environment not in ENVIRONMENTS:
        reason = f"unknown Indian EmoSpeech environment {m['environment']!r}"
        return Problem(str(path), reason, NAME)
    if keyword == "background":
        return Problem(str(path), BACKGROUND, NAME)
    if label.lower() == "none":
        return Problem(str(path), NO_EMOTION, NAME)
    if label.lower() not in EMOTIONS:
        return Problem(str(path), f"unknown Indian EmoSpeech emotion {label!r}", NAME)
    return make_clip(
        path,
        NAME,
        id=f"{NAME}:{path.stem}",
        emotion=normalize_emotion(label),
        label=label,
        speaker=speaker_of(m["hash"]),
        text=None if keyword == "unknown" else f"{NAME}:{keyword}",
    )


def load(root: Path) -> Manifest:
    """Every audio file under ROOT as an Indian EmoSpeech clip or a problem."""
    return finish(parse(p) for p in iter_audio_files(root))


def background_paths(manifest: Manifest) -> list[str]:
    """Paths of the ``background-*`` noise recordings a scan listed (for noise mixing)."""
    return [p.path for p in manifest.problems if p.corpus == NAME and p.reason == BACKGROUND]
