"""The Spanish, Korean and Indian corpus loaders on generated trees with the real naming (quirks
included); files that are not regular files; folder and file names that disagree."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from emovox.audio.files import BROKEN_LINK, iter_audio_files, regular_file_problem
from emovox.data import corpora
from emovox.data.corpora import (
    generic,
    indian_emospeech,
    korean_emotiontts,
    ravdess,
    savee,
    spanish_acted,
)
from emovox.data.corpora.common import UnreadableAudio, probe
from emovox.data.manifest import Clip, Manifest
from emovox.evaluation.splits import speaker_kfold

SR = 16000
UNKNOWN = indian_emospeech.UNKNOWN_HASH
NAMED = "fda31b2be41da6499788299ce3d8dc14c6d9b9e8754601ba8ad59e5e"
OTHER = "340a803168cbebd76b289a6adaf5622430355128c75e67ef2f3ec11e"


def tone(path: Path, seconds: float = 0.2) -> Path:
    """A short sine, written in the container the extension names (``.opus`` as Ogg/Opus)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    y = (0.3 * np.sin(2 * np.pi * 220 * np.arange(int(SR * seconds)) / SR)).astype(np.float32)
    if path.suffix == ".opus":
        sf.write(path, y, SR, format="OGG", subtype="OPUS")
    else:
        sf.write(path, y, SR)
    return path


def touch(path: Path, data: bytes = b"x") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def by_id(m: Manifest) -> dict[str, Clip]:
    return {c.id: c for c in m.clips}


def reasons(m: Manifest) -> dict[str, str]:
    return {Path(p.path).name: p.reason for p in m.problems}


# --- fixture trees --------------------------------------------------------------------------


def make_spanish(base: Path) -> Path:
    root = base / "spanish-acted"
    tone(root / "data" / "0" / "Alegria_1.opus")
    tone(root / "data" / "0" / "Ira__1.opus")  # double underscore
    tone(root / "data" / "3" / "Sorpresa_8.opus")  # listed as malformed
    tone(root / "data" / "3" / "Alegria_1.wav")  # same name, other speaker
    tone(root / "data" / "11" / "Neutro.opus")  # no number
    tone(root / "data" / "11" / "Neutro_1.opus")
    tone(root / "tests" / "Test1" / "Tristeza_12.flac")
    tone(root / "tests" / "Test2" / "Miedo_3.wav")
    tone(root / "tests" / "Test2" / "Asco_2.wav")
    tone(root / "data" / "5" / "Enfado_1.wav")  # not a Spanish emotion of this corpus
    tone(root / "data" / "5" / "Asco_13.wav")  # sentences are 1-12
    touch(root / "data" / "7" / "Alejandro Rodríguez.zip")  # not audio
    touch(root / "README.md")
    return root


KOREAN_SETS = Path("Dataset") / "SpeechCorpus" / "Emotional"


def make_korean(base: Path) -> Path:
    root = base / "korean-emotiontts" / KOREAN_SETS
    plain, emo = root / "plain-to-emotional", root / "emotional-to-emotional"
    for n in ("00001", "00101", "00201", "00301"):
        tone(plain / "ema" / "wav" / f"ema{n}.opus")
    tone(plain / "emf" / "wav" / "emf00305.opus")
    tone(emo / "nea" / "wav" / "nea00205.opus")
    tone(emo / "neb" / "wav" / "neb00102.opus")
    tone(emo / "neo" / "wav" / "neo00401.opus")  # no emotion above 400
    tone(emo / "neb" / "wav" / "nec00001.opus")  # another speaker's folder
    tone(plain / "emb" / "wav" / "emb00002.opus")
    tone(emo / "nex" / "wav" / "nex00001.opus")  # no such speaker
    touch(plain / "ema" / "script" / "ema00001.txt", "5월 17일 기준".encode())
    return root


def indian_name(kw: str, env: str, emo: str, ts: str, h: str, ext: str = ".opus") -> str:
    return f"{kw}-{env}-{emo}-{ts}-{h}{ext}"


