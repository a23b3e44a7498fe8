"""``emovox corpora scan``: which corpora are where, and what is wrong with them."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from emovox.cli.common import err, fail, out


def group_problems(problems: list[dict[str, str]]) -> dict[str, list[str]]:
    """Problem paths grouped by their reason, in first-seen order."""
    groups: dict[str, list[str]] = {}
    for p in problems:
        groups.setdefault(p["reason"], []).append(p["path"])
    return groups


def scan(
    roots: Annotated[list[Path], typer.Argument(help="Folders to search for corpora.")],
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    manifest_csv: Annotated[
        Path | None, typer.Option("--csv", help="Write the manifest here.")
    ] = None,
    show: Annotated[
        int,
        typer.Option(help="Problems shown per corpus and reason (the rest counted); 0: all."),
    ] = 5,
) -> None:
    """Find corpora under ROOTS: clips per corpus x emotion, speakers, hours, problems."""
    from emovox.data import corpora
    from emovox.data.labels import EMOTIONS

    for r in roots:
        if not r.exists():
            fail(f"{r} does not exist")
    manifest = corpora.scan(roots)
    summary = manifest.summary()
    if manifest_csv:
        manifest.to_csv(manifest_csv)
    if as_json:
        print(json.dumps(summary))
        raise typer.Exit(0 if summary else 1)  # problems listed are not a failure; no corpus is
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
        for reason, paths in group_problems(s["problems"]).items():
            for path in paths if show <= 0 else paths[:show]:
                out.print(f"[yellow]problem[/] {name}: {path}: {reason}", soft_wrap=True)
            if 0 < show < len(paths):
                out.print(
                    f"[yellow]problem[/] {name}: ... and {len(paths) - show} more: {reason} "
                    "(--show 0 or --json lists them all)",
                    soft_wrap=True,
                )
        notes = [{"path": n["path"], "reason": n["note"]} for n in s.get("notes", [])]
        for note, paths in group_problems(notes).items():
            for path in paths if show <= 0 else paths[:show]:
                out.print(f"[cyan]note[/] {name}: {path}: {note}", soft_wrap=True)
            if 0 < show < len(paths):
                out.print(f"[cyan]note[/] {name}: ... and {len(paths) - show} more: {note}")
