import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from emovox.evaluation.splits import ProtocolError, audit, make_split, with_validation

EMOS = ["neutral", "happy", "sad", "angry"]


@st.composite
def corpora_data(draw):
    n_spk = draw(st.integers(2, 12))
    per = draw(st.lists(st.integers(2, 12), min_size=n_spk, max_size=n_spk))
    speakers, labels = [], []
    for s, n in enumerate(per):
        for j in range(n):
            speakers.append(f"c:{s}")
            labels.append(EMOS[(j + s) % len(EMOS)])
    return labels, speakers


@settings(max_examples=60, deadline=None)
@given(corpora_data(), st.integers(2, 8), st.integers(0, 5))
def test_speaker_kfold_never_shares_a_speaker_or_a_clip(data, k, seed):
    labels, speakers = data
    split = make_split("speaker-kfold", labels, speakers, k=k, seed=seed, val_fraction=0.2)
    spk = np.array(speakers)
    tested = np.concatenate([f.test for f in split.folds])
    assert sorted(tested) == list(range(len(labels)))  # every clip tested exactly once
    for f in split.folds:
        fit = np.concatenate([f.train, f.val])
        assert not set(spk[fit]) & set(spk[f.test])
        assert not set(f.train) & set(f.val)
        assert not set(f.train) & set(f.test) and not set(f.val) & set(f.test)
        if len(f.val):
            assert not set(spk[f.train]) & set(spk[f.val])  # validation speakers are new too
    assert split.audit_summary()["shared_speakers"] == 0
    assert not split.leaky


@settings(max_examples=30, deadline=None)
@given(corpora_data())
def test_loso_tests_each_speaker_once(data):
    labels, speakers = data
    split = make_split("loso", labels, speakers)
    assert len(split.folds) == len(set(speakers))
    for f in split.folds:
        assert len({speakers[i] for i in f.test}) == 1
        assert not {speakers[i] for i in f.train} & {speakers[i] for i in f.test}


def test_random_split_is_marked_leaky_and_audit_sees_it():
    speakers = [f"s{i % 3}" for i in range(60)]
    labels = [EMOS[i % 4] for i in range(60)]
    texts = [f"t{i % 5}" for i in range(60)]
    hashes = [f"h{i % 30}" for i in range(60)]  # every recording appears twice
    split = make_split("random", labels, speakers, k=3, hashes=hashes, texts=texts)
    assert split.leaky
    s = split.audit_summary()
    assert s["shared_speakers"] > 0 and s["shared_sentences"] > 0 and s["identical_audio"] > 0
    assert s["folds_clean"] == 0


def test_audit_counts_identical_audio_across_speaker_folds():
    # Two speakers, one recording duplicated across them (as the CREMA-D quirks do within one).
    from emovox.evaluation.splits import Fold

    fold = Fold("x", np.array([0, 1]), np.array([2, 3]))
    a = audit(
        fold, ["a", "a", "b", "b"], hashes=["h1", "h2", "h2", "h3"], texts=["x", "y", "z", "x"]
    )
    assert a.shared_speakers == 0 and a.identical_audio == 1 and a.shared_sentences == 1
    assert not a.clean


def test_cross_corpus_and_held_out():
    corpora = ["ravdess"] * 4 + ["tess"] * 4
    speakers = ["r1", "r1", "r2", "r2", "t1", "t1", "t2", "t2"]
    labels = EMOS * 2
    s = make_split(
        "cross-corpus", labels, speakers, corpora, train_corpora=["ravdess"], test_corpora=["tess"]
    )
    assert list(s.folds[0].test) == [4, 5, 6, 7]
    with pytest.raises(ProtocolError):
        make_split(
            "cross-corpus", labels, speakers, corpora, train_corpora=["tess"], test_corpora=["tess"]
        )
    h = make_split("held-out", labels, speakers, test_speakers=["t2"])
    assert list(h.folds[0].test) == [6, 7]
    with pytest.raises(ProtocolError, match="not in the data"):
        make_split("held-out", labels, speakers, test_speakers=["nobody"])
    with pytest.raises(ProtocolError, match="unknown protocol"):
        make_split("bogus", labels, speakers)


