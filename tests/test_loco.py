"""Leave-one-corpus-out: folds, per-corpus label restriction, chance, reports, CLI, CSV corpus
names, results rows. Three tiny generated corpora in three layouts: RAVDESS naming (neutral,
happy, sad, angry), a folder-per-emotion tree (corpus ``custom``: happy, sad, angry, calm) and a
CSV manifest naming its corpus ``MyDB`` (neutral, happy, sad, fearful)."""

import importlib.util
import json
import shutil
from pathlib import Path

import pytest
import soundfile as sf
from conftest import REPO, emotional_tone, write_ravdess_tree
from typer.testing import CliRunner

from emovox.cli import app
from emovox.data import corpora
from emovox.evaluation.experiment import (
    ExperimentConfig,
    evaluate,
    load_dataset,
    load_experiment_config,
)
from emovox.evaluation.loco import held_out_score

TONE = {"neutral": 0, "happy": 1, "sad": 2, "angry": 3, "calm": 4, "fearful": 5}
RAVDESS_CLIP = "03-01-01-01-01-01-01.wav"  # actor 1, neutral: copied into the CSV corpus


def write_folder_corpus(root: Path) -> Path:
    """ROOT/SPEAKER/EMOTION/*.wav: 3 speakers x 4 emotions x 2 takes."""
    for spk in range(3):
        for emo in ("happy", "sad", "angry", "calm"):
            for take in (1, 2):
                path = root / f"spk{spk}" / emo / f"{emo}_{take}.wav"
                path.parent.mkdir(parents=True, exist_ok=True)
                sf.write(path, emotional_tone(TONE[emo], 1 + spk, 2 + take), 16000)
    return root


def write_csv_corpus(root: Path, ravdess: Path) -> Path:
    """A CSV manifest (corpus ``MyDB``) over 3 speakers x 4 emotions x 2 takes, plus one byte
    copy of a RAVDESS clip (identical audio across corpora)."""
    rows = ["path,emotion,speaker,corpus"]
    for spk in range(3):
        for emo in ("neutral", "happy", "sad", "fearful"):
            for take in (1, 2):
                name = f"clips/s{spk}_{emo}_{take}.wav"
                (root / "clips").mkdir(parents=True, exist_ok=True)
                sf.write(root / name, emotional_tone(TONE[emo], 4 + spk, 4 + take), 16000)
                rows.append(f"{name},{emo},s{spk},MyDB")
    shutil.copy(next(ravdess.rglob(RAVDESS_CLIP)), root / "clips" / "copy.wav")
    rows.append("clips/copy.wav,neutral,s0,MyDB")
    (root / "labels.csv").write_text("\n".join(rows) + "\n")
    return root / "labels.csv"


@pytest.fixture(scope="module")
def three_corpora(tmp_path_factory) -> Path:
    base = tmp_path_factory.mktemp("loco")
    root = write_ravdess_tree(base)  # base/corpora/ravdess/...
    write_folder_corpus(root / "mine")
    write_csv_corpus(root / "mydb", root / "ravdess")
    return root


