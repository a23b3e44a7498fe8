"""Evaluation protocols: who is trained on and who is tested on, plus a leakage audit of each split.

Every protocol except ``random`` keeps speakers apart. ``random`` reproduces the paper's split
(stratified over clips, so one speaker and one sentence sit on both sides) and is marked LEAKY.
``loco`` holds out each corpus whole in turn; a held-out clip whose emotion no training corpus
has cannot be predicted, so it is left out of the fold's test side (``Fold.unscored``).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field, replace

import numpy as np
from sklearn.model_selection import (
    GroupKFold,
    LeaveOneGroupOut,
    StratifiedGroupKFold,
    StratifiedKFold,
)

PROTOCOLS: dict[str, str] = {
    "speaker-kfold": "k folds grouped by speaker (no speaker in both train and test)",
    "loso": "leave one speaker out",
    "held-out": "fixed held-out test speakers",
    "cross-corpus": "train on some corpora, test on others",
    "loco": "leave one corpus out: each corpus held out whole in turn, trained on the others",
    "random": "stratified random folds over clips (LEAKY: speakers and sentences on both sides)",
}
LEAKY_PROTOCOLS = frozenset({"random"})


class ProtocolError(ValueError):
    """A protocol that cannot be built from the data given."""


@dataclass(frozen=True)
class Fold:
    """Indices into the clip list. ``val`` comes from training speakers only (may be empty);
    ``unscored``: held-out clips neither trained on nor tested (``loco``: an emotion the
    training corpora lack)."""

    name: str
    train: np.ndarray
    test: np.ndarray
    val: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    unscored: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))


@dataclass
class Leakage:
    """What a split shares between its training (train+val) and test sides."""

    shared_speakers: int
    identical_audio: int  # test clips whose decoded audio also appears in training
    shared_sentences: int  # sentence / word ids present on both sides

    @property
    def clean(self) -> bool:
        return self.shared_speakers == 0 and self.identical_audio == 0

    def as_dict(self) -> dict:
        return asdict(self) | {"clean": self.clean}


@dataclass
class Split:
    """The folds of one protocol, whether it leaks, and the audit of every fold."""

    protocol: str
    folds: list[Fold]
    leaky: bool
    description: str
    audits: list[Leakage] = field(default_factory=list)

    def audit_summary(self) -> dict:
        return {
            "shared_speakers": sum(a.shared_speakers for a in self.audits),
            "identical_audio": sum(a.identical_audio for a in self.audits),
            "shared_sentences": sum(a.shared_sentences for a in self.audits),
            "folds_clean": sum(a.clean for a in self.audits),
            "folds": len(self.audits),
        }


def _arr(x: Sequence) -> np.ndarray:
    return np.asarray(list(x), dtype=object)


def speaker_kfold(
    labels: Sequence[str], speakers: Sequence[str], k: int = 5, seed: int = 0
) -> list[Fold]:
    """k folds grouped by speaker, stratified by emotion as far as grouping allows.

    ``k`` is lowered to the number of speakers when there are fewer (TESS has two).
    """
    spk = _arr(speakers)
    n_spk = len(set(spk))
    if n_spk < 2:
        raise ProtocolError(f"speaker folds need at least 2 speakers, found {n_spk}")
    k = min(k, n_spk)
    y = _arr(labels)
    smallest = min(Counter(y.tolist()).values())
    cv = (
        StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        if smallest >= k  # stratifying needs every class in every fold
        else GroupKFold(n_splits=k, shuffle=True, random_state=seed)
    )
    return [
        Fold(f"fold{i + 1}", tr, te)
        for i, (tr, te) in enumerate(cv.split(np.zeros(len(y)), y, groups=spk))
    ]


def leave_one_speaker_out(speakers: Sequence[str]) -> list[Fold]:
    spk = _arr(speakers)
    if len(set(spk)) < 2:
        raise ProtocolError("leave-one-speaker-out needs at least 2 speakers")
    return [
        Fold(f"test={spk[te[0]]}", tr, te)
        for tr, te in LeaveOneGroupOut().split(np.zeros(len(spk)), groups=spk)
    ]


def held_out_speakers(speakers: Sequence[str], test_speakers: Sequence[str]) -> list[Fold]:
    spk = _arr(speakers)
    unknown = set(test_speakers) - set(spk)
    if unknown:
        raise ProtocolError(f"held-out speakers not in the data: {sorted(unknown)}")
    is_test = np.isin(spk, list(test_speakers))
    if is_test.all() or not is_test.any():
        raise ProtocolError("held-out speakers must leave both a training and a test side")
    return [Fold("held-out", np.flatnonzero(~is_test), np.flatnonzero(is_test))]


def _check_corpora(c: np.ndarray, names: Iterable[str], what: str) -> None:
    missing = sorted(set(names) - set(c))
    if missing:
        raise ProtocolError(
            f"{what} not in the data: {', '.join(missing)} (corpora loaded: "
            f"{', '.join(dict.fromkeys(c.tolist()))})"
        )


def cross_corpus(corpora: Sequence[str], train: Sequence[str], test: Sequence[str]) -> list[Fold]:
    c = _arr(corpora)
    _check_corpora(c, [*train, *test], "cross-corpus corpora")
    if set(train) & set(test):
        raise ProtocolError(f"a corpus cannot be on both sides: {sorted(set(train) & set(test))}")
    tr, te = np.flatnonzero(np.isin(c, list(train))), np.flatnonzero(np.isin(c, list(test)))
    if not len(tr) or not len(te):
        raise ProtocolError(f"cross-corpus needs clips on both sides (train={train}, test={test})")
    return [Fold(f"{'+'.join(train)}->{'+'.join(test)}", tr, te)]


def leave_one_corpus_out(
    labels: Sequence[str], corpora: Sequence[str], held_out: Sequence[str] = ()
) -> list[Fold]:
    """One fold per corpus (those in ``held_out``, default every corpus, in data order): train
    on all the other corpora, test on the held-out corpus's clips whose emotion the training
    side has; its other clips are the fold's ``unscored``."""
    c, y = _arr(corpora), _arr(labels)
    names = list(dict.fromkeys(c.tolist()))
    if len(names) < 2:
        raise ProtocolError(f"leave-one-corpus-out needs at least 2 corpora, found {names}")
    _check_corpora(c, held_out, "held-out corpora")
    folds = []
    for name in held_out or names:
        out = c == name
        known = set(y[~out].tolist())
        scored = out & np.isin(y, list(known))
        if not scored.any():
            raise ProtocolError(
                f"held-out corpus {name!r} has no emotion that the other corpora have "
                f"({', '.join(sorted(set(y[out].tolist())))}); nothing could be scored"
            )
        tr, te, skip = np.flatnonzero(~out), np.flatnonzero(scored), np.flatnonzero(out & ~scored)
        folds.append(Fold(f"test={name}", tr, te, unscored=skip))
    return folds


