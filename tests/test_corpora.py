"""Corpus loaders on generated trees that copy each corpus's naming (quirks included)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.data import corpora
from emovox.data.corpora import crema_d, emodb, generic, indian_emospeech, ravdess, savee, tess
from emovox.data.corpora.common import iter_audio_files, probe
from emovox.data.labels import EMOTIONS
from emovox.data.manifest import Clip, Manifest, Problem

SR = 16000
FORMATS = {".flac": ("FLAC", "PCM_16"), ".ogg": ("OGG", "VORBIS"), ".opus": ("OGG", "OPUS")}


def write_tone(path: Path, seconds: float = 0.3, sr: int = SR, fmt: str | None = None) -> Path:
    """A short sine as real audio; the container follows the extension unless FMT is given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    y = (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(sr * seconds)) / sr)).astype(np.float32)
    if fmt is not None:
        sf.write(path, y, sr, format=fmt, subtype="PCM_16")
    elif path.suffix in FORMATS:
        container, subtype = FORMATS[path.suffix]
        sf.write(path, y, sr, format=container, subtype=subtype)
    else:
        sf.write(path, y, sr)
    return path


def touch(path: Path, data: bytes = b"not audio at all") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def by_id(m: Manifest) -> dict[str, Clip]:
    return {c.id: c for c in m.clips}


def reasons(m: Manifest) -> dict[str, str]:
    return {Path(p.path).name: p.reason for p in m.problems}


# --- fixture trees --------------------------------------------------------------------------


def make_ravdess(base: Path) -> Path:
    root = base / "ravdess" / "Audio_Speech_Actors_01-24"
    write_tone(root / "Actor_01" / "03-01-05-01-02-01-01.wav")
    write_tone(root / "Actor_01" / "03-01-01-01-01-01-01.flac")
    write_tone(root / "Actor_12" / "03-01-08-02-01-02-12.ogg", sr=48000)
    write_tone(root / "Actor_12" / "03-02-03-01-01-01-12.wav")  # song
    touch(root / "Actor_12" / "01-01-03-01-01-01-12.mp4")  # audio-video
    write_tone(root / "Actor_12" / "03-01-09-01-01-01-12.wav")  # no emotion 09
    write_tone(root / "Actor_12" / "take 3 final.wav")  # unparseable
    touch(root / "Actor_12" / "03-01-04-01-01-01-12.wav")  # corrupt audio, valid name
    touch(base / "ravdess" / "README.txt")
    return base / "ravdess"


def make_tess(base: Path) -> Path:
    root = base / "tess" / "TESS Toronto emotional speech set data"
    write_tone(root / "OAF_Fear" / "OAF_back_fear.wav")
    write_tone(root / "OAF_neutral" / "OA_bite_neutral.wav")  # prefix cut short
    write_tone(root / "OAF_neutral" / "OAF_back_neutral.opus")
    write_tone(root / "OAF_Pleasant_surprise" / "OAF_dog_ps.wav")
    write_tone(root / "YAF_pleasant_surprised" / "YAF_back_ps.flac")
    write_tone(root / "YAF_angry" / "YAF_germ_angry.wav", fmt="AIFF")  # AIFF data named .wav
    write_tone(root / "YAF_angry" / "YAF_dog_sad.wav")  # folder and file disagree
    return base / "tess"


def make_savee(base: Path) -> Path:
    root = base / "savee" / "AudioData"
    write_tone(root / "DC" / "a01.wav")
    write_tone(root / "DC" / "sa03.wav")
    write_tone(root / "DC" / "su03.flac")
    write_tone(root / "DC" / "n25.wav")
    write_tone(root / "KL" / "h15.wav")
    write_tone(root / "KL" / "x01.wav")  # no such emotion
    touch(root / "Info.txt", b"'DC', 'JE', 'JK' and 'KL' are four male speakers")
    return base / "savee"


