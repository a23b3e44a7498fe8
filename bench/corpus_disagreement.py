"""Do heads that each leave one training corpus out disagree where the model is wrong?

An answer that changes when one training corpus is dropped rests on that corpus's studio more
than on emotion. Leave one corpus out over the seven corpora (cached Whisper tiny.en
embeddings, paper7); for each held-out corpus, on the other six, exactly as
``bench/domain_score.py`` (whose cached fold outputs this reads: the main head, logreg with C
on the training speakers, its temperature on the validation speakers, and the residual domain
score): six more heads, each fitted on the same training speakers minus one corpus. A held-out
clip is flagged ``unstable`` when at least two of the six sub-heads' answers differ from the
main head's (a rule fixed before the run, not tuned). Reported per held-out corpus: share
flagged, accuracy flagged / unflagged, and the share of wrong answers flagged, alone and
together with ``uncertain`` and ``out_of_domain``; the share of in-domain validation answers
flagged; and the UA of the six sub-heads' averaged probabilities beside the main head's.

    python bench/domain_score.py                    # first: the main heads and domain scores
    python bench/corpus_disagreement.py [--held crema_d,tess] [--render-only]

Writes bench/results/corpus_disagreement.json and the block between
``<!-- disagreement:begin -->`` and ``<!-- disagreement:end -->`` in docs/generalization.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import results_db
from domain_score import CORPORA, MAIN, QUANTILE, THRESHOLD, C, bar, domain_scores, pct
from domain_score import main_cache as domain_cache

from emovox.evaluation.dataset import load_dataset
from emovox.evaluation.experiment_config import ExperimentConfig
from emovox.evaluation.metrics import score
from emovox.inference.build import fit_head, head_tensors, logits
from emovox.inference.calibration import fit_temperature, softmax
from emovox.io import atomic_write_json, cache_dir

ROOT = Path(__file__).resolve().parents[1]
STORE = ROOT / "bench" / "results" / "corpus_disagreement.json"
DOC = ROOT / "docs" / "generalization.md"
#: an answer is unstable when at least this many of the sub-heads answer otherwise
MIN_DISAGREE = 2


def sub_logits(X, y, corp, fold: dict, cache: Path, held: str) -> dict[str, np.ndarray]:
    """Logits of the six leave-one-training-corpus-out heads on every clip (cached)."""
    fit = ~fold["test"].astype(bool) & ~fold["val"].astype(bool)
    present = list(fold["present"])
    out = {}
    for c in sorted(set(corp[fit])):
        path = cache / f"{held}-without-{c}.npy"
        if not path.exists():
            use = fit & (corp != c)
            have = [lab for lab in present if lab in set(y[use])]
            model, order = fit_head(X[use], y[use], have, C)
            Z = np.full((len(y), len(present)), -1e9)
            Z[:, [present.index(lab) for lab in have]] = logits(head_tensors(model, order), X)
            np.save(path, Z)
            print(f"{held}: head without {c} fitted", flush=True)
        out[c] = np.load(path)
    return out


def flag_stats(flag: np.ndarray, right: np.ndarray) -> dict:
    """Share flagged, accuracy of flagged and unflagged answers, share of wrong ones flagged."""
    return {
        "share_flagged": round(float(flag.mean()), 4),
        "accuracy_flagged": round(float(right[flag].mean()), 4) if flag.any() else None,
        "accuracy_unflagged": round(float(right[~flag].mean()), 4) if (~flag).any() else None,
        "wrong_flagged": round(float(flag[~right].mean()), 4) if (~right).any() else None,
    }


def run(held_list: list[str]) -> dict:
    cfg = ExperimentConfig(features="whisper:tiny.en", corpora=CORPORA, labels="paper7",
                           protocol="loco")  # fmt: skip
    data = load_dataset(cfg, progress=False)
    X, y = data.X, data.y
    corp = np.array(data.column("corpus"))
    main_cache = domain_cache()
    cache = cache_dir() / f"bench-corpus-disagreement-C{C:g}"
    cache.mkdir(parents=True, exist_ok=True)
    res: dict = {"per_corpus": {}}
    for held in held_list:
        t0 = time.perf_counter()
        path = main_cache / f"{held}.npz"
        if not path.exists():
            raise SystemExit(f"{path} missing: run bench/domain_score.py first")
        fold = dict(np.load(path, allow_pickle=False))
        fold.update(domain_scores(X, fold))
        present = list(fold["present"])
        yi = np.array([present.index(v) if v in present else -1 for v in y])
        te = fold["test"].astype(bool) & (yi >= 0)
        va = fold["val"].astype(bool)
        Z = fold["Z"]
        T = fit_temperature(Z[va], yi[va])
        subs = sub_logits(X, y, corp, fold, cache, held)
        main_pred = Z.argmax(1)
        differ = sum((s.argmax(1) != main_pred).astype(int) for s in subs.values())
        unstable = differ >= MIN_DISAGREE
        P = softmax(Z / T)
        unc = P.max(1) < THRESHOLD
        thr = float(np.quantile(fold[MAIN][va], QUANTILE))
        ood = fold[MAIN] > thr
        right = main_pred == yi
        ens = np.mean([softmax(s) for s in subs.values()], axis=0).argmax(1)

        labels = [present[i] for i in range(len(present))]
        ua_main = score([labels[i] for i in yi[te]], [labels[i] for i in main_pred[te]], labels)
        ua_ens = score([labels[i] for i in yi[te]], [labels[i] for i in ens[te]], labels)
        entry = {
            "clips": int(te.sum()),
            "sub_heads": sorted(subs),
            "unstable": flag_stats((unstable)[te], right[te]),
            "unstable_or_uncertain": flag_stats((unstable | unc)[te], right[te]),
            "any_flag": flag_stats((unstable | unc | ood)[te], right[te]),
            "uncertain_or_ood": flag_stats((unc | ood)[te], right[te]),
            "validation_share_unstable": round(float(unstable[va].mean()), 4),
            "validation_share_any_flag": round(float((unstable | unc | ood)[va].mean()), 4),
            "ua_main": round(ua_main["ua"], 4),
            "ua_sub_head_mean": round(ua_ens["ua"], 4),
            "seconds": round(time.perf_counter() - t0, 1),
        }
        # re-read before writing: runs over other held-out corpora may share the file
        res = json.loads(STORE.read_text()) if STORE.exists() else {"per_corpus": {}}
        res["per_corpus"][held] = entry
        res |= {"min_disagree": MIN_DISAGREE, "threshold": THRESHOLD, "C": C}
        atomic_write_json(STORE, res)
    return res


def render(res: dict) -> str:
    per = res["per_corpus"]
    met = {
        k: [
            h
            for h, v in per.items()
            if bar(v[k], "accuracy_flagged", "accuracy_unflagged", "wrong_flagged")
        ]  # fmt: skip
        for k in ("unstable", "unstable_or_uncertain", "any_flag", "uncertain_or_ood")
    }
    lines = [
        "### Heads that leave one training corpus out (`unstable`, measured, not shipped)",
        "",
        "`python bench/corpus_disagreement.py` (numbers in "
        "`bench/results/corpus_disagreement.json`): per held-out corpus, six more heads on the "
        "other six corpora's training speakers, each without one of them; an answer is "
        f"`unstable` when at least {res['min_disagree']} of the six differ from the main head. "
        f"Main head (logreg C = {res.get('C', 0.01):g}), one temperature (validation speakers) "
        "and domain score fitted as for the first table above.",
        "",
        "| held-out corpus | clips | unstable | accuracy unstable / stable | wrong flagged: "
        "unstable / + uncertain / + uncertain + OOD | in-domain validation flagged: unstable / "
        "any | UA main head / mean of the six |",
        "|---|---|---|---|---|---|---|",
    ]
    for h, v in per.items():
        u = v["unstable"]
        lines.append(
            f"| {h} | {v['clips']} | {pct(u['share_flagged'])} % | {pct(u['accuracy_flagged'])} "
            f"/ {pct(u['accuracy_unflagged'])} % | {pct(u['wrong_flagged'])} / "
            f"{pct(v['unstable_or_uncertain']['wrong_flagged'])} / "
            f"{pct(v['any_flag']['wrong_flagged'])} % | "
            f"{pct(v['validation_share_unstable'])} / {pct(v['validation_share_any_flag'])} % | "
            f"{100 * v['ua_main']:.1f} / {100 * v['ua_sub_head_mean']:.1f} |"
        )
    names = {"unstable": "`unstable` alone", "unstable_or_uncertain": "`unstable` or "
             "`uncertain`", "any_flag": "any of the three", "uncertain_or_ood": "`uncertain` or "
             "`out_of_domain` (one temperature)"}  # fmt: skip
    lines += [
        "",
        "Issue bar (flagged >= 25 points less accurate than unflagged, >= 40 % of wrong answers "
        f"flagged), of {len(per)} held-out corpora: "
        + "; ".join(f"{names[k]}: {len(v)} ({', '.join(v) or 'none'})" for k, v in met.items())
        + ".",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--held", default=",".join(CORPORA), help="held-out corpora to run")
    ap.add_argument("--render-only", action="store_true")
    args = ap.parse_args()
    res = json.loads(STORE.read_text()) if args.render_only else run(args.held.split(","))
    text = render(res)
    results_db.write_section(DOC, "disagreement", text)
    print(text)


if __name__ == "__main__":
    main()
