"""The ``emovox`` command line: a thin layer over :mod:`emovox.experiment` and friends."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

app = typer.Typer(
    help="emovox: speech emotion recognition with honest evaluation.",
    no_args_is_help=True,
    add_completion=False,
)
corpora_app = typer.Typer(help="Find and inspect emotional-speech corpora.", no_args_is_help=True)
app.add_typer(corpora_app, name="corpora")

err = Console(stderr=True)
out = Console()


def _split_list(values: list[str] | None) -> list[str]:
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


@corpora_app.command("scan")
def corpora_scan(
    roots: Annotated[list[Path], typer.Argument(help="Folders to search for corpora.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    manifest_csv: Annotated[
        Path | None, typer.Option("--csv", help="Write the manifest here.")
    ] = None,
) -> None:
    """Find corpora under ROOTS: clips per corpus x emotion, speakers, hours, problems."""
    from emovox import corpora
    from emovox.labels import EMOTIONS

    for r in roots:
        if not r.exists():
            err.print(f"[red]error:[/] {r} does not exist")
            raise typer.Exit(2)
    manifest = corpora.scan(roots)
    summary = manifest.summary()
    if manifest_csv:
        manifest.to_csv(manifest_csv)
    if as_json:
        print(json.dumps(summary))
        return
    if not summary:
        err.print(f"No known corpus found under {', '.join(map(str, roots))}.")
        raise typer.Exit(1)
    names = list(summary)
    t = Table(title="Corpora found")
    t.add_column("")
    for name in names:
        t.add_column(name, justify="right")
    for key in ("clips", "speakers", "hours"):
        t.add_row(key, *[str(summary[n][key]) for n in names])
    for e in [e for e in EMOTIONS if any(e in s["emotions"] for s in summary.values())]:
        t.add_row(f"  {e}", *[str(summary[n]["emotions"].get(e, "")) for n in names])
    t.add_row("problems", *[str(len(summary[n]["problems"])) for n in names])
    out.print(t)
    for name, s in summary.items():
        for p in s["problems"]:
            out.print(f"[yellow]problem[/] {name}: {p['path']}: {p['reason']}", soft_wrap=True)
        for p in s.get("notes", []):
            out.print(f"[cyan]note[/] {name}: {p['path']}: {p['note']}", soft_wrap=True)


def _config(**kw) -> object:
    from emovox.experiment import ExperimentConfig

    roots = kw.pop("root") or []
    cfg = ExperimentConfig(**{k: v for k, v in kw.items() if v is not None})
    if roots:
        cfg.roots = [str(r) for r in roots]
    return cfg


def _load(cfg, quiet: bool):
    from emovox.experiment import NoCorporaError, load_dataset

    try:
        data = load_dataset(cfg, progress=not quiet)
    except NoCorporaError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    if data.skipped:
        err.print(f"[yellow]{len(data.skipped)} clip(s) skipped[/] (listed in skipped.csv):")
        for p, r in data.skipped[:10]:
            err.print(f"  {p}: {r}")
    return data


ModelOpt = Annotated[str, typer.Option(help="knn, lda, svm, rda or gmm.")]
CorpusOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--corpus", "-c", help="Corpora to use (repeat or comma-separate); default: all found."
    ),
]
ProtocolOpt = Annotated[
    str,
    typer.Option(
        help="speaker-kfold, loso, held-out, cross-corpus, or random (the paper's, LEAKY)."
    ),
]
LabelsOpt = Annotated[
    str, typer.Option(help="paper7, common6, core4, ravdess8, all, a comma list, or auto.")
]
RootOpt = Annotated[
    list[Path] | None,
    typer.Option(
        "--root", help="Folder holding the corpora [default: $EMOVOX_CORPORA or ../shared/corpora]."
    ),
]


@app.command()
def evaluate(
    model: ModelOpt = "svm",
    corpus: CorpusOpt = None,
    protocol: ProtocolOpt = "speaker-kfold",
    labels: LabelsOpt = "auto",
    k: Annotated[int, typer.Option(help="Folds for speaker-kfold / random.")] = 5,
    seed: int = 0,
    test_speakers: Annotated[list[str] | None, typer.Option(help="For held-out.")] = None,
    train_corpora: Annotated[list[str] | None, typer.Option(help="For cross-corpus.")] = None,
    test_corpora: Annotated[list[str] | None, typer.Option(help="For cross-corpus.")] = None,
    tune: Annotated[
        bool, typer.Option(help="Grid-search hyper-parameters on training speakers.")
    ] = False,
    denoise: Annotated[bool, typer.Option(help="Spectral-gating noise reduction first.")] = False,
    root: RootOpt = None,
    out_dir: Annotated[str, typer.Option("--out", help="Where run folders go.")] = "runs",
    name: Annotated[str | None, typer.Option(help="Run folder name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="End with the metrics as JSON.")] = False,
) -> None:
    """Evaluate a classical model; speaker-independent unless --protocol random (LEAKY)."""
    from emovox.experiment import evaluate as run_eval
    from emovox.reports import protocol_tag
    from emovox.splits import ProtocolError

    cfg = _config(
        model=model,
        corpora=_split_list(corpus),
        protocol=protocol,
        labels=labels,
        k=k,
        seed=seed,
        test_speakers=_split_list(test_speakers),
        train_corpora=_split_list(train_corpora),
        test_corpora=_split_list(test_corpora),
        tune=tune,
        denoise=denoise,
        out_dir=out_dir,
        name=name,
        root=root,
    )
    if cfg.protocol == "cross-corpus" and not cfg.corpora:
        cfg.corpora = cfg.train_corpora + cfg.test_corpora
    data = _load(cfg, as_json)
    try:
        res = run_eval(data, cfg)
    except (ProtocolError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    m = res.metrics
    con = err if as_json else out
    con.print(
        f"{m['model']} on {', '.join(m['corpora'])} — {protocol_tag(m['protocol'], m['leaky'])}"
        f", {m['folds']} folds, {m['n']} clips"
    )
    con.print(f"WA {m['wa']:.3f}  UA {m['ua']:.3f}  macro-F1 {m['macro_f1']:.3f}")
    if m["leaky"]:
        con.print(
            "[bold red]LEAKY[/]: the same speakers and sentences are on both sides of the "
            "split; run with --protocol speaker-kfold for the honest figure."
        )
    con.print(f"report: {res.run_dir}")
    if as_json:
        print(json.dumps(m))


def _table2(data, cfg) -> dict:
    from emovox.experiment import paper_and_honest

    rows = paper_and_honest(data, cfg)
    return {"labels": list(data.labels), "rows": rows}


def render_table2(result: dict) -> str:
    """Markdown: the paper's Table 2 layout, honest and leaky blocks."""
    labels = result["labels"]
    lines = []
    for leaky in (False, True):
        rows = [r for r in result["rows"] if r["leaky"] == leaky]
        if not rows:
            continue
        proto = rows[0]["protocol"]
        title = f"Paper's protocol: {proto}, LEAKY" if leaky else f"Speaker-independent: {proto}"
        lines += [
            f"**{title}** (per-emotion accuracy = recall)",
            "",
            "| model | " + " | ".join(labels) + " | WA | UA |",
            "|---" * (len(labels) + 3) + "|",
        ]
        for r in rows:
            cells = [f"{r['per_class'].get(lab, float('nan')):.3f}" for lab in labels]
            lines.append(
                f"| {r['model'].upper()} | "
                + " | ".join(cells)
                + f" | {r['wa']:.3f} | {r['ua']:.3f} |"
            )
        lines.append("")
    return "\n".join(lines)