def make_savee_flat(base: Path) -> Path:
    root = base / "savee_all" / "ALL"
    write_tone(root / "DC_a01.wav")
    write_tone(root / "JE_sa03.wav")
    write_tone(root / "JK_su15.ogg")
    return root


def make_crema(base: Path) -> Path:
    root = base / "crema-d"
    write_tone(root / "AudioWAV" / "1001_DFA_ANG_XX.wav")
    write_tone(root / "AudioWAV" / "1002_IEO_HAP_HI.wav")
    write_tone(root / "AudioWAV" / "1040_ITH_SAD_X.wav")  # level cut to X
    write_tone(root / "AudioWAV" / "1001_DFA_XYZ_XX.wav")  # no such emotion
    write_tone(root / "AudioWAV" / "0999_DFA_ANG_XX.wav")  # no such actor
    touch(
        root / "VideoDemographics.csv",
        b'"ActorID","Age","Sex","Race","Ethnicity"\n1001,51,"Male","Caucasian","Not Hispanic"\n'
        b'1002,21,"Female","Caucasian","Not Hispanic"\n1040,30,"Female","Asian","Not Hispanic"\n',
    )
    return root


def make_emodb(base: Path) -> Path:
    root = base / "emodb"
    write_tone(root / "wav" / "03a01Fa.wav")
    write_tone(root / "wav" / "08b02Wb.wav")
    write_tone(root / "wav" / "16a05Lc.flac")
    write_tone(root / "wav" / "99a01Fa.wav")  # no such speaker
    touch(root / "lablaut" / "03a01Fa.lablaut")
    return root


@pytest.fixture
def tree(tmp_path) -> dict[str, Path]:
    base = tmp_path / "corpora"
    return {
        "base": base,
        "ravdess": make_ravdess(base),
        "tess": make_tess(base),
        "savee": make_savee(base),
        "crema_d": make_crema(base),
        "emodb": make_emodb(base),
    }


# --- helpers --------------------------------------------------------------------------------


def test_iter_audio_files_and_probe(tmp_path):
    a = write_tone(tmp_path / "b" / "x.WAV", seconds=0.5, sr=22050)
    write_tone(tmp_path / "a.flac")
    touch(tmp_path / "notes.txt")
    touch(tmp_path / "__MACOSX" / "._x.wav")
    touch(tmp_path / "b" / "._x.wav")
    files = iter_audio_files(tmp_path)
    assert [f.name for f in files] == ["a.flac", "x.WAV"]
    assert all(f.is_absolute() for f in files)
    duration, sr = probe(a)
    assert sr == 22050 and duration == pytest.approx(0.5)


# --- one loader per corpus ------------------------------------------------------------------


def test_ravdess(tree):
    m = ravdess.load(tree["ravdess"])
    clips = by_id(m)
    assert sorted(clips) == [
        "ravdess:03-01-01-01-01-01-01",
        "ravdess:03-01-05-01-02-01-01",
        "ravdess:03-01-08-02-01-02-12",
    ]
    c = clips["ravdess:03-01-05-01-02-01-01"]
    assert (c.emotion, c.label, c.speaker, c.gender, c.text) == (
        "angry",
        "05",
        "ravdess:01",
        "male",
        "ravdess:02",
    )
    assert c.duration == pytest.approx(0.3) and c.sample_rate == SR
    c = clips["ravdess:03-01-08-02-01-02-12"]
    assert (c.emotion, c.gender, c.speaker, c.sample_rate) == (
        "surprised",
        "female",
        "ravdess:12",
        48000,
    )
    r = reasons(m)
    assert set(r) == {
        "03-02-03-01-01-01-12.wav",
        "01-01-03-01-01-01-12.mp4",
        "03-01-09-01-01-01-12.wav",
        "take 3 final.wav",
        "03-01-04-01-01-01-12.wav",
    }  # README.txt is not audio, so not a problem
    assert "song" in r["03-02-03-01-01-01-12.wav"]
    assert "modality 01" in r["01-01-03-01-01-01-12.mp4"]
    assert "emotion code 09" in r["03-01-09-01-01-01-12.wav"]
    assert r["take 3 final.wav"] == "name does not match RAVDESS pattern MM-VV-EE-II-SS-RR-AA"
    assert r["03-01-04-01-01-01-12.wav"].startswith("unreadable header")
    assert all(p.corpus == "ravdess" for p in m.problems)