def test_validation_comes_from_training_speakers_only():
    from emovox.evaluation.splits import Fold

    speakers = [f"s{i // 4}" for i in range(40)]
    fold = Fold("f", np.arange(0, 32), np.arange(32, 40))
    v = with_validation(fold, speakers, fraction=0.25, seed=1)
    assert len(v.val) > 0
    assert set(v.val) <= set(range(32)) and not set(v.val) & set(v.train)
    assert not {speakers[i] for i in v.val} & {speakers[i] for i in v.train}


@st.composite
def corpora_with_labels(draw):
    """2-4 corpora, each with its own subset of emotions and a few speakers."""
    n_corp = draw(st.integers(2, 4))
    labels, speakers, corpora = [], [], []
    for c in range(n_corp):
        emos = draw(st.lists(st.sampled_from(EMOS), min_size=1, max_size=4, unique=True))
        for s in range(draw(st.integers(1, 3))):
            for j in range(draw(st.integers(1, 6))):
                labels.append(emos[j % len(emos)])
                speakers.append(f"c{c}:{s}")
                corpora.append(f"c{c}")
    return labels, speakers, corpora


@settings(max_examples=60, deadline=None)
@given(corpora_with_labels())
def test_loco_holds_out_each_corpus_whole_and_scores_only_known_emotions(data):
    labels, speakers, corpora = data
    y, c = np.array(labels), np.array(corpora)
    try:
        split = make_split("loco", labels, speakers, corpora, val_fraction=0.3)
    except ProtocolError as exc:  # a corpus whose emotions no other corpus has
        assert "no emotion that the other corpora have" in str(exc)
        return
    assert [f.name for f in split.folds] == [f"test={n}" for n in dict.fromkeys(corpora)]
    for f in split.folds:
        held = set(c[f.test])
        assert len(held) == 1
        (name,) = held
        fit = np.concatenate([f.train, f.val]).astype(int)
        assert name not in set(c[fit])  # the held-out corpus is never trained on
        assert sorted([*f.test, *f.unscored, *fit]) == list(range(len(labels)))
        assert set(y[f.test]) <= set(y[fit])  # scored: emotions the training side has
        assert not set(y[f.unscored]) & set(y[fit])  # unscored: emotions it lacks
    assert split.audit_summary()["shared_speakers"] == 0 and not split.leaky


def test_loco_errors_and_held_out_choice():
    labels = ["happy", "sad", "happy", "sad", "angry", "angry"]
    speakers = ["a:1", "a:1", "b:1", "b:1", "c:1", "c:1"]
    corpora = ["a", "a", "b", "b", "c", "c"]
    s = make_split("loco", labels, speakers, corpora, test_corpora=["b"])
    assert [f.name for f in s.folds] == ["test=b"] and list(s.folds[0].test) == [2, 3]
    with pytest.raises(ProtocolError, match="no emotion that the other corpora have"):
        make_split("loco", labels, speakers, corpora)  # c has only angry
    with pytest.raises(ProtocolError, match="held-out corpora not in the data: zz"):
        make_split("loco", labels, speakers, corpora, test_corpora=["zz"])
    with pytest.raises(ProtocolError, match="at least 2 corpora"):
        make_split("loco", labels[:2], speakers[:2], corpora[:2])
    with pytest.raises(ProtocolError, match="--train-corpora is for cross-corpus"):
        make_split("loco", labels, speakers, corpora, train_corpora=["a"], test_corpora=["b"])
    with pytest.raises(ProtocolError, match="cross-corpus corpora not in the data: zz"):
        make_split(
            "cross-corpus", labels, speakers, corpora, train_corpora=["a"], test_corpora=["zz"]
        )
