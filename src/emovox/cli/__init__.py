"""The ``emovox`` command line: a thin layer over the library. Each command group lives in its
own module (:mod:`~emovox.cli.corpora`, :mod:`~emovox.cli.evaluate`, :mod:`~emovox.cli.train`,
:mod:`~emovox.cli.model`, :mod:`~emovox.cli.predict`, :mod:`~emovox.cli.serve`); this module
builds the ``app`` and registers them, in the order ``emovox --help`` lists them."""

from __future__ import annotations

import typer

from emovox.cli import corpora, evaluate, model, predict, serve, train
from emovox.cli.common import APP_EPILOG, EXIT_CODES_HELP

app = typer.Typer(
    help="emovox: speech emotion recognition with honest evaluation.",
    no_args_is_help=True,
    add_completion=False,
    epilog=APP_EPILOG,
)
corpora_app = typer.Typer(help="Find and inspect emotional-speech corpora.", no_args_is_help=True)
app.add_typer(corpora_app, name="corpora")
corpora_app.command("scan")(corpora.scan)

app.command("evaluate")(evaluate.evaluate)
app.command("fuse")(evaluate.fuse)
app.command("table2")(evaluate.table2)
app.command("run")(evaluate.run)
app.command("train")(train.train)
app.command("build-model")(model.build_model)
app.command("build-fast-model")(model.build_fast_model)
app.command("convert-encoder")(model.convert_encoder)
app.command("export")(model.export)
app.command("predict", epilog=predict.PREDICT_EPILOG)(predict.predict)
app.command("listen", epilog=EXIT_CODES_HELP)(predict.listen)
app.command("demo")(serve.demo)
app.command("serve")(serve.serve)


def main() -> None:  # pragma: no cover
    """Run the command line (``python -m emovox.cli``)."""
    app()
