"""``emovox serve`` (the HTTP service and its web page) and ``emovox demo`` (the model on the
bundled clips)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from emovox.cli.common import BackendOpt, ModelPathOpt, VadOpt, err, fail, load_predictor, out


def demo(
    out_dir: Annotated[Path, typer.Option("--out", help="Report folder.")] = Path("runs/demo"),
    model: ModelPathOpt = None,
    backend: BackendOpt = "auto",
    vad: VadOpt = "auto",
) -> None:
    """Run the model on six bundled CREMA-D clips and on them joined as one long recording."""
    from emovox.inference.demo import run_demo

    pred = load_predictor(model, backend, vad)
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
    try:
        import uvicorn

        from emovox.service.app import create_app
    except ImportError as exc:
        fail(f"the web service needs its extra: pip install 'emovox[serve]' ({exc})")
    if max_mb <= 0 or max_seconds <= 0 or (workers_threads is not None and workers_threads < 1):
        fail("--max-mb, --max-seconds and --workers-threads must be positive")
    try:
        web = create_app(
            model, backend=backend, max_bytes=int(max_mb * 1e6), max_seconds=max_seconds,
            workers=workers_threads, max_pending=max_pending, vad=vad,
        )  # fmt: skip
    except (FileNotFoundError, ImportError, ValueError, OSError, RuntimeError) as exc:
        fail(f"cannot load the model: {escape(str(exc))}")
    svc = web.state.service
    err.print(
        f"serving {escape(str(svc.card.get('name', 'model')))} ({svc.workers} inference "
        f"thread(s)) on http://{host}:{port}/ — API docs at /docs; Ctrl-C stops"
    )
    uvicorn.run(web, host=host, port=port, log_level=log_level)