def make_indian(base: Path) -> Path:
    root = base / "indian-emospeech"
    named = [
        ("House", ("help", "safe", "Calm", "1562907046662", NAMED)),
        ("Near Lake", ("bacho", "glass break", "angry", "20190701193438", UNKNOWN)),
        ("Misc", ("stop", "safe", "FEARFUL", "20190618164152 copy", UNKNOWN)),
        ("Misc", ("go", "scream", "happy", "20190618164152-copy", OTHER)),
        ("Misc", ("yes", "safe", "calm", "??", OTHER)),  # junk timestamp
        ("webservice", ("unknown", "safe", "calm", "1563212153981", OTHER)),
        ("webservice", ("no", "gunshots", "angry", "1563212153982", NAMED)),
        ("Roads", ("help", "safe", "calm", "1563212153983", UNKNOWN)),
        ("Roads", ("go", "safe", "angry", "1563212153984", UNKNOWN)),
    ]
    for folder, parts in named:
        tone(root / folder / indian_name(*parts))
    tone(root / "Roads" / indian_name("background", "safe", "None", "20190701193438", UNKNOWN))
    tone(root / "House" / indian_name("background", "glass break", "calm", "1562907046662", NAMED))
    tone(root / "House" / indian_name("yes", "safe", "None", "1562907046663", NAMED))
    tone(root / "House" / indian_name("help", "safe", "sad", "1562907046664", NAMED))
    tone(root / "House" / indian_name("help", "rain", "calm", "1562907046665", NAMED))
    tone(root / "House" / "voice memo 12.wav")
    touch(root / "License.txt")
    return root


# --- Spanish acted --------------------------------------------------------------------------


def test_spanish_acted(tmp_path):
    root = make_spanish(tmp_path)
    m = spanish_acted.load(root)
    clips = by_id(m)
    assert sorted(clips) == [
        "spanish_acted:data-0/Alegria_1",
        "spanish_acted:data-0/Ira__1",
        "spanish_acted:data-11/Neutro",
        "spanish_acted:data-11/Neutro_1",
        "spanish_acted:data-3/Alegria_1",
        "spanish_acted:data-3/Sorpresa_8",
        "spanish_acted:tests-Test1/Tristeza_12",
        "spanish_acted:tests-Test2/Asco_2",
        "spanish_acted:tests-Test2/Miedo_3",
    ]
    ira = clips["spanish_acted:data-0/Ira__1"]
    assert (ira.emotion, ira.label, ira.speaker, ira.text) == (
        "angry",
        "Ira",
        "spanish_acted:data-0",
        "spanish_acted:1",
    )
    assert "double underscore" in ira.note
    neutro = clips["spanish_acted:data-11/Neutro"]
    assert (neutro.emotion, neutro.text, neutro.speaker) == (
        "neutral",
        None,
        "spanish_acted:data-11",
    )
    assert "no sentence number" in neutro.note
    assert "malformed" in clips["spanish_acted:data-3/Sorpresa_8"].note
    assert clips["spanish_acted:data-3/Sorpresa_8"].duration == pytest.approx(0.2, abs=0.02)
    assert clips["spanish_acted:data-0/Alegria_1"].note is None
    assert {c.emotion for c in m.clips} == {
        "happy",
        "angry",
        "surprised",
        "neutral",
        "sad",
        "fearful",
        "disgust",
    }
    assert clips["spanish_acted:tests-Test1/Tristeza_12"].speaker == "spanish_acted:tests-Test1"
    assert len({c.speaker for c in m.clips}) == 5
    assert all(c.gender is None for c in m.clips)
    r = reasons(m)
    assert set(r) == {"Enfado_1.wav", "Asco_13.wav"}  # the .zip and README are not audio
    assert r["Enfado_1.wav"].startswith("name does not match Spanish acted pattern")
    assert "13" in r["Asco_13.wav"]
    assert corpora.detect(tmp_path) == [("spanish_acted", root)]
    # a folder inside the corpus is never widened to the whole corpus
    assert corpora.detect(root / "data") == [("spanish_acted", root / "data")]
    assert len(corpora.scan([root / "tests"]).clips) == 3


