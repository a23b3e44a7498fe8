"""The module map in docs/architecture.md, rendered from each module's own docstring.

Usage: python bench/render_architecture.py [--check]

Rewrites the part of ``docs/architecture.md`` between ``<!-- modules:start -->`` and
``<!-- modules:end -->``: one line per module under ``src/emovox``, folder by folder in pipeline
order, with the first sentence of the module's docstring. ``--check`` exits 1 when the file is
out of date (the test suite runs it, so the map cannot drift from the code).
"""

from __future__ import annotations

import argparse
import ast
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PKG = ROOT / "src" / "emovox"
DOC = ROOT / "docs" / "architecture.md"
START, END = "<!-- modules:start -->", "<!-- modules:end -->"
#: folders in the order a clip travels through them; top-level modules come last
ORDER = ("audio", "data", "encoders", "features", "models", "deep", "evaluation", "inference",
         "text", "service", "scale", "cli")  # fmt: skip


def first_sentence(path: Path) -> str:
    """The first sentence of a module's docstring, on one line."""
    doc = ast.get_docstring(ast.parse(path.read_text())) or ""
    para = " ".join(doc.strip().split("\n\n")[0].split())
    m = re.search(r"(?<!e\.g)(?<!i\.e)(?<!etc)(?<! al)\.(\s|$)", para)
    return para[: m.start() + 1] if m else para


def modules() -> list[tuple[str, str]]:
    """``(path relative to src/emovox, first sentence)`` for every module, in pipeline order."""

    def rank(p: Path) -> tuple:
        rel = p.relative_to(PKG)
        top = rel.parts[0] if len(rel.parts) > 1 else ""
        i = ORDER.index(top) if top in ORDER else len(ORDER)
        return (i, rel.parts[:-1], rel.name != "__init__.py", rel.name)

    files = sorted(PKG.rglob("*.py"), key=rank)
    return [(str(p.relative_to(PKG)), first_sentence(p)) for p in files]


def render() -> str:
    lines, folder = [], None
    for rel, text in modules():
        parent = str(Path(rel).parent)
        if parent != folder:
            folder = parent
            lines.append(f"\n**`{'emovox' if parent == '.' else parent}/`**\n")
        lines.append(f"- `{rel}`: {text}")
    return "\n".join(lines).strip() + "\n"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if the doc is out of date")
    args = ap.parse_args()
    text = DOC.read_text()
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    new = f"{head}{START}\n{render()}{END}{tail}"
    if args.check:
        if new != text:
            print("docs/architecture.md is out of date: run python bench/render_architecture.py")
            return 1
        return 0
    DOC.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