def random_folds(labels: Sequence[str], k: int = 5, seed: int = 0) -> list[Fold]:
    """The paper's protocol: stratified random folds over clips. LEAKY."""
    y = _arr(labels)
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    return [
        Fold(f"fold{i + 1}", tr, te) for i, (tr, te) in enumerate(cv.split(np.zeros(len(y)), y))
    ]


def validation_speakers(
    speakers: Sequence[str],
    corpora: Sequence[str],
    fraction: float,
    seed: int | Sequence[int],
    preset: Iterable[str] = (),
    min_speakers: int = 3,
) -> set[str]:
    """Validation speakers drawn corpus by corpus (corpora in sorted order, one
    ``np.random.default_rng(seed)`` for all).

    Each corpus with at least ``min_speakers`` speakers among ``speakers`` gives
    ``round(fraction x its speakers)`` (at least 1) of them, counting the ``preset`` speakers
    it already has (they are always in the result); smaller corpora (TESS has two speakers in
    all) give none. This keeps validation near ``fraction`` of the clips when speakers differ a
    lot in size (a TESS speaker has 1400 clips, a CREMA-D one about 80) and gives every large
    corpus a share.
    """
    spk = _arr(speakers)
    corp = _arr(corpora)
    rng = np.random.default_rng(seed)
    val_spk = set(preset)
    for c in sorted(set(corp)):
        uniq = sorted(set(spk[corp == c]))
        if len(uniq) < min_speakers:
            continue
        n_val = max(1, int(round(fraction * len(uniq))))
        have = len(val_spk & set(uniq))
        rest = [u for u in rng.permutation(np.array(uniq, dtype=object)) if u not in val_spk]
        val_spk.update(rest[: max(0, n_val - have)])
    return val_spk


