"""Add the adapted head (``adapted_head.*``, :mod:`emovox.inference.adapt`) to an existing bundle
without touching anything else: its encoder, head and domain tensors, temperature and
thresholds stay byte-identical, so its plain probabilities do not change.

The head is fitted, as ``emovox build-model`` does
(:func:`emovox.inference.build.fit_adapted_head`), on the cached embeddings of the bundle's own
training clips standardised per corpus (the corpora of its card, minus its held-out speakers,
drawn again with :func:`emovox.inference.build.validation_mask` and checked against the card);
its temperature is fitted on the held-out speakers.

    python bench/add_adapted_head.py [MODEL_DIR] [--force]   # default: the packaged model
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

import numpy as np
from safetensors import safe_open
from safetensors.numpy import save_file

from emovox.inference.build import fit_adapted_head, training_data, validation_mask
from emovox.inference.bundle import (
    ADAPTED_PREFIX,
    CONFIG_FILE,
    MODEL_FILE,
    bundle_path,
    read_bundle,
    read_domain,
)
from emovox.io import atomic_write_json


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model", nargs="?", default=None, help="bundle folder (default: packaged)")
    ap.add_argument("--labels", default="paper7", help="label set the bundle was built with")
    ap.add_argument("--C", type=float, default=0.01, help="the head's C (as built)")
    ap.add_argument("--force", action="store_true", help="replace an existing adapted head")
    args = ap.parse_args()
    folder = bundle_path(args.model)
    cfg, _, head = read_bundle(folder)
    domain = read_domain(folder, cfg)
    raw = json.loads((folder / CONFIG_FILE).read_text())
    with safe_open(str(folder / MODEL_FILE), framework="numpy") as f:
        meta = f.metadata()
        tensors = {k: f.get_tensor(k) for k in f.keys()}
    if any(k.startswith(ADAPTED_PREFIX) for k in tensors) and not args.force:
        raise SystemExit(f"{folder}: already has an adapted head (--force replaces it)")
    tensors = {k: v for k, v in tensors.items() if not k.startswith(ADAPTED_PREFIX)}
    card = raw["card"]
    data = training_data(
        None, sorted(card["training_data"]), args.labels, "tiny.en", cfg.layers, False, print
    )
    counts = Counter(c.corpus for c in data.clips)
    if dict(counts) != card["training_data"]:
        raise SystemExit(f"clips differ from the card: {dict(counts)} vs {card['training_data']}")
    speakers = np.array([c.speaker for c in data.clips], dtype=object)
    corpora = [c.corpus for c in data.clips]
    is_val, val_spk = validation_mask(speakers, corpora)
    if sorted(val_spk) != sorted(card["held_out_speakers"]):
        raise SystemExit("the held-out speakers drawn again differ from the card's")
    y = np.array([c.emotion for c in data.clips], dtype=object)
    if sorted(set(y)) != sorted(cfg.labels):
        raise SystemExit(f"labels differ from the bundle's: {sorted(set(y))} vs {cfg.labels}")
    adapted, T = fit_adapted_head(data.X, y, corpora, is_val, cfg.labels, args.C)
    print(
        f"adapted head: temperature {T:.3f} ({int((~is_val).sum())} training clips, "
        f"{int(is_val.sum())} held-out clips)"
    )
    tensors.update({f"{ADAPTED_PREFIX}{k}": v.astype(np.float32) for k, v in adapted.items()})
    tmp = folder / f".{MODEL_FILE}.tmp"
    save_file(tensors, str(tmp), metadata=meta)
    tmp.chmod((folder / MODEL_FILE).stat().st_mode & 0o777)
    tmp.replace(folder / MODEL_FILE)
    raw["adapted_temperature"] = T
    atomic_write_json(folder / CONFIG_FILE, raw)
    after_cfg, _, after_head = read_bundle(folder)
    after_dom = read_domain(folder, after_cfg)
    same = all(np.array_equal(head[k], after_head[k]) for k in head)
    same = same and (after_cfg.temperature, after_cfg.threshold, after_cfg.domain_threshold) == (
        cfg.temperature,
        cfg.threshold,
        cfg.domain_threshold,
    )
    if domain is not None and after_dom is not None:
        same = same and all(
            np.array_equal(v, after_dom.tensors()[k]) for k, v in domain.tensors().items()
        )
    print(f"wrote {Path(folder)}; plain head, domain score and calibration unchanged: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