@app.command()
def table2(
    corpus: CorpusOpt = None,
    labels: LabelsOpt = "auto",
    k: int = 5,
    seed: int = 0,
    root: RootOpt = None,
    out_dir: Annotated[str, typer.Option("--out")] = "runs",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """The paper's Table 2 (KNN, LDA, SVM, RDA; accuracy per emotion), honest beside LEAKY."""
    from emovox.io import atomic_write_json, atomic_write_text

    cfg = _config(
        corpora=_split_list(corpus), labels=labels, k=k, seed=seed, out_dir=out_dir, root=root
    )
    data = _load(cfg, as_json)
    result = _table2(data, cfg)
    md = render_table2(result)
    atomic_write_text(Path(out_dir) / "table2.md", md)
    atomic_write_json(Path(out_dir) / "table2.json", result)
    (err if as_json else out).print(md)
    (err if as_json else out).print(
        "The LEAKY rows put the same speakers and sentences in training and test (the paper's "
        "random split); the speaker-independent rows are what to expect on new voices."
    )
    if as_json:
        print(json.dumps(result))


@app.command()
def run(
    root: RootOpt = None,
    out_dir: Annotated[str, typer.Option("--out")] = "runs",
) -> None:
    """Main job: SVM on every corpus found, speaker-independent beside the paper's LEAKY split."""
    from emovox.experiment import evaluate as run_eval
    from emovox.reports import protocol_tag

    cfg = _config(model="svm", root=root, out_dir=out_dir)
    err.print(
        f"emovox: looking for corpora under {', '.join(cfg.roots)}"
        f"{'' if os.environ.get('EMOVOX_CORPORA') else ' (set EMOVOX_CORPORA to change)'}"
    )
    data = _load(cfg, quiet=False)
    found = ", ".join(sorted({c.corpus for c in data.clips}))
    t = Table(
        title=f"SVM on utterance feature statistics — {found}"
        f", labels {','.join(data.labels)}"
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


@app.command()
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
    epochs: Annotated[int | None, typer.Option(help="Override [train] epochs.")] = None,
    resume: Annotated[
        bool,
        typer.Option(help="Re-use finished folds; continue an unfinished one from its checkpoint"),
    ] = False,
    device: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    threads: Annotated[int | None, typer.Option(help="torch CPU threads.")] = None,
    pretrained: Annotated[
        str | None, typer.Option(help="Initial weights: a .pth/.safetensors file or 'imagenet'.")
    ] = None,
    root: RootOpt = None,
    out_dir: Annotated[str, typer.Option("--out", help="Where run folders go.")] = "runs",
    name: Annotated[
        str | None, typer.Option(help="Run name (folder <out>/<name>-<protocol>).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="End with the metrics as JSON.")] = False,
) -> None:
    """Train and evaluate a deep model (CNN or ResNet-34) from a TOML config, fold by fold."""
    from rich.markup import escape

    from emovox.deep_experiment import ConfigError, load_config, train_and_evaluate
    from emovox.experiment import NoCorporaError
    from emovox.reports import protocol_tag
    from emovox.splits import ProtocolError

    overrides = {
        "protocol": protocol,
        "folds": folds,
        "epochs": epochs,
        "device": device,
        "threads": threads,
        "pretrained": pretrained,
        "name": name,
        "roots": [str(r) for r in root] if root else None,
    }
    try:
        cfg = load_config(config, overrides)
    except ConfigError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc
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
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc
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


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