# --- Korean emotional TTS -------------------------------------------------------------------


def test_korean_emotiontts(tmp_path):
    root = make_korean(tmp_path)
    m = korean_emotiontts.load(root)
    clips = by_id(m)
    assert sorted(clips) == [
        "korean_emotiontts:ema00001",
        "korean_emotiontts:ema00101",
        "korean_emotiontts:ema00201",
        "korean_emotiontts:ema00301",
        "korean_emotiontts:emb00002",
        "korean_emotiontts:emf00305",
        "korean_emotiontts:nea00205",
        "korean_emotiontts:neb00102",
    ]
    # 201-300 sad, 301-400 angry: the data, not the corpus README
    emotions = {k.split(":")[1]: c.emotion for k, c in clips.items()}
    assert emotions["ema00001"] == "neutral" and emotions["ema00101"] == "happy"
    assert emotions["ema00201"] == "sad" and emotions["ema00301"] == "angry"
    assert emotions["nea00205"] == "sad" and emotions["emf00305"] == "angry"
    # ema/nea and emb/neb are the same two women
    assert clips["korean_emotiontts:ema00001"].speaker == "korean_emotiontts:ema_nea"
    assert clips["korean_emotiontts:nea00205"].speaker == "korean_emotiontts:ema_nea"
    assert clips["korean_emotiontts:emb00002"].speaker == "korean_emotiontts:emb_neb"
    assert clips["korean_emotiontts:neb00102"].speaker == "korean_emotiontts:emb_neb"
    assert clips["korean_emotiontts:emf00305"].speaker == "korean_emotiontts:emf"
    assert clips["korean_emotiontts:emf00305"].gender == "male"
    assert clips["korean_emotiontts:nea00205"].gender == "female"
    # plain-to-emotional: one script read with every emotion; emotional: the number is the script
    plain_texts = {clips[f"korean_emotiontts:ema00{n}"].text for n in ("001", "101", "201", "301")}
    assert plain_texts == {"korean_emotiontts:plain-001"}
    assert clips["korean_emotiontts:emf00305"].text == "korean_emotiontts:plain-005"
    assert clips["korean_emotiontts:nea00205"].text == "korean_emotiontts:emotional-00205"
    assert clips["korean_emotiontts:ema00101"].label == "00101"
    r = reasons(m)
    assert set(r) == {"neo00401.opus", "nec00001.opus", "nex00001.opus"}
    assert "not 1-400" in r["neo00401.opus"]
    assert "inside folder neb" in r["nec00001.opus"]
    assert "unknown" in r["nex00001.opus"]
    assert corpora.detect(tmp_path) == [("korean_emotiontts", root)]
    assert korean_emotiontts.emotion_of(400) == "angry" and korean_emotiontts.emotion_of(0) is None


def test_korean_set_folder_must_match_speaker(tmp_path):
    tone(tmp_path / "plain-to-emotional" / "nea" / "wav" / "nea00001.opus")
    (p,) = korean_emotiontts.load(tmp_path).problems
    assert "belongs in emotional, not in plain-to-emotional" in p.reason


# --- Indian EmoSpeech -----------------------------------------------------------------------