@pytest.fixture(scope="module")
def loco_run(three_corpora, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    cfg = ExperimentConfig(
        model="svm",
        corpora=["ravdess", "custom", "MyDB"],
        roots=[str(three_corpora)],
        protocol="loco",
        features="mfcc,prosody",
        n_jobs=1,
        out_dir=str(out),
        name="loco",
    )
    data = load_dataset(cfg, progress=False)
    return data, evaluate(data, cfg)


def test_labels_auto_is_every_emotion_of_the_corpora(loco_run):
    data, _ = loco_run
    assert sorted({c.corpus for c in data.clips}) == ["custom", "mydb", "ravdess"]
    assert data.labels == ("neutral", "calm", "happy", "sad", "angry", "fearful")
    assert not data.excluded and not data.skipped


def test_one_fold_per_corpus_scored_on_its_known_emotions(loco_run):
    data, res = loco_run
    m = res.metrics
    assert m["protocol"] == "loco" and m["folds"] == 3 and not m["leaky"]
    held = {h["corpus"]: h for h in m["loco"]["held_out"]}
    assert list(held) == ["ravdess", "custom", "mydb"]
    # RAVDESS: all four emotions are known from the others (happy/sad/angry, neutral from MyDB)
    assert held["ravdess"]["labels"] == ["neutral", "happy", "sad", "angry"]
    assert held["ravdess"]["n"] == 48 and held["ravdess"]["unscored"] == 0
    assert held["ravdess"]["chance"] == pytest.approx(1 / 4)
    # the folder corpus: calm is only its own, so its 6 calm clips are not scored
    assert held["custom"]["labels"] == ["happy", "sad", "angry"]
    assert held["custom"]["unscored_emotions"] == {"calm": 6} and held["custom"]["n"] == 18
    assert held["custom"]["chance"] == pytest.approx(1 / 3)
    assert "calm" not in held["mydb"]["labels"] and "calm" in held["mydb"]["known"]
    assert held["mydb"]["unscored_emotions"] == {"fearful": 6}
    assert held["mydb"]["labels"] == ["neutral", "happy", "sad"] and held["mydb"]["n"] == 19
    mean = sum(h["ua"] for h in held.values()) / 3
    assert m["loco"]["mean_ua"] == pytest.approx(mean)
    assert m["loco"]["mean_chance"] == pytest.approx((1 / 4 + 1 / 3 + 1 / 3) / 3)
    # every scored clip was predicted in its own corpus's fold, by a model that never saw it
    preds = res.predictions
    assert len(preds) == 48 + 18 + 19
    assert all(p["fold"] == f"test={p['corpus']}" for p in preds)
    assert all(h["ua"] > h["chance"] for h in held.values())  # the tones carry the emotion


def test_audit_runs_per_held_out_corpus(loco_run):
    _, res = loco_run
    held = {h["corpus"]: h["leakage"] for h in res.metrics["loco"]["held_out"]}
    assert all(a["shared_speakers"] == 0 for a in held.values())
    # the RAVDESS clip copied into MyDB is on the training side of both their folds
    assert held["ravdess"]["identical_audio"] == 1 and held["mydb"]["identical_audio"] == 1
    assert held["custom"]["identical_audio"] == 0 and held["custom"]["clean"]
    assert res.metrics["leakage"]["identical_audio"] == 2


def test_reports_carry_the_held_out_table(loco_run):
    _, res = loco_run
    summary = (res.run_dir / "summary.md").read_text()
    assert "## Held-out corpora" in summary and "pooled over the held-out corpora" in summary
    line = next(s for s in summary.splitlines() if s.startswith("| custom |"))
    assert "| 18 | 6 (calm 6) | happy, sad, angry |" in line and "| 0.333 |" in line
    assert "Mean UA over 3 held-out corpora" in summary
    saved = json.loads((res.run_dir / "metrics.json").read_text())
    assert saved["loco"]["mean_ua"] == pytest.approx(res.metrics["loco"]["mean_ua"])


def test_a_prediction_of_an_emotion_the_corpus_lacks_is_an_error():
    # the model knows calm; the held-out corpus has no calm: predicting it costs recall
    s = held_out_score(
        "x",
        ["happy", "happy", "sad", "sad"],
        ["happy", "calm", "sad", "sad"],
        ["happy", "sad", "calm"],
    )
    assert s["labels"] == ["happy", "sad"] and s["chance"] == 0.5
    assert s["ua"] == pytest.approx(0.75) and s["per_class"] == {"happy": 0.5, "sad": 1.0}


def test_cli_loco_prints_each_corpus_beside_chance(three_corpora, tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--protocol",
            "loco",
            "--model",
            "lda",
            "--features",
            "mfcc",
            "--corpus",
            "ravdess,custom,mydb",
            "--test-corpora",
            "MyDB",
            "--root",
            str(three_corpora),
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    m = json.loads(res.stdout.strip().splitlines()[-1])
    assert [h["corpus"] for h in m["loco"]["held_out"]] == ["mydb"] and m["folds"] == 1
    assert "held out mydb: UA" in res.stderr and "chance 0.333" in res.stderr
    assert "mean UA over 1 held-out corpora" in res.stderr


def test_csv_corpus_names_work_as_corpora(three_corpora, tmp_path):
    m = corpora.scan([three_corpora], ["ravdess", "MyDB"])
    assert m.corpora() == ["mydb", "ravdess"] and len(m.clips) == 48 + 25
    with pytest.raises(ValueError, match=r"unknown corpus 'nope'.*found: mydb"):
        corpora.scan([three_corpora], ["ravdess", "nope"])
    # cross-corpus by a CSV's corpus name (corpora default to train + test)
    res = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--protocol",
            "cross-corpus",
            "--model",
            "lda",
            "--features",
            "mfcc",
            "--train-corpora",
            "ravdess",
            "--test-corpora",
            "MyDB",  # as the CSV spells it; clips carry "mydb"
            "--labels",
            "core4",
            "--root",
            str(three_corpora),
            "--out",
            str(tmp_path),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["corpora"] == ["mydb", "ravdess"] and out["n"] == 19  # fearful not in core4


def test_loco_baseline_config_loads_and_validates():
    cfg = load_experiment_config(REPO / "configs" / "loco-baseline.toml")
    assert cfg.protocol == "loco" and cfg.model == "logreg"
    assert cfg.features == "whisper:tiny.en" and cfg.params == {"C": 0.01, "max_iter": 2000}
    assert cfg.labels == "paper7" and len(cfg.corpora) == 7
    assert set(cfg.corpora) <= set(corpora.CORPORA) and cfg.run_name() == "loco-baseline"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ('protocol = "leave-one-out"', "protocol 'leave-one-out' is not one of"),
        ('model = "xgboost"', "model 'xgboost' is not one of"),
        ('labels = "happy"', "happy"),
        ('features = "mfcc,bogus"', "bogus"),
        ('train_corpora = ["tess"]', "train_corpora"),
        ('test_corpora = ["iemocap"]', "names corpora not in corpora (iemocap)"),
        ('balance = "speaker"', "balance 'speaker' is not one of none, corpus"),
    ],
)
def test_experiment_config_is_checked_on_load(tmp_path, line, message):
    from emovox.evaluation.config import ConfigError

    base = (REPO / "configs" / "loco-baseline.toml").read_text()
    key = line.split(" = ")[0]
    kept = [s for s in base.splitlines() if not s.startswith(f"{key} =")]
    path = tmp_path / "bad.toml"
    path.write_text("\n".join(kept + [line]) + "\n")
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_experiment_config(path)


