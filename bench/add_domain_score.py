"""Add the domain score (``out_of_domain``, :mod:`emovox.inference.domain`) to an existing
bundle without touching anything else: its encoder and head tensors, temperature and threshold
stay byte-identical, so its probabilities do not change.

The score is fitted, as ``emovox build-model`` does, on the cached embeddings of the bundle's
own training clips (the corpora of its card, minus its held-out speakers, drawn again with
:func:`emovox.inference.build.validation_mask` and checked against the card), and its threshold
is the 95th percentile on the held-out speakers.

    python bench/add_domain_score.py [MODEL_DIR] [--force]   # default: the packaged model
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from emovox.inference.build import fit_domain_score, training_data, validation_mask
from emovox.inference.bundle import CONFIG_FILE, MODEL_FILE, bundle_path, read_bundle
from emovox.inference.card import domain_card, render_card
from emovox.io import atomic_write_json, atomic_write_text


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=None, help="bundle folder (default: packaged)")
    ap.add_argument("--labels", default="paper7", help="label set the bundle was built with")
    ap.add_argument("--force", action="store_true", help="replace an existing domain score")
    args = ap.parse_args()
    folder = bundle_path(args.model)
    cfg, _, head = read_bundle(folder)
    raw = json.loads((folder / CONFIG_FILE).read_text())
    with safe_open(str(folder / MODEL_FILE), framework="numpy") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if any(k.startswith("domain.") for k in tensors) and not args.force:
        raise SystemExit(f"{folder}: already has a domain score (--force replaces it)")
    tensors = {k: v for k, v in tensors.items() if not k.startswith("domain.")}
    card = raw["card"]
    data = training_data(
        None, sorted(card["training_data"]), args.labels, "tiny.en", cfg.layers, False, print
    )
    counts = Counter(c.corpus for c in data.clips)
    if dict(counts) != card["training_data"]:
        raise SystemExit(f"clips differ from the card: {dict(counts)} vs {card['training_data']}")
    speakers = np.array([c.speaker for c in data.clips], dtype=object)
    is_val, val_spk = validation_mask(speakers, [c.corpus for c in data.clips])
    if sorted(val_spk) != sorted(card["held_out_speakers"]):
        raise SystemExit("the held-out speakers drawn again differ from the card's")
    if len(set(speakers[~is_val])) != card["training_speakers"]:
        raise SystemExit("training speaker count differs from the card's")
    dom = fit_domain_score(head, data.X[~is_val], data.X[is_val])
    print(
        f"domain score: {len(dom.scale)} components, threshold {dom.threshold:.3f} "
        f"({int((~is_val).sum())} training clips, {int(is_val.sum())} held-out clips)"
    )
    tensors.update({f"domain.{k}": v for k, v in dom.tensors().items()})
    tmp = folder / f".{MODEL_FILE}.tmp"
    save_file(tensors, str(tmp), metadata=meta)
    tmp.chmod((folder / MODEL_FILE).stat().st_mode & 0o777)
    tmp.replace(folder / MODEL_FILE)
    raw["domain_threshold"], raw["domain_method"] = dom.threshold, dom.method
    raw["card"]["out_of_domain"] = domain_card(dom)
    atomic_write_json(folder / CONFIG_FILE, raw)
    if (folder / "card.json").is_file():
        atomic_write_json(folder / "card.json", raw["card"])
    if (folder / "card.md").is_file():
        atomic_write_text(folder / "card.md", render_card(raw))
    after_cfg, _, after_head = read_bundle(folder)
    same = all(np.array_equal(head[k], after_head[k]) for k in head)
    same = same and (after_cfg.temperature, after_cfg.threshold) == (
        cfg.temperature,
        cfg.threshold,
    )
    print(f"wrote {Path(folder)}; head and calibration unchanged: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
