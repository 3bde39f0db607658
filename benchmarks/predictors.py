"""How well genotype-level predictors rank candidates they have not seen.

Data: the really evaluated candidates that ``benchmarks/candidate_eval.py`` keeps in
``results/candidate_eval.json`` (random genotypes of the zoo supernet's space, exact path: 2000
validation images, batch norm on 2000 images). Targets: the candidate's accuracy at its threshold and
its early-exit share (the fraction of samples leaving before the final exit, which drives its
expected EDP). For each training-set size, ``--splits`` random splits train on that many candidates
and score the rest (at least ``--held-out``): Kendall tau-b and mean absolute error, mean and
standard deviation over splits. Models: the training candidates' mean (the baseline, which ignores
the genotype), ridge regression at the fixed strength 1.0 and with each target's strength picked by
its leave-one-out error (``RIDGE_GRID``), and an MLP ensemble. Sizes the records cannot support with
a held-out set are skipped and listed.

``--collect N`` first evaluates random candidates until ``results/predictor_records.jsonl`` holds N
(exact path: the zoo config's 2000 batch-norm images, channels_last inference; candidate i is drawn
from seed 10000 + i, one JSON line each, written as it is measured), so a stopped collection resumes
where it stopped; those records join the ones of ``candidate_eval.json``. Each record names the zoo
supernet (sha256) that scored it, and records of another supernet than the shipped one stop the
script with a message instead of being mixed in.

Usage: python benchmarks/predictors.py [--collect N] [--splits S] [--held-out H]
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

import numpy as np

from benchmarks._common import RESULTS, write_result
from benchmarks.render import ZOO_NAME, zoo_record

SIZES = (50, 100, 200, 500)
RECORDS = RESULTS / "predictor_records.jsonl"


def zoo_sha_of(source: dict) -> str | None:
    """sha256 of the zoo supernet that scored the records of ``candidate_eval.json`` (as it says, or, in a file
    written before it said, the zoo entry at its commit, from git); None when neither tells."""
    if "records_zoo_sha256" in source:
        return source["records_zoo_sha256"]
    record = zoo_record(source["commit"]) if source["zoo"] == ZOO_NAME else None
    return record["sha256"] if record else None


def collected_records(zoo_sha: str) -> list[dict]:
    """The records of RECORDS; stops with a message if any was scored by another supernet than ``zoo_sha``."""
    lines = RECORDS.read_text().splitlines() if RECORDS.exists() else []
    records = [json.loads(line) for line in lines if line.strip()]
    other = [r for r in records if r.get("zoo_sha256") != zoo_sha]
    if other:
        raise SystemExit(f"{RECORDS}: {len(other)} of {len(records)} records were scored by another zoo supernet "
                         f"than the shipped one (sha256 {zoo_sha[:12]}...); move the file away and collect again "
                         "(--collect N)")
    return records


def collect(cfg: Any, splits: Any, space: Any, zoo_name: str, wanted: int) -> None:
    """Append exact-path evaluations of seeded random candidates to RECORDS until it holds ``wanted``."""
    from nas import api, zoo
    from nas.study.evaluator import CandidateEvaluator

    zoo_sha = zoo.entry(zoo_name).sha256
    have = len(collected_records(zoo_sha))
    if have >= wanted:
        return
    supernet = zoo.load_supernet(zoo_name, space)
    val = splits.val.head(cfg.search.val_samples)
    with api.cost_model(cfg, progress=False) as cm, RECORDS.open("a") as out:
        ev = CandidateEvaluator.from_config(cfg, space, supernet, val, cm, api.calibration_images(cfg, splits),
                                            threshold="searched", max_accuracy_loss=0.01)
        for i in range(have, wanted):
            g = space.sample(random.Random(10000 + i))
            start = time.perf_counter()
            r = ev(g)
            out.write(json.dumps({"genotype": g.to_dict(), "zoo_sha256": zoo_sha, "exact": {
                "accuracy": r.stats.accuracy, "ratios": list(r.stats.ratios),
                "exit_accuracy_all": list(r.stats.exit_accuracy_all)}}) + "\n")
            out.flush()
            print(f"collected {i + 1}/{wanted} in {time.perf_counter() - start:.1f} s", flush=True)

TARGETS = ("accuracy", "early_exit_share")
LOO_RIDGE = "ridge, strength per target by leave-one-out"
MEAN = "training mean (ignores the genotype)"


class TrainingMean:
    """The baseline every predictor must beat: each candidate gets the training candidates' mean."""

    def __init__(self, params: list[dict], targets: np.ndarray) -> None:
        self.mean = np.asarray(targets, dtype=float).mean(0)

    def predict(self, params: list[dict]) -> np.ndarray:
        return np.tile(self.mean, (len(params), 1))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--splits", type=int, default=20, help="random train/held-out splits per size (default 20)")
    parser.add_argument("--held-out", type=int, default=40, help="fewest held-out candidates per split (default 40)")
    parser.add_argument("--collect", type=int, default=0, help="evaluate candidates until the records file holds N")
    args = parser.parse_args(argv)

    from nas import api, zoo
    from nas.study.predictors import RIDGE_GRID, EnsemblePredictor, RidgePredictor, kendall_tau
    from search_spaces.genotype import Genotype

    source = json.loads((RESULTS / "candidate_eval.json").read_text())
    cfg = zoo.config(source["zoo"], {"search": {"val_samples": source["val_images"]}})
    splits, space = api.data_and_space(cfg)  # the space sized for the zoo's data
    zoo_sha = zoo.entry(source["zoo"]).sha256
    if zoo_sha_of(source) != zoo_sha:
        raise SystemExit(f"results/candidate_eval.json: scored by another zoo supernet than the shipped one (sha256 "
                         f"{zoo_sha[:12]}...); run python benchmarks/candidate_eval.py first")
    if args.collect:
        collect(cfg, splits, space, source["zoo"], args.collect)
    collected = collected_records(zoo_sha)
    records = source["records"] + collected
    params = [space.encode(Genotype.from_dict(r["genotype"])) for r in records]
    y = np.array([[r["exact"]["accuracy"], 1.0 - r["exact"]["ratios"][-1]] for r in records])
    models = {MEAN: TrainingMean,
              "ridge (one-hot, closed form)": lambda p, t: RidgePredictor(p, t, ridge=1.0),
              LOO_RIDGE: lambda p, t: RidgePredictor(p, t, ridge=RIDGE_GRID),
              "MLP ensemble (5 members)": lambda p, t: EnsemblePredictor(p, t, members=5)}
    rows, skipped = [], [n for n in SIZES if n > len(records) - args.held_out]
    for n in (n for n in SIZES if n not in skipped):
        for name, fit in models.items():
            scores: dict[str, list[float]] = {f"{t}_{m}": [] for t in TARGETS for m in ("tau", "mae")}
            seconds, strengths = [], []
            for split in range(args.splits):
                order = list(range(len(records)))
                random.Random(split).shuffle(order)
                train, test = order[:n], order[n:]
                start = time.perf_counter()
                model = fit([params[i] for i in train], y[train])
                seconds.append(time.perf_counter() - start)
                if name == LOO_RIDGE:
                    strengths.append(model.ridge)
                pred = model.predict([params[i] for i in test])
                for j, target in enumerate(TARGETS):
                    scores[f"{target}_tau"].append(kendall_tau(pred[:, j], y[test, j]))
                    scores[f"{target}_mae"].append(float(np.abs(pred[:, j] - y[test, j]).mean()))
            row: dict[str, Any] = {"model": name, "train": n, "held_out": len(records) - n,
                                   "fit_s_median": statistics.median(seconds), "ranks": name != MEAN}
            if strengths:  # the strength each target took, median over splits
                row["ridge_median"] = dict(zip(TARGETS, map(float, np.median(strengths, axis=0))))
            for key, vals in scores.items():
                row[key] = {"mean": statistics.fmean(vals), "std": statistics.stdev(vals)}
            rows.append(row)
            print(f"{name}, {n} training candidates: " + ", ".join(
                f"{k} {v['mean']:.3f}±{v['std']:.3f}" for k, v in row.items() if isinstance(v, dict) and "mean" in v),
                flush=True)
    write_result("predictors", {"records": len(records), "source": "results/candidate_eval.json and "
                                f"{RECORDS.name} (exact path; {len(collected)} collected)",
                                "zoo": source["zoo"], "splits": args.splits, "targets": list(TARGETS),
                                "rows": rows, "sizes_skipped": skipped})


if __name__ == "__main__":
    main()