def test_indian_emospeech(tmp_path):
    root = make_indian(tmp_path)
    m = indian_emospeech.load(root)
    by_name = {Path(c.path).name: c for c in m.clips}
    assert len(m.clips) == 9
    help_named = by_name[indian_name("help", "safe", "Calm", "1562907046662", NAMED)]
    assert (help_named.emotion, help_named.label, help_named.text) == (
        "calm",
        "Calm",
        "indian_emospeech:help",
    )
    assert help_named.speaker == f"indian_emospeech:{NAMED[:12]}"
    assert help_named.id == "indian_emospeech:" + Path(help_named.path).stem
    glass = by_name[indian_name("bacho", "glass break", "angry", "20190701193438", UNKNOWN)]
    assert (glass.emotion, glass.speaker) == ("angry", indian_emospeech.UNKNOWN_SPEAKER)
    assert "Near Lake" in glass.path
    copy = by_name[indian_name("stop", "safe", "FEARFUL", "20190618164152 copy", UNKNOWN)]
    assert copy.emotion == "fearful"
    assert by_name[indian_name("go", "scream", "happy", "20190618164152-copy", OTHER)].emotion == (
        "happy"
    )
    assert by_name[indian_name("yes", "safe", "calm", "??", OTHER)].text == "indian_emospeech:yes"
    unknown_kw = by_name[indian_name("unknown", "safe", "calm", "1563212153981", OTHER)]
    assert unknown_kw.text is None  # an unlisted word: no shared sentence id
    # the unknown user is many people: one shared speaker id, never one per clip
    unknown = [c for c in m.clips if c.speaker == indian_emospeech.UNKNOWN_SPEAKER]
    assert len(unknown) == 4
    assert len({c.speaker for c in m.clips}) == 3
    assert {c.emotion for c in m.clips} == {"calm", "angry", "fearful", "happy"}
    # background noise and unlabelled clips are listed, never emotion clips
    r = reasons(m)
    bg = [n for n in r if n.startswith("background-")]
    assert len(bg) == 2 and all(r[n] == indian_emospeech.BACKGROUND for n in bg)
    assert not any(Path(c.path).name.startswith("background-") for c in m.clips)
    assert sorted(Path(p).name for p in indian_emospeech.background_paths(m)) == sorted(bg)
    assert r[indian_name("yes", "safe", "None", "1562907046663", NAMED)] == (
        indian_emospeech.NO_EMOTION
    )
    assert "emotion 'sad'" in r[indian_name("help", "safe", "sad", "1562907046664", NAMED)]
    assert "environment 'rain'" in r[indian_name("help", "rain", "calm", "1562907046665", NAMED)]
    assert r["voice memo 12.wav"].startswith("name does not match Indian EmoSpeech pattern")
    assert len(m.clips) + len(m.problems) == len(iter_audio_files(root))
    assert corpora.detect(tmp_path) == [("indian_emospeech", root)]


def test_indian_unknown_user_stays_on_one_side_of_speaker_folds(tmp_path):
    m = indian_emospeech.load(make_indian(tmp_path))
    speakers = [c.speaker for c in m.clips]
    unknown = {i for i, s in enumerate(speakers) if s == indian_emospeech.UNKNOWN_SPEAKER}
    folds = speaker_kfold([c.emotion for c in m.clips], speakers, k=3)
    for fold in folds:
        train, test = set(map(int, fold.train)), set(map(int, fold.test))
        assert unknown <= train or unknown <= test


# --- all three together ---------------------------------------------------------------------


def test_scan_new_corpora_together(tmp_path):
    base = tmp_path / "corpora"
    make_spanish(base), make_korean(base), make_indian(base)
    m = corpora.scan([base])
    s = m.summary()
    assert {k: v["clips"] for k, v in s.items()} == {
        "indian_emospeech": 9,
        "korean_emotiontts": 8,
        "spanish_acted": 9,
    }
    background = [p for p in s["indian_emospeech"]["problems"] if p["reason"].startswith("backg")]
    assert len(background) == 2  # counted and shown by `corpora scan`
    accounted = sorted([c.path for c in m.clips] + [p.path for p in m.problems])
    assert accounted == sorted(str(p) for p in iter_audio_files(base))
    assert len({c.id for c in m.clips}) == len(m.clips)
    assert {"spanish_acted", "korean_emotiontts", "indian_emospeech"} <= set(corpora.CORPORA)
    assert len(corpora.load_corpus("korean-emotiontts", base)) == 8


# --- files that are not regular files -------------------------------------------------------


