"""``emovox evaluate``, ``fuse``, ``table2`` and ``run``: classical and frozen-encoder
experiments, late fusion, and the paper's Table 2 honest beside leaky."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from emovox.cli.common import (
    CorpusOpt,
    JsonOpt,
    LabelsOpt,
    RootOpt,
    build_config,
    err,
    fail,
    load_data,
    out,
    parse_params,
    split_list,
)


def evaluate(
    model: Annotated[
        str | None,
        typer.Option(
            help="knn, lda, svm, rda, gmm, logreg, hmm (frame features), attentive (encoder "
            "frames), or finetune "
            "(the encoder's top blocks trained; --param blocks=N) [default: svm]."
        ),
    ] = None,
    corpus: CorpusOpt = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="speaker-kfold (default), loso, held-out, cross-corpus, loco (leave one "
            "corpus out: each corpus held out whole in turn), or random (the paper's, LEAKY)."
        ),
    ] = None,
    labels: Annotated[
        str | None,
        typer.Option(
            help="paper7, common6, core4, ravdess8, all, a comma list, or auto (default)."
        ),
    ] = None,
    k: Annotated[
        int | None, typer.Option(help="Folds for speaker-kfold / random [default: 5].")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="Split and model seed [default: 0].")] = None,
    test_speakers: Annotated[list[str] | None, typer.Option(help="For held-out.")] = None,
    train_corpora: Annotated[
        list[str] | None,
        typer.Option(help="For cross-corpus (a CSV manifest's corpus names too)."),
    ] = None,
    test_corpora: Annotated[
        list[str] | None,
        typer.Option(help="For cross-corpus; for loco, the corpora to hold out [default: each]."),
    ] = None,
    tune: Annotated[
        bool | None, typer.Option(help="Grid-search hyper-parameters on training speakers.")
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="A model setting NAME=VALUE (repeatable), e.g. C=0.001 for logreg; "
            "VALUE is read as a number when it is one."
        ),
    ] = None,
    denoise: Annotated[
        bool | None, typer.Option(help="Spectral-gating noise reduction first.")
    ] = None,
    features: Annotated[
        str | None,
        typer.Option(
            help="Feature groups (e.g. 'mfcc,prosody'; default: all hand-made groups) or a "
            "frozen encoder's pooled layers: 'whisper:tiny.en', 'whisper:base', "
            "'whisper:/path/to/model', or several side by side: 'whisper:tiny.en+base'."
        ),
    ] = None,
    train_view: Annotated[
        list[str] | None,
        typer.Option(
            help="Add an augmented view of every TRAINING clip (encoder features only; "
            "repeatable): speed:0.9, pitch:-2, noise:pink:15, reverb:0.4, phone, "
            "codec:opus:12, clip:12, crop:1.0, condition:1."
        ),
    ] = None,
    layers: Annotated[
        str | None,
        typer.Option(
            help="Encoder hidden layers to pool, e.g. '0,1,2,3' (0 = the stem; encoder "
            "features only; default: every layer)."
        ),
    ] = None,
    adapt: Annotated[
        str | None,
        typer.Option(
            help="none (default), speaker or corpus: standardise features per speaker/corpus "
            "first. Uses no labels but does use unlabeled clips of each TEST speaker/corpus."
        ),
    ] = None,
    balance: Annotated[
        str | None,
        typer.Option(
            help="none (default) or corpus: weight training clips so every training corpus "
            "counts the same, classes balanced within each (logreg, svm)."
        ),
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            help="TOML file with an [experiment] table (ExperimentConfig fields); options "
            "given on the command line win."
        ),
    ] = None,
    root: RootOpt = None,
    out_dir: Annotated[str | None, typer.Option("--out", help="Where run folders go.")] = None,
    name: Annotated[str | None, typer.Option(help="Run folder name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Evaluate a classical model or a frozen-encoder head; speaker-independent unless
    --protocol random (LEAKY)."""
    from emovox.evaluation.experiment import evaluate as run_eval
    from emovox.evaluation.splits import ProtocolError

    try:
        layer_list = [int(x) for x in split_list([layers])] if layers else None
    except ValueError:
        fail(f"--layers takes layer numbers such as '0,1,2,3', got {layers!r}")
    given = dict(
        model=model,
        corpora=split_list(corpus) or None,
        protocol=protocol,
        labels=labels,
        k=k,
        seed=seed,
        test_speakers=split_list(test_speakers) or None,
        train_corpora=split_list(train_corpora) or None,
        test_corpora=split_list(test_corpora) or None,
        tune=tune,
        denoise=denoise,
        features=features,
        train_views=split_list(train_view) or None,
        layers=layer_list,
        adapt=adapt,
        balance=balance,
        out_dir=out_dir,
        name=name,
        root=root,
    )
    try:
        params = parse_params(param or [])
    except ValueError as exc:
        fail(str(exc))
    if config is not None:
        from emovox.evaluation.experiment_config import load_experiment_config

        roots = given.pop("root")
        try:
            cfg = load_experiment_config(config, **given)
        except (ValueError, TypeError) as exc:
            fail(str(exc))
        if roots:
            cfg.roots = [str(r) for r in roots]
    else:
        cfg = build_config(**given)
    if cfg.protocol == "cross-corpus" and not cfg.corpora:
        cfg.corpora = cfg.train_corpora + cfg.test_corpora
    cfg.params = dict(cfg.params) | params  # command-line settings win over the config's
    data = load_data(cfg, as_json)
    try:
        res = run_eval(data, cfg, progress=not as_json)
    except (ProtocolError, ValueError) as exc:
        fail(str(exc))
    m = res.metrics | {"run_dir": str(res.run_dir)}
    print_scores(m, f"{m['model']} on {', '.join(m['corpora'])}", as_json)


