"""``emovox build-model``, ``build-fast-model``, ``convert-encoder`` and ``export``: making the
ready-to-use models."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from emovox.cli.common import CorpusOpt, LabelsOpt, RootOpt, err, fail, split_list
from emovox.cli.common import out as stdout


def build_model(
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
    c: Annotated[float, typer.Option("--c", help="Inverse L2 strength of the head.")] = 0.001,
    k: Annotated[int, typer.Option(help="Speaker folds for the model card's scores.")] = 5,
    view: Annotated[
        list[str] | None,
        typer.Option(
            "--view",
            help="Training view added to every training clip, e.g. 'condition:1' (a random "
            "recording condition), 'phone', 'codec:opus:12', 'noise:babble:10'; repeatable.",
        ),
    ] = None,
    loco_run: Annotated[
        Path | None,
        typer.Option(
            help="A leave-one-corpus-out run folder of the same recipe (emovox evaluate "
            "--protocol loco) whose per-corpus scores the model card shows."
        ),
    ] = None,
    loco_temperature: Annotated[
        bool,
        typer.Option(
            help="With 3 or more corpora, let the softmax temperature rise with the domain "
            "score, fitted also on each corpus scored by a head trained without it (one more "
            "head per corpus); off: one temperature from the validation speakers."
        ),
    ] = True,
    seed: int = 0,
    root: RootOpt = None,
) -> None:
    """Train a ready-to-use model (frozen Whisper encoder + calibrated head) on the corpora."""
    from emovox.evaluation.experiment import NoCorporaError
    from emovox.inference.build import build_default_model
    from emovox.inference.card import render_card
    from emovox.io import atomic_write_text

    try:
        cfg = build_default_model(
            out,
            roots=[str(r) for r in root] if root else None,
            corpora=split_list(corpus),
            labels=labels,
            encoder=encoder,
            layers=[int(x) for x in layers.split(",")] if layers else None,
            C=c,
            k=k,
            seed=seed,
            views=view or [],
            loco_run=loco_run,
            loco_temperature=loco_temperature,
            log=lambda m: err.print(m, soft_wrap=True),
        )
    except (NoCorporaError, FileNotFoundError, ValueError) as exc:
        fail(escape(str(exc)))
    atomic_write_text(out / "card.md", render_card(cfg))
    ev = cfg["card"]["evaluation"]
    stdout.print(
        f"wrote {out}: UA {ev['ua']:.3f} (speaker {k}-fold), per corpus: "
        + ", ".join(f"{c} {v['ua']:.3f}" for c, v in ev["per_corpus"].items())
    )


def net_widths(text: str | None) -> dict[str, tuple[int, ...]]:
    """``--widths 16,32,64`` → ``{"widths": (16, 32, 64)}`` (nothing when not given)."""
    if not text:
        return {}
    try:
        widths = tuple(int(w) for w in split_list([text]))
    except ValueError:
        fail(f"--widths takes whole numbers separated by commas, got {escape(text)!r}")
    if not widths or min(widths) < 1:
        fail(f"--widths must be positive, got {escape(text)!r}")
    return {"widths": widths}


def build_fast_model(
    out: Annotated[Path, typer.Option("--out", help="Fast-model folder to write.")] = Path(
        "models/fast"
    ),
    corpus: CorpusOpt = None,
    labels: LabelsOpt = "paper7",
    encoder: Annotated[
        str, typer.Option(help="The encoder the teacher was built on (default tiny.en).")
    ] = "tiny.en",
    c: Annotated[float, typer.Option("--c", help="The teacher recipe's head C (folds).")] = 0.001,
    k: Annotated[int, typer.Option(help="Speaker folds for the model card's scores.")] = 5,
    view: Annotated[
        list[str] | None,
        typer.Option(
            "--view", help="Training views distilled besides the clips (default condition:1)."
        ),
    ] = None,
    epochs: Annotated[int, typer.Option(help="Distillation epochs per student.")] = 20,
    widths: Annotated[
        str | None,
        typer.Option(help="Conv widths, one stride-2 layer each (e.g. 16,32,64,128,256)."),
    ] = None,
    loco: Annotated[
        bool, typer.Option(help="Also score leave-one-corpus-out (one student per corpus).")
    ] = False,
    teacher: Annotated[
        Path | None, typer.Option(help="Default-model folder to distil (default: packaged).")
    ] = None,
    run_dir: Annotated[
        Path, typer.Option(help="Folder for fold results and checkpoints (resumable).")
    ] = Path("runs/fast-model"),
    seed: int = 0,
    threads: Annotated[int, typer.Option(help="Torch threads for training.")] = 2,
    root: RootOpt = None,
) -> None:
    """Distil the fast model (a small CNN on log-mel) from the default model, score it speaker
    k-fold beside its teacher (and leave-one-corpus-out with --loco), and write it."""
    from emovox.deep.distill import DistillConfig
    from emovox.evaluation.experiment import NoCorporaError
    from emovox.inference.build_fast import DEFAULT_VIEWS
    from emovox.inference.build_fast import build_fast_model as build

    try:
        cfg = build(
            out,
            roots=[str(r) for r in root] if root else None,
            corpora=split_list(corpus),
            labels=labels,
            encoder=encoder,
            C=c,
            views=DEFAULT_VIEWS if view is None else view,
            cfg=DistillConfig(epochs=epochs, seed=seed, threads=threads, **net_widths(widths)),
            k=k,
            loco=loco,
            teacher=teacher,
            run_dir=run_dir,
            log=lambda m: err.print(m, soft_wrap=True),
        )
    except (NoCorporaError, FileNotFoundError, ValueError) as exc:
        fail(escape(str(exc)))
    kf = cfg["card"]["evaluation"]["speaker-kfold"]
    stdout.print(
        f"wrote {out}: UA {kf['student']['ua']:.3f} (teacher {kf['teacher']['ua']:.3f}), "
        f"speaker {k}-fold"
    )


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
        fail(escape(str(exc)))
    stdout.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")


def export(
    onnx: Annotated[Path, typer.Option("--onnx", help="ONNX file to write.")],
    model: Annotated[
        Path | None, typer.Option(help="Model folder (default: the bundled model).")
    ] = None,
) -> None:
    """Export a model's encoder + pooling to ONNX (the head stays in model.json/safetensors)."""
    from emovox.inference.export import export_onnx

    try:
        path = export_onnx(model, onnx)
    except (FileNotFoundError, ValueError, ImportError) as exc:
        fail(escape(str(exc)))
    stdout.print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB)")
