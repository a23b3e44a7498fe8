"""Fold results shared by processes on one run folder (emovox.inference.fold_store)."""

from __future__ import annotations

import json
import multiprocessing as mp
import time
from pathlib import Path

from emovox.inference.fold_store import FoldStore

SETTINGS = {"epochs": 2, "widths": (8, 16)}
NAMES = [f"fold{i}" for i in range(6)]


def worker(path: str, log: str) -> None:
    """One process of a parallel run: computes what nobody has claimed, then waits for all."""
    store = FoldStore(path, SETTINGS, poll_s=0.05)

    def compute(name: str) -> None:
        with open(log, "a") as fh:
            fh.write(name + "\n")
        time.sleep(0.2)
        store.finish(name, {"value": int(name[-1])})

    for name in NAMES:
        if store.claim(name):
            compute(name)
    out = store.wait(NAMES, compute)
    assert [out[n]["value"] for n in NAMES] == list(range(6))


def test_two_processes_share_the_folds_each_computed_once(tmp_path: Path) -> None:
    path, log = tmp_path / "loco-folds.json", tmp_path / "computed.txt"
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=worker, args=(str(path), str(log))) for _ in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
    assert [p.exitcode for p in procs] == [0, 0]
    computed = log.read_text().split()
    assert sorted(computed) == NAMES  # each fold once, between them
    done = json.loads(path.read_text())
    assert set(done) == set(NAMES) and done["fold3"]["settings"]["widths"] == [8, 16]
    assert json.loads(path.with_name(path.name + ".claims").read_text()) == {}


def test_other_settings_and_dead_claims_are_redone(tmp_path: Path) -> None:
    path = tmp_path / "folds.json"
    old = FoldStore(path, {"epochs": 1})
    old.finish("fold0", {"value": 0})
    store = FoldStore(path, SETTINGS, poll_s=0.01)
    assert store.stale() == ["fold0"] and store.results() == {}
    # a claim left by a process that is gone is taken over
    proc = mp.get_context("fork").Process(target=lambda: None)
    proc.start()
    proc.join()
    path.with_name(path.name + ".claims").write_text(json.dumps({"fold1": proc.pid}))
    computed = []

    def compute(name: str) -> None:
        computed.append(name)
        store.finish(name, {"value": 1})

    assert store.claim("fold0")  # stale result: redone
    compute("fold0")
    out = store.wait(["fold0", "fold1"], compute)
    assert computed == ["fold0", "fold1"] and set(out) == {"fold0", "fold1"}
    assert not store.claim("fold1")  # finished: nothing to do


def test_a_live_claim_is_left_alone(tmp_path: Path) -> None:
    path = tmp_path / "folds.json"
    ctx = mp.get_context("fork")
    proc = ctx.Process(target=time.sleep, args=(5,))
    proc.start()
    try:
        path.with_name(path.name + ".claims").write_text(json.dumps({"fold0": proc.pid}))
        assert not FoldStore(path, SETTINGS).claim("fold0")
    finally:
        proc.kill()
        proc.join()
    assert FoldStore(path, SETTINGS).results() == {}  # nothing finished