def print_scores(m: dict, headline: str, as_json: bool) -> None:
    """A finished run's scores, its LEAKY / ADAPTED notes and where its report is; with
    ``as_json`` on standard error, then the metrics as JSON on standard output."""
    from emovox.evaluation.reports import adaptation_note, protocol_tag

    con = err if as_json else out
    con.print(
        f"{headline} — {protocol_tag(m['protocol'], m['leaky'])}, {m['folds']} folds, "
        f"{m['n']} clips"
    )
    loco = m.get("loco")
    pooled = "pooled over held-out corpora: " if loco else ""
    con.print(f"{pooled}WA {m['wa']:.3f}  UA {m['ua']:.3f}  macro-F1 {m['macro_f1']:.3f}")
    if loco:
        for h in loco["held_out"]:
            con.print(
                f"  held out {h['corpus']}: UA {h['ua']:.3f} (chance {h['chance']:.3f}, "
                f"{len(h['labels'])} classes, {h['n']} clips"
                + (f", {h['unscored']} not scored" if h["unscored"] else "")
                + ")"
            )
        con.print(
            f"mean UA over {len(loco['held_out'])} held-out corpora: {loco['mean_ua']:.3f} "
            f"(mean chance {loco['mean_chance']:.3f})"
        )
    if m["leaky"]:
        con.print(
            "[bold red]LEAKY[/]: the same speakers and sentences are on both sides of the "
            "split; run with --protocol speaker-kfold for the honest figure."
        )
    if adaptation_note(m.get("adapt")):
        con.print(f"[yellow]{adaptation_note(m.get('adapt'))}[/]")
    con.print(f"report: {m['run_dir']}")
    if as_json:
        print(json.dumps(m))


def fuse(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (from evaluate or train).")],
    weight: Annotated[
        list[float] | None,
        typer.Option(help="One weight per run, in order (repeat); default: equal weights."),
    ] = None,
    out_dir: Annotated[str, typer.Option("--out", help="Where the fused run goes.")] = "runs",
    name: Annotated[str | None, typer.Option(help="Run folder name.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Late fusion: average the class probabilities of finished runs over the same clips and
    folds (e.g. the Whisper head and the CNN), and score the result."""
    from emovox.evaluation.fusion import FusionError, fuse_runs

    try:
        res = fuse_runs(runs, weight or None, out_dir=out_dir, name=name)
    except FusionError as exc:
        fail(str(exc))
    m = res.metrics | {"run_dir": str(res.run_dir)}
    print_scores(m, f"fusion of {len(runs)} runs (weights {m['weights']})", as_json)


def table2(
    corpus: CorpusOpt = None,
    labels: LabelsOpt = "auto",
    k: int = 5,
    seed: int = 0,
    root: RootOpt = None,
    out_dir: Annotated[str, typer.Option("--out")] = "runs",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The paper's Table 2 (KNN, LDA, SVM, RDA, HMM; accuracy per emotion), honest beside
    LEAKY."""
    from emovox.evaluation.table2 import compute_table2, write_table2

    cfg = build_config(
        corpora=split_list(corpus), labels=labels, k=k, seed=seed, out_dir=out_dir, root=root
    )
    data = load_data(cfg, as_json)
    result = compute_table2(data, cfg, progress=not as_json)
    md = write_table2(result, out_dir)
    con = err if as_json else out
    con.print(md)
    con.print(
        "The LEAKY rows put the same speakers and sentences in training and test (the paper's "
        "random split); the speaker-independent rows are what to expect on new voices."
    )
    if as_json:
        print(json.dumps(result))


def run(
    root: RootOpt = None,
    out_dir: Annotated[str, typer.Option("--out")] = "runs",
) -> None:
    """Main job: SVM on every corpus found, speaker-independent beside the paper's LEAKY split."""
    from emovox.evaluation.experiment import evaluate as run_eval
    from emovox.evaluation.reports import protocol_tag

    cfg = build_config(model="svm", root=root, out_dir=out_dir)
    err.print(
        f"emovox: looking for corpora under {', '.join(cfg.roots)}"
        f"{'' if os.environ.get('EMOVOX_CORPORA') else ' (set EMOVOX_CORPORA to change)'}"
    )
    data = load_data(cfg, quiet=False)
    found = ", ".join(sorted({c.corpus for c in data.clips}))
    t = Table(
        title=f"SVM on utterance feature statistics — {found}, labels {','.join(data.labels)}"
    )
    for col in ("protocol", "speakers", "folds", "clips", "WA", "UA", "macro-F1"):
        t.add_column(col, no_wrap=True)
    reports = []
    for protocol in ("speaker-kfold", "random"):
        cfg.protocol = protocol
        cfg.name = None
        m = (res := run_eval(data, cfg)).metrics
        reports.append(f"{protocol_tag(protocol, m['leaky'])}: {res.run_dir}")
        t.add_row(
            protocol,
            "[bold red]LEAKY[/]" if m["leaky"] else "unseen",
            str(m["folds"]),
            str(m["n"]),
            f"{m['wa']:.3f}",
            f"{m['ua']:.3f}",
            f"{m['macro_f1']:.3f}",
        )
    out.print(t)
    for line in reports:
        out.print(f"report {line}", soft_wrap=True)
    out.print(
        "The LEAKY row is the paper's protocol (random split: the same speakers and sentences "
        "on both sides); the speaker-independent row is what to expect on new voices."
    )
