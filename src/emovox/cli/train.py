"""``emovox train``: a deep model (CNN or ResNet-34) trained and scored fold by fold."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from emovox.cli.common import JsonOpt, RootOpt, err, fail, out, split_list


def train(
    config: Annotated[
        Path, typer.Option("--config", help="TOML config (e.g. configs/paper-model2.toml).")
    ],
    protocol: Annotated[
        str | None,
        typer.Option(
            help="Override the config's protocol: speaker-kfold, loso, held-out, cross-corpus, "
            "or random (the paper's, LEAKY)."
        ),
    ] = None,
    folds: Annotated[
        int | None, typer.Option(help="Run only the first N folds (e.g. 1 for a quick figure).")
    ] = None,
    train_corpora: Annotated[
        list[str] | None, typer.Option(help="For --protocol cross-corpus: training corpora.")
    ] = None,
    test_corpora: Annotated[
        list[str] | None, typer.Option(help="For --protocol cross-corpus: the held-out corpus.")
    ] = None,
    epochs: Annotated[int | None, typer.Option(help="Override [train] epochs.")] = None,
    resume: Annotated[
        bool,
        typer.Option(help="Re-use finished folds; continue an unfinished one from its checkpoint"),
    ] = False,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    precision: Annotated[
        str | None,
        typer.Option(help="fp32 or bf16 (autocast; faster on CPUs with avx512_bf16 and on GPUs)."),
    ] = None,
    pretrained: Annotated[
        str | None, typer.Option(help="Initial weights: a .pth/.safetensors file or 'imagenet'.")
    ] = None,
    root: RootOpt = None,
    out_dir: Annotated[str, typer.Option("--out", help="Where run folders go.")] = "runs",
    name: Annotated[
        str | None, typer.Option(help="Run name (folder <out>/<name>-<protocol>).")
    ] = None,
    as_json: JsonOpt = False,
) -> None:
    """Train and evaluate a deep model (CNN or ResNet-34) from a TOML config, fold by fold."""
    from emovox.evaluation.deep_experiment import ConfigError, load_config, train_and_evaluate
    from emovox.evaluation.experiment import NoCorporaError
    from emovox.evaluation.reports import protocol_tag
    from emovox.evaluation.splits import ProtocolError

    overrides = {
        "protocol": protocol,
        "folds": folds,
        "train_corpora": split_list(train_corpora) or None,
        "test_corpora": split_list(test_corpora) or None,
        "epochs": epochs,
        "device": device,
        "threads": threads,
        "precision": precision,
        "pretrained": pretrained,
        "name": name,
        "roots": [str(r) for r in root] if root else None,
    }
    try:
        cfg = load_config(config, overrides)
    except ConfigError as exc:
        fail(escape(str(exc)))
    con = err if as_json else out
    if cfg.leaky:
        con.print(
            "[bold red]LEAKY[/]: "
            + (
                "augmented copies of each recording are made before the random split"
                if cfg.paper_augment_first
                else "the random split puts the same speakers and sentences on both sides"
            )
            + "; this score will overstate accuracy on new voices."
        )
    try:
        m = train_and_evaluate(
            cfg,
            out_dir,
            resume=resume,
            progress=not as_json,
            log=lambda s: err.print(escape(s), soft_wrap=True),
        )
    except (NoCorporaError, ProtocolError, ConfigError, ValueError, FileNotFoundError) as exc:
        fail(escape(str(exc)))
    except KeyboardInterrupt as exc:
        err.print(
            "[yellow]interrupted[/]: finished folds and the last epoch's checkpoint are saved; "
            "run the same command with --resume to continue."
        )
        raise typer.Exit(130) from exc
    con.print(
        f"{m['model']} on {', '.join(m['corpora'])} — {protocol_tag(m['protocol'], m['leaky'])}"
        f", {m['folds']} of {m['folds_total']} folds, {m['n']} test clips"
    )
    con.print(f"WA {m['wa']:.3f}  UA {m['ua']:.3f}  macro-F1 {m['macro_f1']:.3f}")
    con.print("fold UA: " + ", ".join(f"{u:.3f}" for u in m["fold_ua"]))
    if m["leaky"]:
        con.print(
            "[bold red]LEAKY[/]: the same speakers and sentences (and, with paper_augment_first, "
            "copies of the same recording) are on both sides of the split; run with --protocol "
            "speaker-kfold for the honest figure."
        )
    con.print(f"report: {m['run_dir']}", soft_wrap=True)
    if as_json:
        print(json.dumps(m))
