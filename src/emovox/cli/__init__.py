"""The ``emovox`` command line: a thin layer over :mod:`emovox.evaluation.experiment` and
friends."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
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
    from emovox.data import corpora
    from emovox.data.labels import EMOTIONS

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
    from emovox.evaluation.experiment import ExperimentConfig

    roots = kw.pop("root") or []
    cfg = ExperimentConfig(**{k: v for k, v in kw.items() if v is not None})
    if roots:
        cfg.roots = [str(r) for r in roots]
    return cfg


def _load(cfg, quiet: bool):
    from emovox.evaluation.experiment import NoCorporaError, load_dataset

    try:
        data = load_dataset(cfg, progress=not quiet)
    except (NoCorporaError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    if data.skipped:
        err.print(f"[yellow]{len(data.skipped)} clip(s) skipped[/] (listed in skipped.csv):")
        for p, r in data.skipped[:10]:
            err.print(f"  {p}: {r}")
    return data


ModelOpt = Annotated[str, typer.Option(help="knn, lda, svm, rda, gmm or logreg.")]
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
    model: Annotated[
        str | None,
        typer.Option(
            help="knn, lda, svm, rda, gmm, logreg, attentive (encoder frames), or finetune "
            "(the encoder's top blocks trained; --param blocks=N) [default: svm]."
        ),
    ] = None,
    corpus: CorpusOpt = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            help="speaker-kfold (default), loso, held-out, cross-corpus, or random (the "
            "paper's, LEAKY)."
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
    train_corpora: Annotated[list[str] | None, typer.Option(help="For cross-corpus.")] = None,
    test_corpora: Annotated[list[str] | None, typer.Option(help="For cross-corpus.")] = None,
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
            "repeatable): speed:0.9, pitch:-2, noise:pink:15, reverb:0.4."
        ),
    ] = None,
    adapt: Annotated[
        str | None,
        typer.Option(
            help="none (default), speaker or corpus: standardise features per speaker/corpus "
            "first. Uses no labels but does use unlabeled clips of each TEST speaker/corpus."
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
    as_json: Annotated[bool, typer.Option("--json", help="End with the metrics as JSON.")] = False,
) -> None:
    """Evaluate a classical model or a frozen-encoder head; speaker-independent unless
    --protocol random (LEAKY)."""
    from emovox.evaluation.experiment import evaluate as run_eval
    from emovox.evaluation.splits import ProtocolError

    given = dict(
        model=model,
        corpora=_split_list(corpus) or None,
        protocol=protocol,
        labels=labels,
        k=k,
        seed=seed,
        test_speakers=_split_list(test_speakers) or None,
        train_corpora=_split_list(train_corpora) or None,
        test_corpora=_split_list(test_corpora) or None,
        tune=tune,
        denoise=denoise,
        features=features,
        train_views=_split_list(train_view) or None,
        adapt=adapt,
        out_dir=out_dir,
        name=name,
        root=root,
    )
    try:
        params = _parse_params(param or [])
    except ValueError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    if config is not None:
        from emovox.evaluation.experiment import load_experiment_config

        roots = given.pop("root")
        try:
            cfg = load_experiment_config(config, **given)
        except (ValueError, TypeError) as exc:
            err.print(f"[red]error:[/] {exc}")
            raise typer.Exit(2) from exc
        if roots:
            cfg.roots = [str(r) for r in roots]
    else:
        cfg = _config(**given)
    if cfg.protocol == "cross-corpus" and not cfg.corpora:
        cfg.corpora = cfg.train_corpora + cfg.test_corpora
    cfg.params = dict(cfg.params) | params  # command-line settings win over the config's
    data = _load(cfg, as_json)
    try:
        res = run_eval(data, cfg, progress=not as_json)
    except (ProtocolError, ValueError) as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    m = res.metrics | {"run_dir": str(res.run_dir)}
    _print_scores(m, f"{m['model']} on {', '.join(m['corpora'])}", as_json)


def _parse_params(items: list[str]) -> dict[str, object]:
    """``["C=0.001", "solver=saga"]`` → ``{"C": 0.001, "solver": "saga"}``."""
    out: dict[str, object] = {}
    for item in items:
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"--param takes NAME=VALUE, got {item!r}")
        v: object = value.strip()
        for cast in (int, float):
            try:
                v = cast(value)
                break
            except ValueError:
                continue
        out[name.strip()] = v
    return out


def _print_scores(m: dict, headline: str, as_json: bool) -> None:
    """A finished run's scores, its LEAKY / ADAPTED notes and where its report is."""
    from emovox.evaluation.reports import adaptation_note, protocol_tag

    con = err if as_json else out
    con.print(
        f"{headline} — {protocol_tag(m['protocol'], m['leaky'])}, {m['folds']} folds, "
        f"{m['n']} clips"
    )
    con.print(f"WA {m['wa']:.3f}  UA {m['ua']:.3f}  macro-F1 {m['macro_f1']:.3f}")
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


