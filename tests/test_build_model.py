"""``emovox build-model`` end to end on a tiny corpus and encoder: training views, the card's
coverage and its leave-one-corpus-out section read from a run folder."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from conftest import write_ravdess_tree  # noqa: E402

from emovox.encoders import WhisperDims, WhisperEncoder, export_encoder  # noqa: E402
from emovox.inference.build import build_default_model, training_data  # noqa: E402
from emovox.inference.card import generalization_from_run, render_card  # noqa: E402


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, str]:
    base = tmp_path_factory.mktemp("build")
    roots = write_ravdess_tree(base)
    torch.manual_seed(0)
    enc = WhisperEncoder.from_dims(
        WhisperDims(n_mels=80, n_ctx=1500, n_state=32, n_head=2, n_layer=1)
    ).eval()
    return roots, str(export_encoder(enc, base / "enc.safetensors"))


def _loco_run(folder: Path, encoder: str, C: float = 0.001, views=("phone",)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "protocol": "loco",
        "model": "logreg",
        "features": f"whisper:{encoder}",
        "labels": "paper7",
        "train_views": list(views),
        "adapt": "none",
        "params": {"C": C, "max_iter": 2000},
    }
    held = [
        {"corpus": "ravdess", "n": 40, "labels": ["angry", "sad"], "ua": 0.55, "chance": 0.5},
        {
            "corpus": "tess",
            "n": 40,
            "labels": ["angry", "sad", "happy"],
            "ua": 0.7,
            "chance": 1 / 3,
        },
    ]
    metrics = {"loco": {"held_out": held, "mean_ua": 0.625, "mean_chance": 5 / 12}}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "metrics.json").write_text(json.dumps(metrics))
    return folder


def test_training_rows_add_each_view_of_the_chosen_clips(setup, tmp_path, monkeypatch) -> None:
    roots, enc = setup
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))
    data = training_data([str(roots)], ["ravdess"], "paper7", enc, None, False, print, ["phone"])
    assert list(data.views) == ["phone"]
    Xv, ok = data.views["phone"]
    assert Xv.shape == data.X.shape and ok.all()
    assert not np.allclose(Xv, data.X)  # the view is another recording of the same clips
    use = np.zeros(len(data.clips), dtype=bool)
    use[:5] = True
    X, y = data.rows(use)
    assert X.shape == (10, data.X.shape[1]) and list(y[:5]) == list(y[5:])
    np.testing.assert_array_equal(X[5:], Xv[:5])


def test_build_with_views_and_a_loco_run_writes_the_card(setup, tmp_path, monkeypatch) -> None:
    roots, enc = setup
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))
    run = _loco_run(tmp_path / "runs" / "loco-x", enc)
    cfg = build_default_model(
        tmp_path / "bundle",
        roots=[str(roots)],
        corpora=["ravdess"],
        encoder=enc,
        k=3,
        views=["phone"],
        loco_run=run,
        holdout_speakers=[],
        progress=False,
    )
    card = cfg["card"]
    assert card["training_views"] == ["phone"]
    assert (
        card["coverage"][0]["corpus"] == "ravdess" and "English" in card["coverage"][0]["language"]
    )
    assert card["generalization"]["run"] == "loco-x" and card["generalization"]["mean_ua"] == 0.625
    assert "--view phone" in card["command"] and "--loco-run loco-x" in card["command"]
    assert any("no more than 10 points above chance when ravdess" in x for x in card["limits"])
    text = render_card(cfg)
    assert "## Corpora it never saw (leave-one-corpus-out)" in text
    assert "| tess | English (Canadian) | 70.0 | 33.3 | – |" in text
    assert "`phone`" in text
    assert (tmp_path / "bundle" / "model.safetensors").exists()


def test_a_loco_run_of_another_recipe_is_refused(tmp_path) -> None:
    run = _loco_run(tmp_path / "other", "tiny.en", C=1.0, views=())
    with pytest.raises(ValueError, match=r"C 1\.0 .*bundle: 0\.01"):
        generalization_from_run(run, "tiny.en", 0.01, "paper7", [])
    with pytest.raises(ValueError, match="train_views"):
        generalization_from_run(run, "tiny.en", 1.0, "paper7", ["phone"])
    with pytest.raises(ValueError, match="not a readable evaluation run"):
        generalization_from_run(tmp_path / "nothing", "tiny.en", 0.01, "paper7", [])
    assert generalization_from_run(run, "tiny.en", 1.0, "paper7", [])["mean_chance"] == 5 / 12


def test_cli_names_a_bad_view_and_a_run_of_another_recipe(tmp_path) -> None:
    from typer.testing import CliRunner

    from emovox.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["build-model", "--out", str(tmp_path / "b"), "--view", "bogus:1"])
    assert res.exit_code != 0 and "unknown training view 'bogus:1'" in res.output
    run = _loco_run(tmp_path / "other", "tiny.en", C=1.0, views=())
    res = runner.invoke(app, ["build-model", "--out", str(tmp_path / "b"), "--loco-run", str(run)])
    assert res.exit_code != 0 and "not a LOCO run of this bundle's recipe" in res.output
    assert not (tmp_path / "b").exists()  # refused before any work


def test_a_loco_run_attached_after_the_build_matches_one_given_at_build(
    setup, tmp_path, monkeypatch
) -> None:
    from emovox.inference.build import attach_generalization
    from emovox.inference.engine import load_bundle

    roots, enc = setup
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))
    kw = dict(roots=[str(roots)], corpora=["ravdess"], encoder=enc, k=2, progress=False)
    run = _loco_run(tmp_path / "runs" / "loco-y", enc, views=())
    given = build_default_model(tmp_path / "a", loco_run=run, **kw)
    build_default_model(tmp_path / "b", **kw)
    with pytest.raises(ValueError, match=r"C 0\.001 .*bundle: 0\.5"):
        attach_generalization(tmp_path / "b", run, enc, 0.5)
    attached = attach_generalization(tmp_path / "b", run, enc, 0.001)
    for key in ("generalization", "limits", "command"):
        assert attached["card"][key] == given["card"][key]
    text = (tmp_path / "b" / "card.md").read_text()
    assert "## Corpora it never saw" in text
    assert (
        json.loads((tmp_path / "b" / "card.json").read_text())["generalization"]["run"] == "loco-y"
    )
    load_bundle(tmp_path / "b", backend="numpy")  # still a valid bundle


def _three_corpora(base: Path) -> Path:
    """The tiny RAVDESS tree plus TESS- and SAVEE-layout trees of the same four emotions."""
    import soundfile as sf
    from conftest import emotional_tone

    roots = write_ravdess_tree(base)
    tess = roots / "tess" / "TESS Toronto emotional speech set data"
    savee = roots / "savee" / "AudioData"
    emotions = [("neutral", "n"), ("happy", "h"), ("sad", "sa"), ("angry", "a")]
    for si, who in enumerate(("OAF", "YAF")):
        for ei, (emo, _) in enumerate(emotions):
            (tess / f"{who}_{emo}").mkdir(parents=True, exist_ok=True)
            for wi, word in enumerate(("back", "dog", "germ")):
                tone = emotional_tone(ei, 10 + si, wi + 1)
                sf.write(tess / f"{who}_{emo}" / f"{who}_{word}_{emo}.wav", tone, 16000)
    for si, who in enumerate(("DC", "JE", "JK", "KL")):
        (savee / who).mkdir(parents=True, exist_ok=True)
        for ei, (_, code) in enumerate(emotions):
            for take in (1, 2):
                tone = emotional_tone(ei, 20 + si, take)
                sf.write(savee / who / f"{code}{take:02d}.wav", tone, 16000)
    return roots


def test_with_three_corpora_the_temperature_rises_with_the_domain_score(
    setup, tmp_path, monkeypatch
) -> None:
    from emovox.inference.build import loco_predictions, training_data
    from emovox.inference.engine import load_bundle

    _, enc = setup
    monkeypatch.setenv("EMOVOX_CACHE", str(tmp_path / "cache"))
    roots = _three_corpora(tmp_path / "three")
    kw = dict(roots=[str(roots)], corpora=["ravdess", "tess", "savee"], encoder=enc, k=3,
              holdout_speakers=[], progress=False)  # fmt: skip
    cfg = build_default_model(tmp_path / "bundle", **kw)
    dt = cfg["domain_temperature"]
    assert dt is not None and np.isfinite([dt["intercept"], dt["slope"]]).all()
    cal = cfg["card"]["calibration"]["domain_temperature"]
    assert cal["held_out_corpora"] == ["ravdess", "savee", "tess"]
    assert cal["held_out_clips"] == 48 + 24 + 32  # every clip, each scored without its corpus
    assert 0 <= cal["share_uncertain_held_out"] <= 1
    assert "rises with the input's domain score" in render_card(cfg)
    model = load_bundle(tmp_path / "bundle", backend="numpy")
    assert model.domain_temperature is not None and model.domain_temperature.slope == dt["slope"]
    # each corpus's predictions come from a head that never saw it
    data = training_data([str(roots)], ["ravdess", "tess", "savee"], "paper7", enc, None,
                         False, print)  # fmt: skip
    corp = np.array([c.corpus for c in data.clips], dtype=object)
    groups = loco_predictions(data, corp, np.zeros(len(corp), bool), ["neutral", "happy", "sad",
                              "angry"], 0.001)  # fmt: skip
    assert [len(g[1]) for g in groups] == [48, 32, 24]  # ravdess, savee, tess (sorted)
    plain = build_default_model(tmp_path / "plain", loco_temperature=False, **kw)
    assert plain["domain_temperature"] is None
    assert "domain_temperature" not in plain["card"]["calibration"]
