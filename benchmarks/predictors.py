"""How well genotype-level predictors rank candidates they have not seen.

Data: the really evaluated candidates that ``benchmarks/candidate_eval.py`` keeps in
``results/candidate_eval.json`` (random genotypes of the zoo supernet's space, exact path: 2000
validation images, batch norm on 2000 images). Targets: the candidate's accuracy at its threshold and
its early-exit share (the fraction of samples leaving before the final exit, which drives its
expected EDP). For each training-set size, ``--splits`` random splits train on that many candidates
and score the rest (at least ``--held-out``): Kendall tau-b and mean absolute error, mean and
standard deviation over splits. Sizes the records cannot support with a held-out set are skipped
and listed.

Usage: python benchmarks/predictors.py [--splits S] [--held-out H]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from benchmarks._common import RESULTS, write_result  # noqa: E402

SIZES = (50, 100, 200, 500)
TARGETS = ("accuracy", "early_exit_share")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", type=int, default=20, help="random train/held-out splits per size (default 20)")
    parser.add_argument("--held-out", type=int, default=40, help="fewest held-out candidates per split (default 40)")
    args = parser.parse_args(argv)

    from nas import api, zoo
    from nas.predictors import EnsemblePredictor, RidgePredictor, kendall_tau
    from search_spaces.genotype import Genotype

    source = json.loads((RESULTS / "candidate_eval.json").read_text())
    _splits, space = api.data_and_space(zoo.config(source["zoo"]))  # the space sized for the zoo's data
    records = source["records"]
    params = [space.encode(Genotype.from_dict(r["genotype"])) for r in records]
    y = np.array([[r["exact"]["accuracy"], 1.0 - r["exact"]["ratios"][-1]] for r in records])
    models = {"ridge (one-hot, closed form)": lambda p, t: RidgePredictor(p, t, ridge=1.0),
              "MLP ensemble (5 members)": lambda p, t: EnsemblePredictor(p, t, members=5)}
    rows, skipped = [], [n for n in SIZES if n > len(records) - args.held_out]
    for n in (n for n in SIZES if n not in skipped):
        for name, fit in models.items():
            scores: dict[str, list[float]] = {f"{t}_{m}": [] for t in TARGETS for m in ("tau", "mae")}
            seconds = []
            for split in range(args.splits):
                order = list(range(len(records)))
                random.Random(split).shuffle(order)
                train, test = order[:n], order[n:]
                start = time.perf_counter()
                model = fit([params[i] for i in train], y[train])
                seconds.append(time.perf_counter() - start)
                pred = model.predict([params[i] for i in test])
                for j, target in enumerate(TARGETS):
                    scores[f"{target}_tau"].append(kendall_tau(pred[:, j], y[test, j]))
                    scores[f"{target}_mae"].append(float(np.abs(pred[:, j] - y[test, j]).mean()))
            row: dict[str, Any] = {"model": name, "train": n, "held_out": len(records) - n,
                                   "fit_s_median": statistics.median(seconds)}
            for key, vals in scores.items():
                row[key] = {"mean": statistics.fmean(vals), "std": statistics.stdev(vals)}
            rows.append(row)
            print(f"{name}, {n} training candidates: " + ", ".join(
                f"{k} {v['mean']:.3f}±{v['std']:.3f}" for k, v in row.items() if isinstance(v, dict)), flush=True)
    write_result("predictors", {"records": len(records), "source": "results/candidate_eval.json (exact path)",
                                "zoo": source["zoo"], "splits": args.splits, "targets": list(TARGETS),
                                "rows": rows, "sizes_skipped": skipped})


if __name__ == "__main__":
    main()