@app.command()
def fuse(
    runs: Annotated[list[Path], typer.Argument(help="Run folders (from evaluate or train).")],
    weight: Annotated[
        list[float] | None,
        typer.Option(help="One weight per run, in order (repeat); default: equal weights."),
    ] = None,
    out_dir: Annotated[str, typer.Option("--out", help="Where the fused run goes.")] = "runs",
    name: Annotated[str | None, typer.Option(help="Run folder name.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="End with the metrics as JSON.")] = False,
) -> None:
    """Late fusion: average the class probabilities of finished runs over the same clips and
    folds (e.g. the Whisper head and the CNN), and score the result."""
    from emovox.evaluation.fusion import FusionError, fuse_runs

    try:
        res = fuse_runs(runs, weight or None, out_dir=out_dir, name=name)
    except FusionError as exc:
        err.print(f"[red]error:[/] {exc}")
        raise typer.Exit(2) from exc
    m = res.metrics | {"run_dir": str(res.run_dir)}
    _print_scores(m, f"fusion of {len(runs)} runs (weights {m['weights']})", as_json)


def _table2(data, cfg) -> dict:
    from emovox.evaluation.experiment import paper_and_honest

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
    from emovox.evaluation.experiment import evaluate as run_eval
    from emovox.evaluation.reports import protocol_tag

    cfg = _config(model="svm", root=root, out_dir=out_dir)
    err.print(
        f"emovox: looking for corpora under {', '.join(cfg.roots)}"
        f"{'' if os.environ.get('EMOVOX_CORPORA') else ' (set EMOVOX_CORPORA to change)'}"
    )
    data = _load(cfg, quiet=False)
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
    as_json: Annotated[bool, typer.Option("--json", help="End with the metrics as JSON.")] = False,
) -> None:
    """Train and evaluate a deep model (CNN or ResNet-34) from a TOML config, fold by fold."""
    from rich.markup import escape

    from emovox.evaluation.deep_experiment import ConfigError, load_config, train_and_evaluate
    from emovox.evaluation.experiment import NoCorporaError
    from emovox.evaluation.reports import protocol_tag
    from emovox.evaluation.splits import ProtocolError

    overrides = {
        "protocol": protocol,
        "folds": folds,
        "train_corpora": _split_list(train_corpora) or None,
        "test_corpora": _split_list(test_corpora) or None,
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


@app.command("build-model")
def build_model_cmd(
    out: Annotated[Path, typer.Option("--out", help="Bundle folder to write.")] = Path(
        "models/default"
    ),
    corpus: CorpusOpt = None,
    labels: LabelsOpt = "paper7",
    encoder: Annotated[
        str, typer.Option(help="Whisper encoder: 'tiny.en', 'base' (packaged) or a model path.")
    ] = "tiny.en",
    layers: Annotated[
        str | None, typer.Option(help="Hidden layers to pool, e.g. '0,1,2,3' (default: all).")
    ] = None,
    c: Annotated[float, typer.Option("--c", help="Inverse L2 strength of the head.")] = 0.01,
    k: Annotated[int, typer.Option(help="Speaker folds for the model card's scores.")] = 5,
    seed: int = 0,
    root: RootOpt = None,
) -> None:
    """Train a ready-to-use model (frozen Whisper encoder + calibrated head) on the corpora."""
    from emovox.evaluation.experiment import NoCorporaError
    from emovox.inference.build import build_default_model

    try:
        cfg = build_default_model(
            out,
            roots=[str(r) for r in root] if root else None,
            corpora=_split_list(corpus),
            labels=labels,
            encoder=encoder,
            layers=[int(x) for x in layers.split(",")] if layers else None,
            C=c,
            k=k,
            seed=seed,
            log=lambda m: err.print(m, soft_wrap=True),
        )
    except (NoCorporaError, FileNotFoundError, ValueError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc
    from emovox.inference.build import render_card
    from emovox.io import atomic_write_text

    atomic_write_text(out / "card.md", render_card(cfg))
    ev = cfg["card"]["evaluation"]
    out_console = Console()
    out_console.print(
        f"wrote {out}: UA {ev['ua']:.3f} (speaker {k}-fold), per corpus: "
        + ", ".join(f"{c} {v['ua']:.3f}" for c, v in ev["per_corpus"].items())
    )


@app.command("convert-encoder")
def convert_encoder(
    source: Annotated[
        str,
        typer.Argument(
            help="'tiny.en' or 'base' (packaged), a CTranslate2 folder, an openai-whisper .pt, "
            "or a Hugging Face folder/.safetensors."
        ),
    ],
    out: Annotated[Path, typer.Argument(help="The fp16 .safetensors file to write.")],
) -> None:
    """Convert Whisper encoder weights into emovox's own fp16 safetensors file (MIT notice kept)."""
    from emovox.encoders import export_encoder, load_whisper_encoder

    try:
        path = export_encoder(load_whisper_encoder(source), out, source_name=source)
    except (FileNotFoundError, ValueError, OSError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc
    Console().print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


@app.command()
def export(
    onnx: Annotated[Path, typer.Option("--onnx", help="ONNX file to write.")],
    model: Annotated[
        Path | None, typer.Option(help="Model folder (default: the bundled model).")
    ] = None,
) -> None:
    """Export a model's encoder + pooling to ONNX (the head stays in model.json/safetensors)."""
    from emovox.inference.bundle import export_onnx

    try:
        path = export_onnx(model, onnx)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc
    Console().print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


# ------------------------------------------------------- ready to use: predict, listen, demo

ModelPathOpt = Annotated[
    Path | None,
    typer.Option("--model", help="Model folder (default: the packaged default model)."),
]
BackendOpt = Annotated[
    str, typer.Option(help="auto (ONNX when onnxruntime is installed), onnx, torch or numpy.")
]
VadOpt = Annotated[
    str, typer.Option(help="Speech detection for long recordings: auto, silero or energy.")
]


def _predictor(model: Path | None, backend: str, vad: str, long_seconds: float = 20.0):
    """``emovox.inference.api.load`` with its failures as a clear error and exit code 2."""
    from rich.markup import escape

    from emovox.inference import api

    try:
        return api.load(model, backend=backend, long_seconds=long_seconds, vad=vad)
    except (FileNotFoundError, ImportError, ValueError, OSError) as exc:
        err.print(f"[red]error:[/] cannot load the model: {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc


def _timeline_stem(path: str, used: set[str]) -> str:
    stem = Path(path).stem or "recording"
    name, i = stem, 1
    while name in used:
        i += 1
        name = f"{stem}-{i}"
    used.add(name)
    return name


@app.command()
def predict(
    paths: Annotated[
        list[str], typer.Argument(help="Audio files, folders (searched recursively) or globs.")
    ],
    model: ModelPathOpt = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per line for each input file.")
    ] = False,
    as_csv: Annotated[bool, typer.Option("--csv", help="CSV on standard output.")] = False,
    timeline_dir: Annotated[
        Path | None,
        typer.Option(
            "--timeline-dir", help="Write each long recording's timeline (JSON, CSV, PNG) here."
        ),
    ] = None,
    backend: BackendOpt = "auto",
    vad: VadOpt = "auto",
    long_seconds: Annotated[
        float,
        typer.Option(help="Recordings longer than this (s) get a timeline of speech segments."),
    ] = 20.0,
    engine: Annotated[
        str, typer.Option(help="local (this process) or ray (Ray actors, Parquet in --out).")
    ] = "local",
    out_dir: Annotated[
        Path | None,
        typer.Option("--out", help="With --engine ray: the output folder (restartable)."),
    ] = None,
    address: Annotated[
        str | None, typer.Option(help="With --engine ray: an existing cluster (default: local).")
    ] = None,
    workers: Annotated[
        int | None, typer.Option(help="With --engine ray: model actors (default: CPUs or GPUs).")
    ] = None,
) -> None:
    """Predict the emotion of audio files; long recordings get one emotion per speech segment."""
    import csv
    import sys

    from rich.markup import escape
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from emovox.audio.files import expand_inputs
    from emovox.inference.api import Prediction
    from emovox.inference.longform import Timeline

    if as_json and as_csv:
        err.print("[red]error:[/] choose one of --json and --csv")
        raise typer.Exit(2)
    if engine not in ("local", "ray"):
        err.print(f"[red]error:[/] --engine must be local or ray, not {escape(engine)}")
        raise typer.Exit(2)
    if engine == "ray" and (out_dir is None or as_csv or timeline_dir is not None):
        err.print("[red]error:[/] --engine ray needs --out DIR (and takes no --csv/--timeline-dir)")
        raise typer.Exit(2)
    if engine == "local" and (out_dir or address or workers):
        err.print("[red]error:[/] --out, --address and --workers are for --engine ray")
        raise typer.Exit(2)
    files, empty = expand_inputs(paths)
    for a, why in empty:
        err.print(f"[yellow]note:[/] {escape(a)}: {why}", soft_wrap=True)
    if not files:
        err.print("[red]error:[/] no audio files to predict")
        raise typer.Exit(2)
    if engine == "ray":
        from emovox.scale.ray_engine import predict_files

        try:
            summary = predict_files(
                files, out_dir, model=model, backend=backend, vad=vad, long_seconds=long_seconds,
                workers=workers, address=address,
                log=lambda m: err.print(escape(m), soft_wrap=True),
            )  # fmt: skip
        except (FileNotFoundError, ImportError, ValueError, ConnectionError, RuntimeError) as exc:
            err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(2) from exc
        if as_json:
            print(json.dumps(summary))
        else:
            out.print(
                f"{summary['files']} files: {summary['rows']} rows, {summary['errors']} error(s), "
                f"{summary['shards_skipped']} of {summary['shards']} shard(s) skipped; "
                f"wrote {escape(str(out_dir))}",
                soft_wrap=True,
            )
        if summary["files"] and summary["errors"] == summary["files"]:
            raise typer.Exit(1)
        return
    pred = _predictor(model, backend, vad, long_seconds)
    labels = pred.labels
    writer = None
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(["path", "label", "uncertain", "duration", "segments", "error", *labels])
    table = Table(title=f"emovox predict — {pred.card.get('name', 'model')}")
    for col in ("file", "emotion", "probability", "duration", "segments"):
        table.add_column(col, overflow="fold")
    failed: list[Prediction] = []
    used: set[str] = set()
    progress = Progress(
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err,
        transient=True,
        disable=len(files) < 2 or not err.is_terminal,
    )
    with progress:
        task = progress.add_task("predicting", total=len(files))
        for path, p in zip(files, pred.iter_predict(files), strict=True):
            p.path = path
            progress.advance(task)
            if not p.ok:
                failed.append(p)
            elif p.segments is not None and timeline_dir is not None:
                tl = Timeline(pred.labels, pred.threshold, p.duration or 0.0, p.segments,
                              source=path)  # fmt: skip
                tl.vad = pred.vad.name
                tl.write(timeline_dir, _timeline_stem(path, used) + ".timeline")
            if as_json:
                print(json.dumps(p.to_dict()), flush=True)
            elif writer is not None:
                probs = [p.probabilities.get(lab, "") for lab in labels]
                writer.writerow(
                    [path, p.label or "", "" if not p.ok else int(p.uncertain),
                     "" if p.duration is None else round(p.duration, 3),
                     "" if p.segments is None else len(p.segments), p.error or "", *probs]
                )  # fmt: skip
            elif p.ok:
                top = p.probabilities[p.label]
                table.add_row(
                    escape(path),
                    f"{p.label}" + (" [yellow](uncertain)[/]" if p.uncertain else ""),
                    f"{top:.2f}",
                    f"{p.duration:.1f} s",
                    "" if p.segments is None else str(len(p.segments)),
                )
            else:
                table.add_row(escape(path), f"[red]error[/]: {escape(p.error or '')}", "", "", "")
    if not (as_json or as_csv):
        out.print(table)
        out.print(
            f"uncertain: top probability below {pred.threshold:.2f}; labels: {', '.join(labels)}"
        )
    if failed:
        err.print(f"[yellow]{len(failed)} of {len(files)} file(s) skipped:[/]")
        for p in failed[:20]:
            err.print(f"  {escape(p.path or '?')}: {escape(p.error or '')}", soft_wrap=True)
        if len(failed) > 20:
            err.print(f"  ... and {len(failed) - 20} more")
        if len(failed) == len(files):
            raise typer.Exit(1)


@app.command()
def listen(
    file: Annotated[
        Path | None,
        typer.Option("--file", help="Play this file through the live pipeline (no microphone)."),
    ] = None,
    model: ModelPathOpt = None,
    backend: BackendOpt = "auto",
    vad: VadOpt = "auto",
    speed: Annotated[
        float, typer.Option(help="With --file: 1 = real time, 2 = twice as fast, 0 = no waiting.")
    ] = 1.0,
    device: Annotated[
        str | None, typer.Option(help="Microphone (sounddevice name or index).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per segment.")] = False,
) -> None:
    """Live emotion from the microphone (or --file played in real time): a line per segment."""
    from rich.markup import escape

    from emovox.audio import AudioError
    from emovox.inference.longform import (
        analyze_chunks,
        iter_blocks,
        microphone_available,
        microphone_chunks,
        paced,
    )

    if file is None and not microphone_available():
        err.print(
            "[red]error:[/] no microphone support (install sounddevice and PortAudio), "
            "or pass --file PATH to play a recording through the same pipeline"
        )
        raise typer.Exit(2)
    pred = _predictor(model, backend, vad)
    if file is not None:
        chunks = paced(iter_blocks(file, block_seconds=0.1), speed)
        err.print(f"playing {escape(str(file))} (speed {speed:g}; Ctrl-C stops)")
    else:
        dev = int(device) if device and device.isdigit() else device
        chunks = microphone_chunks(dev)
        err.print("listening to the microphone (Ctrl-C stops)")

    def show(seg: dict) -> None:
        if as_json:
            print(json.dumps(seg), flush=True)
            return
        top = seg["probabilities"][seg["label"]]
        flag = "  (uncertain)" if seg["uncertain"] else ""
        out.print(
            f"{seg['start']:8.2f} – {seg['end']:8.2f} s  {seg['label']:<10} {top:.2f}{flag}",
            highlight=False,
        )

    try:
        tl = analyze_chunks(
            chunks, pred.recognizer, vad=pred.vad, config=pred.segmenter,
            batch_size=1, on_segment=show, source=str(file) if file else None,
        )  # fmt: skip
    except AudioError as exc:
        err.print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc
    except KeyboardInterrupt as exc:
        raise typer.Exit(130) from exc
    ov = tl.overall()
    err.print(
        f"{len(tl.segments)} speech segment(s) in {tl.duration:.1f} s"
        + (f"; overall {ov['label']}" if ov["label"] else "")
    )


@app.command()
def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("runs/demo"),
    model: ModelPathOpt = None,
    backend: BackendOpt = "auto",
    vad: VadOpt = "auto",
) -> None:
    """Run the model on six bundled CREMA-D clips and on them joined as one long recording."""
    from rich.markup import escape

    from emovox.inference.demo import run_demo

    pred = _predictor(model, backend, vad)
    res = run_demo(pred, out_dir, log=lambda s: None)
    t = Table(title=f"emovox demo — {pred.card.get('name', 'model')}: six CREMA-D clips")
    for col in ("clip", "true", "predicted", "probability"):
        t.add_column(col)
    for r in res["clips"]:
        if r.get("error"):
            t.add_row(r["file"], r["true"], f"[red]error[/]: {escape(r['error'])}", "")
            continue
        mark = "[green]✓[/]" if r["correct"] else "[red]✗[/]"
        unc = " [yellow](uncertain)[/]" if r["uncertain"] else ""
        top = r["probabilities"][r["label"]]
        t.add_row(r["file"], r["true"], f"{mark} {r['label']}{unc}", f"{top:.2f}")
    out.print(t)
    tl = res["timeline"]
    out.print(
        f"clips right: {res['clips_correct']} of {len(res['clips'])} (speakers held out of the "
        "model's training; six clips are a demo, not a score: see docs/model-card.md).  "
        "Joined recording "
        f"({tl['duration']:.1f} s): {len(tl['segments'])} speech segments (VAD {tl['vad']}), "
        f"{res['segments_correct']} labelled right:"
    )
    for s in tl["segments"]:
        out.print(
            f"  {s['start']:6.2f} – {s['end']:6.2f} s  true {s['true'] or '-':<9} "
            f"predicted {s['label']:<9} {s['probabilities'][s['label']]:.2f}"
            + ("  (uncertain)" if s["uncertain"] else ""),
            highlight=False,
        )
    out.print(f"report: {escape(res['report'])} (summary.md, timeline.png)", soft_wrap=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8000,
    model: ModelPathOpt = None,
    backend: BackendOpt = "auto",
    vad: VadOpt = "auto",
    max_mb: Annotated[float, typer.Option(help="Largest upload accepted (MB).")] = 20.0,
    max_seconds: Annotated[float, typer.Option(help="Longest recording accepted (s).")] = 600.0,
    workers_threads: Annotated[
        int | None,
        typer.Option(help="Inference threads (default: the CPU count, at most 4)."),
    ] = None,
    max_pending: Annotated[
        int, typer.Option(help="Requests in the server at once before it answers 503.")
    ] = 256,
    log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
) -> None:
    """Serve the model over HTTP: a REST API (/v1/predict, /v1/health, /v1/model, /docs) and a
    page at / to upload or record audio."""
    from rich.markup import escape

    try:
        import uvicorn

        from emovox.service.app import create_app
    except ImportError as exc:
        err.print(
            f"[red]error:[/] the web service needs its extra: pip install 'emovox[serve]' ({exc})"
        )
        raise typer.Exit(2) from exc
    if max_mb <= 0 or max_seconds <= 0 or (workers_threads is not None and workers_threads < 1):
        err.print("[red]error:[/] --max-mb, --max-seconds and --workers-threads must be positive")
        raise typer.Exit(2)
    try:
        web = create_app(
            model, backend=backend, max_bytes=int(max_mb * 1e6), max_seconds=max_seconds,
            workers=workers_threads, max_pending=max_pending, vad=vad,
        )  # fmt: skip
    except (FileNotFoundError, ImportError, ValueError, OSError, RuntimeError) as exc:
        err.print(f"[red]error:[/] cannot load the model: {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from exc
    svc = web.state.service
    err.print(
        f"serving {escape(str(svc.card.get('name', 'model')))} ({svc.workers} inference "
        f"thread(s)) on http://{host}:{port}/ — API docs at /docs; Ctrl-C stops"
    )
    uvicorn.run(web, host=host, port=port, log_level=log_level)


def main() -> None:  # pragma: no cover
    app()


if __name__ == "__main__":  # pragma: no cover
    main()