def test_tess_quirks(tree):
    m = tess.load(tree["tess"])
    clips = by_id(m)
    assert sorted(clips) == [
        "tess:OAF_back_fear",
        "tess:OAF_back_neutral",
        "tess:OAF_dog_ps",
        "tess:OA_bite_neutral",
        "tess:YAF_back_ps",
        "tess:YAF_germ_angry",
    ]
    quirk = clips["tess:OA_bite_neutral"]
    assert "taken from its folder" in quirk.note
    assert (quirk.speaker, quirk.emotion, quirk.text) == ("tess:OAF", "neutral", "tess:bite")
    assert clips["tess:OAF_back_fear"].emotion == "fearful"
    assert clips["tess:OAF_dog_ps"].emotion == "surprised"
    ps = clips["tess:YAF_back_ps"]
    assert (ps.emotion, ps.label, ps.speaker, ps.text) == (
        "surprised",
        "ps",
        "tess:YAF",
        "tess:back",
    )
    assert clips["tess:YAF_germ_angry"].duration == pytest.approx(0.3)  # AIFF inside .wav
    assert {c.gender for c in m.clips} == {"female"}
    assert {c.speaker for c in m.clips} == {"tess:OAF", "tess:YAF"}
    r = reasons(m)
    assert set(r) == {"YAF_dog_sad.wav"}
    assert "sad" in r["YAF_dog_sad.wav"] and "angry" in r["YAF_dog_sad.wav"]


def test_savee_nested_layout(tree):
    m = savee.load(tree["savee"])
    clips = by_id(m)
    assert sorted(clips) == [
        "savee:DC_a01",
        "savee:DC_n25",
        "savee:DC_sa03",
        "savee:DC_su03",
        "savee:KL_h15",
    ]
    sa = clips["savee:DC_sa03"]
    assert (sa.emotion, sa.label, sa.speaker, sa.gender, sa.text) == (
        "sad",
        "sa",
        "savee:DC",
        "male",
        "savee:sa03",
    )
    assert clips["savee:DC_su03"].emotion == "surprised"
    assert clips["savee:DC_su03"].text != sa.text  # sentence numbers restart per emotion
    assert clips["savee:DC_n25"].emotion == "neutral"
    assert set(reasons(m)) == {"x01.wav"}  # Info.txt is not audio


def test_savee_flat_layout(tmp_path):
    m = savee.load(make_savee_flat(tmp_path))
    clips = by_id(m)
    assert sorted(clips) == ["savee:DC_a01", "savee:JE_sa03", "savee:JK_su15"]
    assert clips["savee:JE_sa03"].speaker == "savee:JE"
    assert clips["savee:JK_su15"].text == "savee:su15"
    assert not m.problems


def test_crema_d(tree):
    m = crema_d.load(tree["crema_d"])
    clips = by_id(m)
    assert sorted(clips) == [
        "crema_d:1001_DFA_ANG_XX",
        "crema_d:1002_IEO_HAP_HI",
        "crema_d:1040_ITH_SAD_XX",
    ]
    c = clips["crema_d:1001_DFA_ANG_XX"]
    assert (c.emotion, c.label, c.speaker, c.gender, c.text) == (
        "angry",
        "ANG",
        "crema_d:1001",
        "male",
        "crema_d:DFA",
    )
    assert clips["crema_d:1002_IEO_HAP_HI"].gender == "female"
    quirk = clips["crema_d:1040_ITH_SAD_XX"]
    assert quirk.path.endswith("1040_ITH_SAD_X.wav") and quirk.emotion == "sad"
    assert "known misnaming" in quirk.note
    r = reasons(m)
    assert set(r) == {"1001_DFA_XYZ_XX.wav", "0999_DFA_ANG_XX.wav"}
    assert "emotion XYZ" in r["1001_DFA_XYZ_XX.wav"] and "actor 0999" in r["0999_DFA_ANG_XX.wav"]