def with_validation(
    fold: Fold,
    speakers: Sequence[str],
    fraction: float = 0.15,
    seed: int = 0,
    leaky: bool = False,
    corpora: Sequence[str] | None = None,
) -> Fold:
    """Carve a validation set out of the training side: whole training speakers (or, for a
    leaky protocol, random training clips). Never touches the test side.

    Without ``corpora``, ``fraction`` of ALL training speakers (``default_rng(seed)``). With
    ``corpora`` (the deep trainer's split), :func:`validation_speakers` of the training side,
    drawn with ``default_rng([seed, 11])``; ``fraction <= 0`` then gives no validation, and a
    leaky protocol, or no corpus with 3 training speakers, falls back to the draw without
    ``corpora``.
    """
    train = np.asarray(fold.train)
    if corpora is not None:
        if fraction <= 0:
            return fold
        if not leaky:
            spk = _arr(speakers)[train]
            val_spk = validation_speakers(spk, _arr(corpora)[train], fraction, [seed, 11])
            if val_spk:
                is_val = np.array([s in val_spk for s in spk], dtype=bool)
                return replace(fold, train=train[~is_val], val=train[is_val])
    rng = np.random.default_rng(seed)
    if leaky:
        perm = rng.permutation(train)
        n_val = max(1, int(round(fraction * len(train))))
        return replace(fold, train=np.sort(perm[n_val:]), val=np.sort(perm[:n_val]))
    spk = _arr(speakers)[train]
    uniq = np.array(sorted(set(spk)), dtype=object)
    if len(uniq) < 2:  # a single training speaker: no speaker-disjoint validation is possible
        return fold
    n_val = max(1, int(round(fraction * len(uniq))))
    val_spk = set(rng.permutation(uniq)[:n_val])
    is_val = np.array([s in val_spk for s in spk])
    return replace(fold, train=train[~is_val], val=train[is_val])


def audit(
    fold: Fold,
    speakers: Sequence[str],
    hashes: Sequence[str | None] | None = None,
    texts: Sequence[str | None] | None = None,
) -> Leakage:
    """Count what the training side (train + val) shares with the test side."""
    fit_side = np.concatenate([fold.train, fold.val]).astype(int)
    spk = _arr(speakers)
    shared_spk = len(set(spk[fit_side]) & set(spk[fold.test]))
    same_audio = 0
    if hashes is not None:
        h = _arr(hashes)
        seen = {x for x in h[fit_side] if x}
        same_audio = int(sum(1 for x in h[fold.test] if x and x in seen))
    shared_txt = 0
    if texts is not None:
        t = _arr(texts)
        shared_txt = len({x for x in t[fit_side] if x} & {x for x in t[fold.test] if x})
    return Leakage(shared_spk, same_audio, shared_txt)


def make_split(
    protocol: str,
    labels: Sequence[str],
    speakers: Sequence[str],
    corpora: Sequence[str] | None = None,
    *,
    k: int = 5,
    seed: int = 0,
    test_speakers: Sequence[str] = (),
    train_corpora: Sequence[str] = (),
    test_corpora: Sequence[str] = (),
    val_fraction: float = 0.0,
    hashes: Sequence[str | None] | None = None,
    texts: Sequence[str | None] | None = None,
) -> Split:
    """Build the folds of a named protocol and audit each for leakage. ``loco`` holds out each
    of ``test_corpora`` (default: every corpus) in turn."""
    if protocol == "speaker-kfold":
        folds = speaker_kfold(labels, speakers, k, seed)
    elif protocol == "loso":
        folds = leave_one_speaker_out(speakers)
    elif protocol == "held-out":
        if not test_speakers:
            raise ProtocolError("the held-out protocol needs --test-speakers")
        folds = held_out_speakers(speakers, test_speakers)
    elif protocol == "cross-corpus":
        if corpora is None or not train_corpora or not test_corpora:
            raise ProtocolError("cross-corpus needs --train-corpora and --test-corpora")
        folds = cross_corpus(corpora, train_corpora, test_corpora)
    elif protocol == "loco":
        if corpora is None:
            raise ProtocolError("leave-one-corpus-out needs the corpus of every clip")
        if train_corpora:
            raise ProtocolError(
                "loco trains on every corpus but the held-out one: use --corpus to choose the "
                "corpora and --test-corpora to choose which are held out (--train-corpora is "
                "for cross-corpus)"
            )
        folds = leave_one_corpus_out(labels, corpora, test_corpora)
    elif protocol == "random":
        folds = random_folds(labels, k, seed)
    else:
        raise ProtocolError(f"unknown protocol {protocol!r}; choose from {', '.join(PROTOCOLS)}")
    leaky = protocol in LEAKY_PROTOCOLS
    if val_fraction > 0:
        folds = [with_validation(f, speakers, val_fraction, seed, leaky) for f in folds]
    split = Split(protocol, folds, leaky, PROTOCOLS[protocol])
    split.audits = [audit(f, speakers, hashes, texts) for f in folds]
    return split