def _release(fifo: Path) -> None:
    """Unblock a reader stuck opening FIFO (only if the test failed), then remove it."""
    try:
        fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    except OSError:
        pass


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_fifo_and_broken_link_are_problems_not_hangs(tmp_path):
    actor = tmp_path / "ravdess" / "Actor_01"
    tone(actor / "03-01-05-01-02-01-01.wav")
    fifo = actor / "03-01-04-01-01-01-01.wav"
    os.mkfifo(fifo)
    os.symlink(actor / "gone.wav", actor / "03-01-03-01-01-01-01.wav")
    os.symlink(fifo, actor / "03-01-06-01-01-01-01.wav")
    os.mkfifo(tmp_path / "stray pipe.wav")
    result: dict[str, Manifest] = {}
    worker = threading.Thread(
        target=lambda: result.setdefault("m", corpora.scan([tmp_path])), daemon=True
    )
    start = time.monotonic()
    worker.start()
    worker.join(timeout=30)
    if worker.is_alive():
        _release(fifo)
        _release(tmp_path / "stray pipe.wav")
        pytest.fail("scan blocked on a named pipe")
    assert time.monotonic() - start < 30
    m = result["m"]
    assert [c.id for c in m.clips] == ["ravdess:03-01-05-01-02-01-01"]
    r = reasons(m)
    assert r["03-01-04-01-01-01-01.wav"] == "not a regular file (named pipe)"
    assert r["03-01-06-01-01-01-01.wav"] == "not a regular file (named pipe)"
    assert r["03-01-03-01-01-01-01.wav"] == BROKEN_LINK == "broken symbolic link (target missing)"
    assert "stray pipe.wav" in r  # listed (outside any layout), never opened
    with pytest.raises(UnreadableAudio, match="named pipe"):
        probe(fifo)
    assert regular_file_problem(actor / "03-01-05-01-02-01-01.wav") is None
    assert regular_file_problem(tmp_path / "missing.wav") == "file not found"
    assert regular_file_problem(actor) == "not a regular file (folder)"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no named pipes here")
def test_fifo_in_a_csv_manifest_and_as_the_csv(tmp_path):
    os.mkfifo(tmp_path / "pipe.wav")
    tone(tmp_path / "ok.wav")
    listing = touch(tmp_path / "list.csv", b"path,emotion\nok.wav,sad\npipe.wav,angry\n")
    m = generic.load_csv(listing)
    assert [Path(c.path).name for c in m.clips] == ["ok.wav"]
    assert reasons(m)["pipe.wav"].startswith("not a regular file (named pipe)")
    os.mkfifo(tmp_path / "pipe.csv")
    with pytest.raises(ValueError, match="named pipe"):
        generic.load_csv(tmp_path / "pipe.csv")
    assert not generic.is_manifest_csv(tmp_path / "pipe.csv")
    assert corpora.detect(tmp_path / "pipe.csv") == []


# --- folder and file name disagree ----------------------------------------------------------


def test_ravdess_actor_folder_disagrees_with_file(tmp_path):
    root = tmp_path / "Audio_Speech_Actors_01-24"
    tone(root / "Actor_01" / "03-01-05-01-02-01-01.wav")
    tone(root / "Actor_01" / "03-01-05-01-02-01-05.opus")  # actor 05 inside Actor_01
    tone(root / "Actor_05" / "03-01-03-01-02-01-05.wav")
    tone(tmp_path / "loose" / "03-01-05-01-02-02-07.wav")  # no actor folder: the name decides
    m = ravdess.load(tmp_path)
    assert sorted(c.id for c in m.clips) == [
        "ravdess:03-01-03-01-02-01-05",
        "ravdess:03-01-05-01-02-01-01",
        "ravdess:03-01-05-01-02-02-07",
    ]
    assert reasons(m) == {
        "03-01-05-01-02-01-05.opus": "RAVDESS file of actor 05 inside folder Actor_01"
    }
    assert len({c.speaker for c in m.clips}) == 3  # 01, 05, 07: no phantom speaker


def test_savee_speaker_folder_disagrees_with_file_prefix(tmp_path):
    root = tmp_path / "AudioData"
    tone(root / "DC" / "a01.wav")
    tone(root / "DC" / "JE_a02.wav")  # JE's clip in DC's folder
    tone(root / "DC" / "DC_a03.wav")  # flat name in its own folder: fine
    m = savee.load(root)
    assert sorted(c.id for c in m.clips) == ["savee:DC_a01", "savee:DC_a03"]
    assert reasons(m) == {"JE_a02.wav": "SAVEE file of speaker JE inside folder DC"}
