"""What the ``emovox`` commands share: the two consoles, the error exit, option types, list and
``NAME=VALUE`` parsing, and building / loading an experiment's data."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated, NoReturn

import typer
from rich.console import Console
from rich.markup import escape

if TYPE_CHECKING:
    from emovox.evaluation.dataset import Dataset
    from emovox.evaluation.experiment_config import ExperimentConfig
    from emovox.inference.recognizer import Recognizer

err = Console(stderr=True)
"""Standard error: progress, notes, warnings and errors."""
out = Console()
"""Standard output: the results."""


#: Exit codes: every input gave a result / every input failed / a usage error (a bad option,
#: a model that cannot load) / some inputs failed, the others gave results.
EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_PARTIAL = 0, 1, 2, 3
EXIT_CODES_HELP = (
    "Exit codes: 0 every input gave a result; 3 some inputs failed (the results of the others "
    "are printed); 1 every input failed; 2 a usage error (a bad option, a model that cannot "
    "load)."
)
#: The end of ``emovox --help``: the exit codes of every command.
APP_EPILOG = (
    EXIT_CODES_HELP + " corpora scan exits 0 when it finds corpora, even with problems listed, "
    "and 1 when it finds none; evaluate, table2, run and train exit 0 when the run finishes, "
    "even with clips skipped (listed, and in the run's skipped.csv)."
)


def outcome(succeeded: int, failed: int) -> int:
    """The exit code for inputs that SUCCEEDED and FAILED: 0 none failed, 1 none succeeded,
    3 some of each."""
    if not failed:
        return EXIT_OK
    return EXIT_PARTIAL if succeeded else EXIT_FAILED


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    """Print ``error: MESSAGE`` (Rich markup; escape untrusted text) and exit with ``code``."""
    err.print(f"[red]error:[/] {message}", soft_wrap=True)
    raise typer.Exit(code)


def split_list(values: list[str] | None) -> list[str]:
    """Repeated and comma-separated option values as one list: ``["a,b", "c"]`` → a, b, c."""
    return [v.strip() for item in values or [] for v in item.split(",") if v.strip()]


def parse_params(items: list[str]) -> dict[str, object]:
    """``["C=0.001", "solver=saga"]`` → ``{"C": 0.001, "solver": "saga"}``; a value is read as
    a number when it is one. Raises ValueError for an item without ``=``."""
    params: dict[str, object] = {}
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
        params[name.strip()] = v
    return params


def build_config(**kw: object) -> ExperimentConfig:
    """An ExperimentConfig from the options given (None: the default); ``root`` (a list of
    folders or None) becomes ``roots``."""
    from emovox.evaluation.experiment_config import ExperimentConfig

    roots = kw.pop("root") or []
    cfg = ExperimentConfig(**{k: v for k, v in kw.items() if v is not None})
    if roots:
        cfg.roots = [str(r) for r in roots]
    return cfg


def load_data(cfg: ExperimentConfig, quiet: bool) -> Dataset:
    """The experiment's clips and features; no corpora (or a bad setting) is an error exit, and
    skipped clips are listed on standard error."""
    from emovox.evaluation.dataset import NoCorporaError, load_dataset

    try:
        data = load_dataset(cfg, progress=not quiet)
    except (NoCorporaError, ValueError) as exc:
        fail(str(exc))
    if data.skipped:
        err.print(f"[yellow]{len(data.skipped)} clip(s) skipped[/] (listed in skipped.csv):")
        for p, r in data.skipped[:10]:
            err.print(f"  {p}: {r}")
    return data


def load_predictor(
    model: Path | None, backend: str, vad: str, long_seconds: float = 20.0
) -> Recognizer:
    """``emovox.load`` with its failures as a clear error and exit code 2."""
    from emovox.inference import loading

    try:
        return loading.load(model, backend=backend, long_seconds=long_seconds, vad=vad)
    except (FileNotFoundError, ImportError, ValueError, OSError) as exc:
        fail(f"cannot load the model: {escape(str(exc))}")


# Option types shared by several commands.
CorpusOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--corpus", "-c", help="Corpora to use (repeat or comma-separate); default: all found."
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
ModelPathOpt = Annotated[
    Path | None,
    typer.Option("--model", help="Model folder (default: the packaged default model)."),
]
BackendOpt = Annotated[
    str,
    typer.Option(
        help="auto (ONNX when onnxruntime is installed), onnx, onnx-int8 (int8 weights), torch "
        "or numpy."
    ),
]
VadOpt = Annotated[
    str, typer.Option(help="Speech detection for long recordings: auto, silero or energy.")
]
JsonOpt = Annotated[bool, typer.Option("--json", help="End with the metrics as JSON.")]
