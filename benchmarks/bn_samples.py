"""How much a candidate's accuracy depends on which training images re-estimate its batch norm.

The search scores each candidate after re-estimating its batch-norm statistics on the first N images of
the training split (``search.bn_recalibration_samples``; the fast path of the multi-fidelity screening
uses 250). The training split is in random order, so those images are a random sample, and a candidate's
accuracy carries that sample's noise. This benchmark measures it: the first ``--candidates`` random
candidates whose records ``benchmarks/candidate_eval.py`` keeps (not chosen by their error), each scored
by the search's default evaluator path (folded, int8, batches of 100; 2000 validation images) with its
batch norm re-estimated on disjoint slices of the training split: ``SLICES`` slices of each size.
Reference for each candidate: the mean over its slices of the largest size. Per size: the standard
deviation over slices (mean over candidates), the mean and largest distance of one slice's accuracy
from the reference, of the first slice's (the one the search uses), and the mean signed difference
(does a small sample tend to score higher or lower).

Usage: python benchmarks/bn_samples.py [--candidates K]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, write_result
from benchmarks.candidate_eval import DEFAULT, ZOO_NAME, Bench

SLICES = {250: 8, 500: 4, 2000: 4}  # calibration images per slice: disjoint slices of the training split


def summarise(rows: list[dict], reference: int) -> list[dict]:
    """Per slice size, from each candidate's accuracies (fractions): the spread over slices and the distances
    from the candidate's reference (the mean over its slices of ``reference`` images). A slice can move every
    candidate the same way (its images' statistics are shared by the layers the candidates have in common):
    ``shared_std`` is the standard deviation over slices of that common offset (the mean over candidates of a
    slice's distance), ``residual_std_mean`` what is left per candidate once it is taken off - the part that
    can reorder candidates scored on the same slice, as in a search."""
    out = []
    refs = [statistics.fmean(r["accuracy"][str(reference)]) for r in rows]
    for size in sorted({int(k) for r in rows for k in r["accuracy"]}):
        per = [r["accuracy"][str(size)] for r in rows]
        devs = [[a - ref for a in accs] for accs, ref in zip(per, refs)]
        flat = [d for ds in devs for d in ds]
        first = [ds[0] for ds in devs]
        common = [statistics.fmean(ds[s] for ds in devs) for s in range(len(devs[0]))]
        out.append({"images": size, "slices": len(common),
                    "std_over_slices_mean": statistics.fmean(statistics.stdev(a) for a in per),
                    "shared_std": statistics.stdev(common),
                    "residual_std_mean": statistics.fmean(statistics.stdev([d - c for d, c in zip(ds, common)])
                                                          for ds in devs),
                    "abs_dev_mean": statistics.fmean(abs(d) for d in flat), "abs_dev_max": max(abs(d) for d in flat),
                    "first_abs_dev_mean": statistics.fmean(abs(d) for d in first),
                    "first_abs_dev_max": max(abs(d) for d in first), "signed_dev_mean": statistics.fmean(flat)})
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=24,
                        help="candidates from candidate_eval's records (default 24)")
    args = parser.parse_args(argv)

    from nas import api, zoo
    from search_spaces.genotype import Genotype

    kept = json.loads((RESULTS / "candidate_eval.json").read_text())
    if kept.get("records_zoo_sha256") != zoo.entry(ZOO_NAME).sha256:
        sys.exit("candidate_eval.json's records were scored by another supernet than the zoo's: re-run candidate_eval")
    genotypes = [Genotype.from_dict(r["genotype"]) for r in kept["records"][: args.candidates]]
    bench = Bench.load()
    images = bench.splits.train.images
    largest = max(SLICES)
    rows = []
    start = time.perf_counter()
    with api.cost_model(bench.cfg, progress=False) as cm:
        for i, g in enumerate(genotypes):
            acc: dict[int, list[float]] = {}
            for size, count in SLICES.items():
                acc[size] = []
                for s in range(count):  # the default path, its batch norm on this slice
                    ev = bench.evaluator(DEFAULT, cm, images[s * size:(s + 1) * size])
                    acc[size].append(ev(g).stats.accuracy)
            rows.append({"genotype": g.to_dict(), "accuracy": {str(k): a for k, a in acc.items()}})
            ref = statistics.fmean(acc[largest])
            print(f"candidate {i + 1}/{len(genotypes)} ({time.perf_counter() - start:.0f} s): reference {ref:.4f}; "
                  + "; ".join(f"{k}: {min(a) - ref:+.4f}..{max(a) - ref:+.4f}" for k, a in acc.items()), flush=True)

    summary = summarise(rows, largest)
    for r in summary:
        print(r, flush=True)
    write_result("bn_samples", {"zoo": ZOO_NAME, "zoo_sha256": zoo.entry(ZOO_NAME).sha256,
                                "val_images": len(bench.val), "path": "folded, int8, NHWC, batches of 100",
                                "slices": SLICES,
                                "reference_images": largest, "candidates": len(rows), "summary": summary, "rows": rows})


if __name__ == "__main__":
    main()