def test_crema_d_without_demographics(tmp_path):
    write_tone(tmp_path / "AudioWAV" / "1003_TIE_NEU_XX.wav")
    (c,) = crema_d.load(tmp_path / "AudioWAV").clips
    assert c.gender is None and c.speaker == "crema_d:1003"


def test_emodb(tree):
    m = emodb.load(tree["emodb"])
    clips = by_id(m)
    assert sorted(clips) == ["emodb:03a01Fa", "emodb:08b02Wb", "emodb:16a05Lc"]
    c = clips["emodb:03a01Fa"]
    assert (c.emotion, c.label, c.speaker, c.gender, c.text) == (
        "happy",
        "F",
        "emodb:03",
        "male",
        "emodb:a01",
    )
    assert (clips["emodb:08b02Wb"].emotion, clips["emodb:08b02Wb"].gender) == ("angry", "female")
    assert clips["emodb:16a05Lc"].emotion == "boredom"
    assert "speaker 99" in reasons(m)["99a01Fa.wav"]


# --- users' own data ------------------------------------------------------------------------


def test_generic_folder_per_emotion(tmp_path):
    root = tmp_path / "mine"
    write_tone(root / "angry" / "a.wav")
    write_tone(root / "Happiness" / "b.flac")
    write_tone(root / "grumpy" / "c.wav")  # not an emotion
    write_tone(root / "loose.wav")  # not in an emotion folder
    m = generic.load_folder(root)
    clips = by_id(m)
    assert sorted(clips) == ["custom:mine/Happiness/b", "custom:mine/angry/a"]
    a = clips["custom:mine/angry/a"]
    assert (a.corpus, a.emotion, a.label, a.speaker) == (
        "custom",
        "angry",
        "angry",
        "custom:unknown",
    )
    assert clips["custom:mine/Happiness/b"].emotion == "happy"
    assert set(reasons(m)) == {"c.wav", "loose.wav"}


def test_generic_speaker_folders(tmp_path):
    root = tmp_path / "mine"
    write_tone(root / "alice" / "sad" / "1.wav")
    write_tone(root / "bob" / "neutral" / "1.wav")
    m = generic.load_folder(root)
    assert {(c.speaker, c.emotion) for c in m.clips} == {
        ("custom:alice", "sad"),
        ("custom:bob", "neutral"),
    }
    assert len({c.id for c in m.clips}) == 2 and not m.problems


def test_generic_csv(tmp_path):
    write_tone(tmp_path / "audio" / "one.wav")
    write_tone(tmp_path / "audio" / "two.flac")
    write_tone(tmp_path / "audio" / "three.wav")
    elsewhere = write_tone(tmp_path / "other" / "four.wav")
    touch(tmp_path / "audio" / "broken.wav")
    csv_path = tmp_path / "meta" / "labels.csv"
    touch(
        csv_path,
        (
            "Path,Emotion,Speaker,corpus\n"
            "../audio/one.wav,Anger,s1,\n"
            "../audio/two.flac,happy,s2,mydb\n"
            "../audio/three.wav,grumpy,s1,\n"
            "../audio/missing.wav,sad,s1,\n"
            f"{elsewhere},neutral,,\n"
            "../audio/broken.wav,sad,s2,\n"
        ).encode(),
    )
    m = generic.load_csv(csv_path)
    clips = {Path(c.path).name: c for c in m.clips}
    assert sorted(clips) == ["four.wav", "one.wav", "two.flac"]
    one = clips["one.wav"]
    assert (one.corpus, one.emotion, one.label, one.speaker) == (
        "custom",
        "angry",
        "Anger",
        "custom:s1",
    )
    assert one.path == str(tmp_path / "audio" / "one.wav")
    assert (clips["two.flac"].corpus, clips["two.flac"].speaker) == ("mydb", "mydb:s2")
    assert clips["four.wav"].speaker == "custom:unknown"
    r = reasons(m)
    assert set(r) == {"three.wav", "missing.wav", "broken.wav"}
    assert "unknown emotion 'grumpy'" in r["three.wav"] and "row 4" in r["three.wav"]
    assert "file not found" in r["missing.wav"]
    assert r["broken.wav"].startswith("unreadable header")


