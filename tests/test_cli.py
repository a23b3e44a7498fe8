import json

from typer.testing import CliRunner

from emovox.cli import app

runner = CliRunner()


def last_json(output: str) -> dict:
    return json.loads(output.strip().splitlines()[-1])


def test_scan_json_counts(ravdess_tree):
    res = runner.invoke(app, ["corpora", "scan", str(ravdess_tree), "--json"])
    assert res.exit_code == 0, res.output
    s = json.loads(res.stdout)["ravdess"]
    assert s["clips"] == 48 and s["speakers"] == 6
    assert s["emotions"] == {"angry": 12, "happy": 12, "neutral": 12, "sad": 12}
    assert s["problems"] == []


def test_scan_missing_folder_is_a_clear_error(tmp_path):
    res = runner.invoke(app, ["corpora", "scan", str(tmp_path / "nope")])
    assert res.exit_code == 2 and "does not exist" in " ".join(res.output.split())


def test_scan_finding_no_corpus_exits_1_with_or_without_json(tmp_path):
    res = runner.invoke(app, ["corpora", "scan", str(tmp_path), "--json"])
    assert res.exit_code == 1 and json.loads(res.stdout) == {}
    res = runner.invoke(app, ["corpora", "scan", str(tmp_path)])
    assert res.exit_code == 1 and "No known corpus" in res.stderr


def test_top_level_help_lists_the_exit_codes():
    res = runner.invoke(app, ["--help"], env={"COLUMNS": "200"})
    text = " ".join(res.stdout.split())
    assert "Exit codes: 0 every input gave a result; 3 some inputs failed" in text
    assert "corpora scan exits 0 when it finds corpora, even with problems listed" in text


def test_evaluate_honest_then_leaky(ravdess_tree, tmp_path):
    args = [
        "evaluate",
        "--model",
        "lda",
        "--corpus",
        "ravdess",
        "--root",
        str(ravdess_tree),
        "--k",
        "3",
        "--out",
        str(tmp_path / "runs"),
        "--json",
    ]
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    m = last_json(res.stdout)
    assert m["protocol"] == "speaker-kfold" and m["leaky"] is False
    assert m["leakage"]["shared_speakers"] == 0
    assert {"wa", "ua", "macro_f1", "per_class"} <= set(m)
    assert m["ua"] > 0.5  # the synthetic emotions are separable by pitch
    run_dir = tmp_path / "runs" / "lda-ravdess-speaker-kfold"
    assert (run_dir / "confusion.png").exists() and (run_dir / "predictions.csv").exists()

    res = runner.invoke(app, args[:-1] + ["--protocol", "random", "--json"])
    leaky = last_json(res.stdout)
    assert leaky["leaky"] is True and leaky["leakage"]["shared_speakers"] > 0
    assert "LEAKY" in (tmp_path / "runs" / "lda-ravdess-random" / "summary.md").read_text()


def test_evaluate_without_corpora_says_how_to_fix(tmp_path):
    res = runner.invoke(app, ["evaluate", "--root", str(tmp_path)])
    assert res.exit_code == 2
    assert "EMOVOX_CORPORA" in res.output


def test_table2_writes_both_protocols(ravdess_tree, tmp_path):
    res = runner.invoke(
        app,
        [
            "table2",
            "--root",
            str(ravdess_tree),
            "--k",
            "3",
            "--out",
            str(tmp_path / "t2"),
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = last_json(res.stdout)
    models = {(r["model"], r["leaky"]) for r in out["rows"]}
    names = ("knn", "lda", "svm", "rda", "hmm")
    assert models == {(m, leaky) for m in names for leaky in (False, True)}
    md = (tmp_path / "t2" / "table2.md").read_text()
    assert "LEAKY" in md and "| RDA |" in md and "| HMM |" in md


def test_render_table2_puts_honest_before_leaky():
    from emovox.evaluation.table2 import render_table2

    def row(model, leaky, protocol):
        return {"model": model, "leaky": leaky, "protocol": protocol, "wa": 0.5, "ua": 0.25,
                "per_class": {"angry": 0.75}}  # fmt: skip

    md = render_table2(
        {"labels": ["angry", "sad"], "rows": [row("svm", True, "random"),
                                              row("svm", False, "speaker-kfold")]}
    )  # fmt: skip
    lines = md.splitlines()
    assert lines[0] == "**Speaker-independent: speaker-kfold** (per-emotion accuracy = recall)"
    assert lines[2] == "| model | angry | sad | WA | UA |"
    assert lines[3] == "|---|---|---|---|---|"
    assert lines[4] == "| SVM | 0.750 | nan | 0.500 | 0.250 |"
    assert "**Paper's protocol: random, LEAKY** (per-emotion accuracy = recall)" in lines


def test_scan_lists_stray_audio_as_problems(ravdess_tree):
    import soundfile as sf
    from conftest import emotional_tone

    stray = ravdess_tree / "misc" / "recording_01.wav"
    stray.parent.mkdir()
    sf.write(stray, emotional_tone(0, 0, 0), 16000)
    res = runner.invoke(app, ["corpora", "scan", str(ravdess_tree), "--json"])
    assert res.exit_code == 0  # problems are listed, not a failure
    s = json.loads(res.stdout)
    assert s["ravdess"]["clips"] == 48
    assert [p["path"] for p in s["unrecognised"]["problems"]] == [str(stray)]


def test_main_job_reports_honest_and_leaky(ravdess_tree, tmp_path):
    res = runner.invoke(app, ["run", "--root", str(ravdess_tree), "--out", str(tmp_path / "r")])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert "report speaker-kfold (speaker-independent):" in text
    assert "report random (LEAKY):" in text
    assert (tmp_path / "r" / "svm-all-speaker-kfold" / "metrics.json").exists()


def test_main_job_without_corpora_explains(tmp_path):
    res = runner.invoke(app, ["run", "--root", str(tmp_path / "empty")])
    assert res.exit_code == 2
    assert "EMOVOX_CORPORA" in " ".join(res.output.split())


def test_evaluate_with_noise_reduction_records_it(ravdess_tree, tmp_path):
    res = runner.invoke(
        app,
        [
            "evaluate",
            "--model",
            "lda",
            "--root",
            str(ravdess_tree),
            "--k",
            "3",
            "--denoise",
            "--out",
            str(tmp_path),
            "--name",
            "dn",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "dn" / "config.json").read_text())["denoise"] is True
    assert last_json(res.stdout)["n"] == 48


def test_scan_groups_many_problems_of_one_reason(ravdess_tree):
    actor = ravdess_tree / "ravdess" / "Audio_Speech_Actors_01-24" / "Actor_01"
    for i in range(8):
        (actor / f"not-a-ravdess-name-{i}.wav").write_bytes(b"RIFF")
    res = runner.invoke(app, ["corpora", "scan", str(ravdess_tree)])
    assert res.exit_code == 0, res.output
    text = " ".join(res.output.split())
    assert text.count("not-a-ravdess-name-") == 5
    assert "... and 3 more:" in text
    res = runner.invoke(app, ["corpora", "scan", str(ravdess_tree), "--show", "0"])
    assert " ".join(res.output.split()).count("not-a-ravdess-name-") == 8
