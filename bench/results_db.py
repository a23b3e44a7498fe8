"""docs/results.json (one object per experiment) and docs/results.md rendered from it.

Every benchmark script upserts its own rows here and re-renders the Markdown, so no number in
docs/results.md is typed by hand.

Every row says what it was tested on and whether it was adapted (:func:`normalize` fills both in
for rows that do not): ``test_corpora`` (the corpora of a within-corpus row, the test corpora of
a cross-corpus row, the one held-out corpus of a leave-one-corpus-out row; ``test`` is the older
field kept for the scripts that read it) and ``adapted`` (false, or the adaptation kind:
``speaker`` / ``corpus``). ``python bench/results_db.py migrate`` rewrote the older rows once.
"""

from __future__ import annotations

import json
import platform
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from emovox.io import atomic_write_json, atomic_write_text  # noqa: E402

RESULTS_JSON = ROOT / "docs" / "results.json"
RESULTS_MD = ROOT / "docs" / "results.md"
KEY = ("model", "corpora", "labels", "protocol", "test", "test_corpora", "adapted", "config")
#: the adaptation kind a model name gives away (rows older than the ``adapt`` field)
ADAPT_NAMES = {"+speaker-norm": "speaker", "+corpus-norm": "corpus"}


def hardware() -> str:
    import os

    return (
        f"{platform.machine()} {os.cpu_count()} cores, {platform.python_implementation()} "
        f"{platform.python_version()}"
    )


def load() -> list[dict]:
    if RESULTS_JSON.exists():
        return json.loads(RESULTS_JSON.read_text())
    return []


def _key(row: dict) -> tuple:
    return tuple(json.dumps(row.get(k), sort_keys=True) for k in KEY)


def adapted_of(row: dict) -> str | bool:
    """A row's adaptation: its ``adapted`` field, else its ``adapt`` field, else what its model
    name says (``...+speaker-norm``); False when none."""
    if "adapted" in row:
        return row["adapted"]
    if row.get("adapt") not in (None, "none"):
        return row["adapt"]
    return next((kind for tag, kind in ADAPT_NAMES.items() if tag in row["model"]), False)


def normalize(row: dict) -> dict:
    """``row`` with ``adapted`` and ``test_corpora`` filled in where missing (see the module
    docs); the fields it has are kept."""
    test = row.get("test_corpora") or row.get("test") or row["corpora"]
    return row | {"test_corpora": list(test), "adapted": adapted_of(row)}


def migrate() -> list[dict]:
    """Give every stored row its ``adapted`` and ``test_corpora`` fields (once; running it again
    changes nothing) and re-render docs/results.md."""
    rows = [normalize(r) for r in load()]
    atomic_write_json(RESULTS_JSON, rows)
    atomic_write_text(RESULTS_MD, render(rows))
    return rows


def loco_rows(metrics: dict, base: dict) -> list[dict]:
    """One row per held-out corpus of a leave-one-corpus-out run (``metrics`` of
    ``emovox evaluate --protocol loco``): ``base`` (section, model, labels, config, command ...)
    plus the corpus's scores, its scored classes and chance."""
    rows = []
    for h in metrics["loco"]["held_out"]:
        rows.append(
            base
            | {
                "corpora": metrics["corpora"],
                "protocol": "loco",
                "leaky": False,
                "test": None,
                "test_corpora": [h["corpus"]],
                "adapted": adapted_of({"model": base["model"], "adapt": metrics.get("adapt")}),
                "wa": h["wa"],
                "ua": h["ua"],
                "macro_f1": h["macro_f1"],
                "per_class": h["per_class"],
                "chance": h["chance"],
                "scored_labels": h["labels"],
                "n": h["n"],
                "unscored": h["unscored"],
            }
        )
    return rows


def upsert(rows: list[dict]) -> list[dict]:
    """Replace rows with the same (model, corpora, labels, protocol, test, test_corpora,
    adapted, config) key; keep the rest (so one model under two configs, e.g. 12 and 30
    epochs, keeps two rows). Every row goes through :func:`normalize` first."""
    table = {_key(r): r for r in map(normalize, load())}
    for r in map(normalize, rows):
        table[_key(r)] = r
    out = sorted(
        table.values(),
        key=lambda r: (r.get("section", ""), ",".join(r["corpora"]), r["model"], r["leaky"]),
    )
    atomic_write_json(RESULTS_JSON, out)
    atomic_write_text(RESULTS_MD, render(out))
    return out


def _pct(x: float | None) -> str:
    return "–" if x is None else f"{100 * x:.1f}"


def proto(r: dict) -> str:
    """A result row's protocol text for the tables: test corpus for cross-corpus and
    leave-one-corpus-out rows (with chance), adaptation, partial folds, LEAKY."""
    p = r["protocol"]
    scored = r.get("test_corpora")
    narrower = scored and sorted(scored) != sorted(r["corpora"])  # scored on some corpora only
    test = r.get("test") or (scored if p == "loco" or narrower else None)
    if test:
        p += " → " + ", ".join(test)
    if r.get("chance"):
        p += f" (chance {_pct(r['chance'])})"
    adapted = adapted_of(r)
    if adapted:
        p += f" (adapted per {adapted})"
    if r.get("folds_total") and r.get("folds") != r.get("folds_total"):
        p += f" ({r['folds']} of {r['folds_total']} folds)"
    return f"{p} **LEAKY**" if r["leaky"] else p