def test_generic_csv_needs_columns(tmp_path):
    bad = touch(tmp_path / "x.csv", b"file,label\na.wav,angry\n")
    with pytest.raises(ValueError, match="emotion"):
        generic.load_csv(bad)


def test_manifest_csv_round_trip(tree, tmp_path):
    m = corpora.scan([tree["base"]], ["savee"])
    out = tmp_path / "out" / "manifest.csv"
    out.parent.mkdir()
    m.to_csv(out)
    back = generic.load_csv(out)
    assert back.clips == m.clips


# --- detection and scanning -----------------------------------------------------------------


def test_detect_from_parent(tree):
    found = corpora.detect(tree["base"])
    assert found == [
        ("ravdess", tree["ravdess"] / "Audio_Speech_Actors_01-24"),
        ("tess", tree["tess"] / "TESS Toronto emotional speech set data"),
        ("savee", tree["savee"] / "AudioData"),
        ("crema_d", tree["crema_d"]),
        ("emodb", tree["emodb"]),
    ]


def test_detect_from_corpus_folder_and_deeper(tree, tmp_path):
    assert [n for n, _ in corpora.detect(tree["tess"])] == ["tess"]
    actor = tree["ravdess"] / "Audio_Speech_Actors_01-24" / "Actor_01"
    assert corpora.detect(actor) == [("ravdess", actor)]
    assert corpora.detect(tree["crema_d"] / "AudioWAV") == [
        ("crema_d", tree["crema_d"] / "AudioWAV")
    ]
    assert corpora.detect(make_savee_flat(tmp_path)) == [("savee", tmp_path / "savee_all" / "ALL")]
    assert corpora.detect(tmp_path / "savee_all") == [("savee", tmp_path / "savee_all" / "ALL")]
    # CREMA-D genders are still found next to AudioWAV
    assert {c.gender for c in corpora.scan([tree["crema_d"] / "AudioWAV"]).clips} == {
        "male",
        "female",
    }


def test_detect_custom_layouts(tmp_path):
    write_tone(tmp_path / "data" / "study" / "alice" / "angry" / "1.wav")
    write_tone(tmp_path / "data" / "study" / "bob" / "sad" / "1.wav")
    write_tone(tmp_path / "data" / "flat" / "happy" / "1.wav")
    touch(tmp_path / "data" / "list.csv", b"path,emotion,speaker\nflat/happy/1.wav,happy,x\n")
    found = corpora.detect(tmp_path / "data")
    assert found == [
        ("custom", tmp_path / "data" / "flat"),
        ("custom", tmp_path / "data" / "list.csv"),
        ("custom", tmp_path / "data" / "study"),
    ]


def test_scan_everything(tree):
    stray = write_tone(tree["base"] / "misc" / "note to self.wav")
    m = corpora.scan([tree["base"]])
    counts = {k: v["clips"] for k, v in m.summary().items()}
    assert counts == {
        "crema_d": 3,
        "emodb": 3,
        "ravdess": 3,
        "savee": 5,
        "tess": 6,
        "unrecognised": 0,
    }
    assert m.summary()["unrecognised"]["problems"] == [
        {"path": str(stray), "reason": "audio file outside any recognised corpus layout"}
    ]
    ids = [c.id for c in m.clips]
    assert len(ids) == len(set(ids))
    assert len({c.speaker for c in m.clips}) == 2 + 2 + 2 + 3 + 3
    assert {c.emotion for c in m.clips} <= set(EMOTIONS)
    # every audio file is a clip or a problem, exactly once
    audio = {str(p) for p in iter_audio_files(tree["base"])}
    accounted = [c.path for c in m.clips] + [p.path for p in m.problems]
    assert sorted(accounted) == sorted(audio)
    assert [p for p in m.problems if p.corpus is None] == [
        Problem(str(stray), "audio file outside any recognised corpus layout", None)
    ]
    again = corpora.scan([str(tree["base"])])
    assert again == m  # deterministic


