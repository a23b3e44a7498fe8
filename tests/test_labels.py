import pytest

from emovox.data.labels import (
    EMOTIONS,
    LABEL_SETS,
    LabelError,
    label_set,
    label_set_name,
    normalize_emotion,
)
from emovox.data.manifest import Clip, Manifest


@pytest.mark.parametrize(
    "raw,want",
    [
        ("ANG", "angry"),
        ("Pleasant_surprise", "surprised"),
        ("pleasant surprised", "surprised"),
        ("ps", "surprised"),
        ("Fear", "fearful"),
        ("happiness", "happy"),
        ("boredom", "boredom"),
    ],
)
def test_normalize_emotion(raw, want):
    assert normalize_emotion(raw) == want


def test_unknown_emotion_is_a_clear_error():
    with pytest.raises(LabelError, match="unknown emotion 'contempt'"):
        normalize_emotion("contempt")


def test_label_sets():
    assert "calm" not in LABEL_SETS["paper7"] and len(LABEL_SETS["paper7"]) == 7
    assert set(LABEL_SETS["core4"]) == {"neutral", "happy", "sad", "angry"}
    assert label_set("angry,Sad,neutral") == ("neutral", "sad", "angry")  # taxonomy order
    assert label_set("all") == EMOTIONS
    with pytest.raises(LabelError):
        label_set("paper9")


def test_restrict_counts_excluded_clips():
    def clip(i, e):
        return Clip(f"x:{i}", "x", f"/{i}.wav", e, e, "x:1")

    m = Manifest([clip(1, "calm"), clip(2, "happy"), clip(3, "calm"), clip(4, "boredom")])
    kept, excluded = m.restrict("paper7")
    assert [c.emotion for c in kept.clips] == ["happy"]
    assert excluded == {"calm": 2, "boredom": 1}


def test_label_set_name():
    assert label_set_name(["happy", "sad", "neutral", "angry"]) == "core4"
    assert label_set_name(["sad", "happy"]) == "happy,sad"


def test_new_corpora_labels_map_into_the_taxonomy():
    from emovox.data.corpora import indian_emospeech, korean_emotiontts, spanish_acted

    assert set(spanish_acted.EMOTIONS.values()) == set(LABEL_SETS["paper7"])
    assert set(korean_emotiontts.EMOTIONS) == set(LABEL_SETS["core4"])
    # Indian EmoSpeech's Calm stays calm (its own label, as in RAVDESS), never neutral
    assert {normalize_emotion(e.title()) for e in indian_emospeech.EMOTIONS} == {
        "calm",
        "happy",
        "angry",
        "fearful",
    }
    assert normalize_emotion("Calm") == "calm" != normalize_emotion("neutral")