PAPER = {  # the paper's reported accuracies (random split after augmentation)
    ("resnet34", ("ravdess", "tess")): 0.831,
    ("cnn", ("crema_d", "ravdess", "savee", "tess")): 0.934,
}


def _summary(rows: list[dict]) -> list[str]:
    """The paper's Table 3 analogue: its claims beside our honest and leaky figures."""
    out = [
        "## The paper's deep models: reported vs. measured (Table 3 analogue)",
        "",
        "| model | corpora | paper (LEAKY) % | ours, speaker-independent UA % | ours, LEAKY UA % |",
        "|---|---|---|---|---|",
    ]
    found = False
    for (model, corp), paper in PAPER.items():
        mine = [r for r in rows if r["model"] == model and tuple(r["corpora"]) == corp]
        honest = [r for r in mine if not r["leaky"]]
        leaky = [r for r in mine if r["leaky"]]
        if not mine:
            continue
        found = True

        def fmt(rs: list[dict]) -> str:
            def where(r: dict) -> str:
                cfg = r.get("config") or ""
                return f", `{cfg}`" if cfg.startswith("configs/") else ""

            return (
                "; ".join(
                    f"{_pct(r['ua'])} ({proto(r).replace(' **LEAKY**', '')}{where(r)})" for r in rs
                )
                or "–"
            )

        out.append(
            f"| {model} | {', '.join(corp)} | {100 * paper:.1f} | {fmt(honest)} | {fmt(leaky)} |"
        )
    return out + [""] if found else []


def render(rows: list[dict]) -> str:
    lines = [
        "# Results",
        "",
        "Generated by the scripts in `bench/` from `docs/results.json`; do not edit by hand.",
        "Every score says its protocol. **Speaker-independent** rows test on speakers never",
        "seen in training. **LEAKY** rows use the paper's random split over clips: the same",
        "speakers and sentences (and, in RAVDESS and CREMA-D, a few identical recordings) sit",
        "on both sides, so they overstate what a model does on a new voice.",
        "",
    ]
    lines += _summary(rows)
    sections: dict[str, list[dict]] = {}
    for r in rows:
        sections.setdefault(r.get("section", "Other"), []).append(r)
    for title, rs in sections.items():
        lines += [
            f"## {title}",
            "",
            "| model | corpora | labels | protocol | WA % | UA % | macro-F1 % | wall s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for r in rs:
            ptext = proto(r)
            ep = f" ({r['epochs']} epochs)" if r.get("epochs") else ""
            lines.append(
                f"| {r['model']}{ep} | {', '.join(r['corpora'])} | {r['labels']} | {ptext} | "
                f"{_pct(r.get('wa'))} | {_pct(r['ua'])} | {_pct(r.get('macro_f1'))} | "
                f"{r.get('wall_s', 0):.0f} |"
            )
        lines.append("")
        per_class = [r for r in rs if r.get("per_class")]
        groups: dict[tuple, list[dict]] = {}
        for r in per_class:
            groups.setdefault((tuple(r["corpora"]), r["labels"]), []).append(r)
        for (corp, labels), grp in groups.items():
            emos = list(grp[0]["per_class"])
            lines += [
                f"Per-emotion accuracy (recall, %), {', '.join(corp)}, labels {labels} "
                "(the paper's Table 2 layout):",
                "",
                "| model | protocol | " + " | ".join(emos) + " |",
                "|---|---|" + "---|" * len(emos),
            ]
            for r in grp:
                ptext = "LEAKY random" if r["leaky"] else r["protocol"]
                lines.append(
                    f"| {r['model'].upper()} | {ptext} | "
                    + " | ".join(_pct(r["per_class"].get(e)) for e in emos)
                    + " |"
                )
            lines.append("")
        hw = {r.get("hardware") for r in rs if r.get("hardware")}
        if hw:
            lines += [f"Hardware: {'; '.join(sorted(hw))}.", ""]
    return "\n".join(lines)


def write_section(path: Path, marker: str, text: str) -> None:
    """Replace the text between ``<!-- marker:begin -->`` and ``<!-- marker:end -->`` in a doc
    (the rest of the doc is prose kept by hand; the numbers come from here)."""
    begin, end = f"<!-- {marker}:begin -->", f"<!-- {marker}:end -->"
    doc = path.read_text()
    if begin not in doc or end not in doc:
        raise ValueError(f"{path} has no {begin} ... {end} block")
    head, rest = doc.split(begin, 1)
    _, tail = rest.split(end, 1)
    atomic_write_text(path, f"{head}{begin}\n\n{text.strip()}\n\n{end}{tail}")


def main(argv: list[str]) -> None:
    if argv != ["migrate"]:
        raise SystemExit("usage: python bench/results_db.py migrate")
    print(f"{len(migrate())} rows in {RESULTS_JSON}")


def find(rows: list[dict], **want) -> dict | None:
    """The first row whose fields equal ``want`` (lists compared as sorted)."""
    for r in rows:
        if all(
            (sorted(r.get(k) or []) == sorted(v)) if isinstance(v, list) else r.get(k) == v
            for k, v in want.items()
        ):
            return r
    return None


if __name__ == "__main__":
    main(sys.argv[1:])