# --- docs/results.json rows ------------------------------------------------------------------


@pytest.fixture
def results_db(tmp_path, monkeypatch):
    spec = importlib.util.spec_from_file_location("results_db", REPO / "bench" / "results_db.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.setattr(mod, "RESULTS_JSON", tmp_path / "results.json")
    monkeypatch.setattr(mod, "RESULTS_MD", tmp_path / "results.md")
    return mod


OLD = {
    "section": "S",
    "corpora": ["ravdess", "tess"],
    "labels": "paper7",
    "leaky": False,
    "wa": 0.5,
    "ua": 0.5,
    "macro_f1": 0.5,
    "per_class": {"happy": 0.5},
    "folds": 1,
    "n": 10,
    "config": "bench/x.py",
}


def test_migration_adds_test_corpora_and_adapted(results_db):
    rows = [
        OLD | {"model": "m", "protocol": "speaker-kfold", "test": None},
        OLD | {"model": "m", "protocol": "cross-corpus", "test": ["tess"], "adapt": "none"},
        OLD | {"model": "m+speaker-norm", "protocol": "cross-corpus", "test": ["tess"]},
        OLD | {"model": "m", "protocol": "random", "test": None, "adapt": "corpus", "leaky": True},
    ]
    results_db.RESULTS_JSON.write_text(json.dumps(rows))
    before = results_db.render(rows)
    new = results_db.migrate()
    assert [r["test_corpora"] for r in new] == [["ravdess", "tess"], ["tess"], ["tess"]] + [
        ["ravdess", "tess"]
    ]
    assert [r["adapted"] for r in new] == [False, False, "speaker", "corpus"]
    assert all(
        {k: v for k, v in n.items() if k not in ("test_corpora", "adapted")} == o
        for o, n in zip(rows, new, strict=True)
    )
    assert results_db.RESULTS_MD.read_text() == before  # the tables render as before
    assert results_db.migrate() == new  # running it again changes nothing
    # a script re-upserting an old-style row (no new fields) replaces it, not duplicates it
    again = results_db.upsert([rows[1] | {"ua": 0.9}])
    assert len(again) == 4 and sum(r["ua"] == 0.9 for r in again) == 1
    assert all("adapted" in r and "test_corpora" in r for r in again)


def test_loco_rows_one_per_held_out_corpus(results_db, loco_run):
    _, res = loco_run
    base = {"section": "LOCO", "model": "svm", "labels": "auto", "config": "configs/x.toml"}
    rows = results_db.upsert(results_db.loco_rows(res.metrics, base))
    assert len(rows) == 3
    for r, h in zip(rows, res.metrics["loco"]["held_out"], strict=True):
        assert r["protocol"] == "loco" and r["test_corpora"] == [h["corpus"]]
        assert r["adapted"] is False and r["ua"] == h["ua"] and r["chance"] == h["chance"]
        assert (r["labels"], r["config"]) == ("auto", "configs/x.toml")
    md = results_db.RESULTS_MD.read_text()
    assert "| loco → custom (chance 33.3) |" in md


def test_indian_unknown_user_trains_elsewhere_and_is_all_test_when_held_out():
    from emovox.data.corpora.indian_emospeech import UNKNOWN_SPEAKER
    from emovox.evaluation.splits import make_split

    speakers = [UNKNOWN_SPEAKER] * 3 + ["indian_emospeech:abc"] + ["ravdess:01"] * 4
    corpora_ = ["indian_emospeech"] * 4 + ["ravdess"] * 4
    labels = ["happy", "angry", "calm", "happy", "happy", "angry", "calm", "sad"]
    split = make_split("loco", labels, speakers, corpora_, val_fraction=0.5)
    indian, ravdess = split.folds
    assert list(indian.test) == [0, 1, 2, 3] and not len(indian.unscored)
    assert set(ravdess.train) | set(ravdess.val) == {0, 1, 2, 3}  # unknown user trains
    assert list(ravdess.unscored) == [7]  # sad: no Indian EmoSpeech clip has it


# --- balance = "corpus": every training corpus the same total weight --------------------------


def _three_sizes(seed: int = 0):
    """A Dataset of three corpora of very different sizes (200, 30, 30 clips), each with its own
    offset; happy/sad differ along feature 0 in the big one and along feature 1 in the small."""
    import numpy as np

    from emovox.data.manifest import Clip
    from emovox.evaluation.experiment import Dataset

    rng = np.random.default_rng(seed)
    clips, rows = [], []
    for corpus, n, axis in (("big", 200, 0), ("small1", 30, 1), ("small2", 30, 1)):
        offset = rng.standard_normal(4) * 3
        for i in range(n):
            emo = ("happy", "sad", "sad")[i % 3] if corpus == "big" else ("happy", "sad")[i % 2]
            x = offset + rng.standard_normal(4) * 0.7
            x[axis] += 1.0 if emo == "happy" else -1.0
            rows.append(x)
            clips.append(
                Clip(f"{corpus}-{i}", corpus, f"/{corpus}/{i}.wav", emo, emo, f"{corpus}:{i % 5}")
            )
    X = np.array(rows, np.float32)
    return Dataset(clips, X, [None] * len(clips), ("happy", "sad"), [], {}, [])


def test_corpus_balanced_weights_equal_per_corpus_and_per_class_within():
    import numpy as np

    from emovox.evaluation.experiment import corpus_balanced_weights

    data = _three_sizes()
    corp, y = np.array(data.column("corpus")), data.y
    w = corpus_balanced_weights(corp, y)
    assert w.sum() == pytest.approx(len(y))
    per_corpus = {c: w[corp == c].sum() for c in ("big", "small1", "small2")}
    assert all(v == pytest.approx(len(y) / 3) for v in per_corpus.values())
    big = corp == "big"  # 1 happy : 2 sad clips, but the same total weight per class
    assert w[big & (y == "happy")].sum() == pytest.approx(w[big & (y == "sad")].sum())
    assert w[big].max() < w[~big].min()  # a clip of the big corpus counts less
    with pytest.raises(ValueError, match="one corpus per label"):
        corpus_balanced_weights(["a"], ["x", "y"])


def test_training_column_follows_the_rows_of_training_views():
    import numpy as np

    from emovox.evaluation.experiment import training_column, training_rows

    data = _three_sizes()
    ok = np.arange(len(data.clips)) % 2 == 0
    data.views["speed:0.9"] = (data.X + 100, ok)
    train = np.arange(0, 230)
    X, y, _ = training_rows(data, train, np.array(data.column("speaker"), dtype=object))
    corp = training_column(data, train, data.column("corpus"))
    assert len(corp) == len(X) == len(y) == 230 + 115
    assert corp[230:].tolist() == [data.clips[i].corpus for i in train[ok[train]]]


def test_balance_corpus_reaches_the_classifier_fit():
    import numpy as np

    from emovox.evaluation.experiment import weighted_fit_params
    from emovox.models import make_model

    data = _three_sizes()
    plain = evaluate(data, ExperimentConfig(model="logreg", protocol="loco"), write=False)
    cfg = ExperimentConfig(model="logreg", protocol="loco", balance="corpus")
    weighted = evaluate(data, cfg, write=False)
    assert weighted.metrics["balance"] == "corpus" and plain.metrics["balance"] == "none"
    p0 = np.array([p["p_happy"] for p in plain.predictions])
    p1 = np.array([p["p_happy"] for p in weighted.predictions])
    assert np.abs(p0 - p1).max() > 0.01  # the weights changed the fitted heads
    model = make_model("logreg")
    params = weighted_fit_params(model, np.ones(3))
    assert list(params) == ["clf__sample_weight"]
    assert model.get_params()["clf__class_weight"] is None  # the weights alone balance
    with pytest.raises(ValueError, match="takes no sample weights"):
        weighted_fit_params(make_model("lda"), np.ones(3))
    with pytest.raises(ValueError, match="no sample weights"):
        evaluate(
            data, ExperimentConfig(model="knn", protocol="loco", balance="corpus"), write=False
        )


@pytest.mark.parametrize(
    "name", ["loco-balanced", "loco-calm", "loco-balanced-calm", "loco-corpus-norm"]
)
def test_loco_variant_configs_are_the_baseline_plus_one_change(name):
    from dataclasses import asdict

    base = asdict(load_experiment_config(REPO / "configs" / "loco-baseline.toml"))
    cfg = asdict(load_experiment_config(REPO / "configs" / f"{name}.toml"))
    changed = {k for k in cfg if cfg[k] != base[k]} - {"name"}
    expected = {
        "loco-balanced": {"balance"},
        "loco-calm": {"labels"},
        "loco-balanced-calm": {"balance", "labels"},
        "loco-corpus-norm": {"adapt"},
    }[name]
    assert changed == expected and cfg["name"] == name


def test_loco_results_keep_adapted_runs_apart_and_compare_with_the_baseline(loco_run, tmp_path):
    spec = importlib.util.spec_from_file_location(
        "loco_results", REPO / "bench" / "loco_results.py"
    )
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    _, res = loco_run
    base = mod.collect([res.run_dir])[0] | {"run": "loco-baseline"}
    adapted = json.loads(json.dumps(base)) | {"run": "norm", "adapted": True, "adapt": "corpus"}
    balanced = json.loads(json.dumps(base)) | {"run": "bal", "balance": "corpus"}
    for h in balanced["loco"]["held_out"]:
        h["ua"] += 0.05 if h["corpus"] == "ravdess" else 0.0
    balanced["loco"]["mean_ua"] += 0.05 / 3
    table = mod.render([adapted, base, balanced])
    head = table.splitlines()[0]
    assert head.endswith("| loco-baseline | bal | norm (ADAPTED) |")  # adapted last, marked
    assert "**ADAPTED** columns are not plain figures" in table
    rows = {
        r.split(" | ")[0].lstrip("| "): r
        for r in mod.effects([base, balanced, adapted]).splitlines()
    }
    assert "| balance = corpus |" in rows["bal"] and "| +1.7 | +1.7 | 1 / 0 |" in rows["bal"]
    assert "adapt = corpus (ADAPTED)" in rows["norm (ADAPTED)"]
    assert "(the baseline)" in rows["loco-baseline"]
    assert mod.model_name(adapted).endswith("+corpus-norm")
    assert mod.model_name(balanced).endswith("-svm+balance=corpus")