def test_scan_filter_and_overlapping_roots(tree):
    m = corpora.scan([tree["base"], tree["tess"], tree["base"] / "tess"], ["tess", "crema-d"])
    assert m.corpora() == ["crema_d", "tess"]
    assert len(m.clips) == 6 + 3  # the same corpus under overlapping roots is loaded once
    with pytest.raises(ValueError, match="unknown corpus"):
        corpora.scan([tree["base"]], ["iemocap"])


def test_scan_two_copies_reports_duplicates(tree, tmp_path):
    copy = tmp_path / "copy" / "Actor_01"
    write_tone(copy / "03-01-05-01-02-01-01.wav")
    m = corpora.scan([tree["ravdess"], tmp_path / "copy"])
    assert len(m.clips) == 3
    dup = [p for p in m.problems if "duplicate clip id" in p.reason]
    assert [Path(p.path).parent for p in dup] == [copy]  # the first root given wins
    m = corpora.scan([tmp_path / "copy", tree["ravdess"]])
    dup = [p for p in m.problems if "duplicate clip id" in p.reason]
    assert [Path(p.path).parent.name for p in dup] == ["Actor_01"]
    assert Path(dup[0].path).parent != copy


def test_load_corpus(tree):
    m = corpora.load_corpus("savee", tree["base"])  # found below the parent
    assert len(m) == 5 and m.corpora() == ["savee"]
    assert len(corpora.load_corpus("emodb", tree["emodb"] / "wav")) == 3
    assert set(corpora.CORPORA) == {
        "ravdess",
        "tess",
        "savee",
        "crema_d",
        "emodb",
        "spanish_acted",
        "korean_emotiontts",
        "indian_emospeech",
        "custom",
    }


def test_scan_missing_root(tmp_path):
    with pytest.raises(FileNotFoundError):
        corpora.scan([tmp_path / "nope"])


# --- the real corpora -----------------------------------------------------------------------

REAL = Path(
    os.environ.get("EMOVOX_CORPORA")
    or Path(__file__).resolve().parents[1].parent / "shared" / "corpora"
)


@pytest.mark.integration
@pytest.mark.skipif(not REAL.is_dir(), reason=f"no corpora at {REAL}")
def test_real_corpora_counts():
    m = corpora.scan([REAL])
    s = m.summary()
    expected = {
        "ravdess": (1440, 24),
        "tess": (2800, 2),
        "savee": (480, 4),
        "crema_d": (7442, 91),
        "spanish_acted": (1321, 16),
        "korean_emotiontts": (300, 13),  # 15 folders, ema/nea and emb/neb one person each
    }
    for name, (clips, speakers) in expected.items():
        assert (s[name]["clips"], s[name]["speakers"]) == (clips, speakers), name
        assert not s[name]["problems"], name
    # Indian EmoSpeech: 5433 speech clips; the 1116 background recordings are listed problems
    indian = s["indian_emospeech"]
    assert indian["clips"] == 5433
    assert [p["reason"] for p in indian["problems"]] == [indian_emospeech.BACKGROUND] * 1116
    unknown = [c for c in m.clips if c.speaker == indian_emospeech.UNKNOWN_SPEAKER]
    assert len(unknown) == 3433
    assert "unrecognised" not in s
    assert len({c.id for c in m.clips}) == len(m.clips)
    assert all(c.duration and c.sample_rate for c in m.clips)
