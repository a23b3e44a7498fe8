"""docs/model-card.md from a bundle's model.json (default: the packaged model).

    python bench/model_card.py [MODEL_DIR]

`emovox build-model` writes the same text as ``card.md`` inside the bundle folder.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import results_db

from emovox.inference.bundle import CONFIG_FILE, bundle_path
from emovox.inference.card import render_card
from emovox.io import atomic_write_text


def main(argv: list[str]) -> int:
    folder = bundle_path(argv[0] if argv else None)
    cfg = json.loads((folder / CONFIG_FILE).read_text())
    atomic_write_text(Path(results_db.ROOT / "docs" / "model-card.md"), render_card(cfg))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
