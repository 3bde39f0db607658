"""How well genotype-level predictors rank candidates they have not seen.

Data: the really evaluated candidates that ``benchmarks/candidate_eval.py`` keeps in
``results/candidate_eval.json`` (random genotypes of the zoo supernet's space, exact path: 2000
validation images, batch norm on 2000 images). Targets: the candidate's accuracy at its threshold and
its early-exit share (the fraction of samples leaving before the final exit, which drives its
expected EDP). For each training-set size, ``--splits`` random splits train on that many candidates
and score the rest (at least ``--held-out``): Kendall tau-b and mean absolute error, mean and
standard deviation over splits. Models: the training candidates' mean (the baseline, which ignores
the genotype), ridge regression on one-hot parameters at the fixed strength 1.0 (the search's
surrogate) and with each target's strength picked by its leave-one-out error (``RIDGE_GRID``), ridge
regression on value shares (``features="shares"``: how many layers of each kind take each bit
width, ...), ridge with each target's encoding and strength picked by leave-one-out, and an MLP
ensemble. Sizes the records cannot support with a held-out set are skipped and listed.

Forward (``--studies``, default: the NSGA-II studies ``benchmarks/search_wall_time.py`` leaves in
``runs/search_wall_time``): what a surrogate meets in a search. The ridge models are fit on a study's
first n complete trials and predict its next ``FORWARD_NEXT``, for n = 20, 40, ...: Kendall tau and
mean absolute error of the accuracy and of log expected EDP (the surrogate's targets), mean ± standard
deviation over the windows of each band of n and over the studies. Skipped when no study is there.

``--collect N`` first evaluates random candidates until ``results/predictor_records.jsonl`` holds N
(exact path: the zoo config's 2000 batch-norm images, channels_last inference; candidate i is drawn
from seed 10000 + i, one JSON line each, written as it is measured), so a stopped collection resumes
where it stopped; those records join the ones of ``candidate_eval.json``. Each record names the zoo
supernet (sha256) that scored it, and records of another supernet than the shipped one stop the
script with a message instead of being mixed in.

Usage: python benchmarks/predictors.py [--collect N] [--splits S] [--held-out H] [--studies DB ...]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np

from benchmarks._common import RESULTS, write_result
from benchmarks.render import ZOO_NAME, zoo_record

SIZES = (50, 100, 200, 500)
RECORDS = RESULTS / "predictor_records.jsonl"
STUDIES = sorted((RESULTS.parents[1] / "runs" / "search_wall_time").glob("nsga2_[0-9]*/study.db"))
FORWARD_NEXT = 40  # trials each forward window predicts
FORWARD_BANDS = ((20, 100), (120, 400))  # training trials of the windows reported together


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
LOO_FEATURES = "ridge, encoding and strength per target by leave-one-out"
MEAN = "training mean (ignores the genotype)"


def ridge_models() -> dict[str, Any]:
    """The ridge regressions compared, by name: ``fit(params, targets)``."""
    from nas.study.predictors import FEATURES, RIDGE_GRID, RidgePredictor

    return {"ridge (one-hot, closed form)": lambda p, t: RidgePredictor(p, t, ridge=1.0),
            LOO_RIDGE: lambda p, t: RidgePredictor(p, t, ridge=RIDGE_GRID),
            "ridge on value shares": lambda p, t: RidgePredictor(p, t, ridge=1.0, features="shares"),
            LOO_FEATURES: lambda p, t: RidgePredictor(p, t, ridge=RIDGE_GRID, features=tuple(FEATURES))}


def forward(studies: list[Path]) -> dict[str, Any]:
    """Each ridge model fit on a study's first n complete trials, scored on its next FORWARD_NEXT (see the
    module docstring)."""
    import math

    import optuna
    from optuna.trial import TrialState

    from nas.study.predictors import kendall_tau

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    used, scores = [], {}
    for path in studies:
        study = optuna.load_study(study_name=None, storage=f"sqlite:///{path}")
        if study.metric_names != ["accuracy", "expected_edp_j_cycles"]:
            raise SystemExit(f"{path}: expected a study of (accuracy, expected_edp_j_cycles), got {study.metric_names}")
        trials = [t for t in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)) if t.values]
        params = [t.params for t in trials]
        y = np.array([[t.values[0], math.log(t.values[1])] for t in trials])
        used.append({"study": str(path.relative_to(RESULTS.parents[1])), "complete_trials": len(trials)})
        for name, fit in ridge_models().items():
            for lo, hi in FORWARD_BANDS:
                for n in range(lo, min(hi, len(trials) - FORWARD_NEXT) + 1, 20):
                    pred = fit(params[:n], y[:n]).predict(params[n:n + FORWARD_NEXT])
                    truth = y[n:n + FORWARD_NEXT]
                    row = scores.setdefault((name, lo, hi), {"accuracy_tau": [], "accuracy_mae": [],
                                                             "log_edp_tau": [], "log_edp_mae": []})
                    row["accuracy_tau"].append(kendall_tau(pred[:, 0], truth[:, 0]))
                    row["accuracy_mae"].append(float(np.abs(pred[:, 0] - truth[:, 0]).mean()))
                    row["log_edp_tau"].append(kendall_tau(pred[:, 1], truth[:, 1]))
                    row["log_edp_mae"].append(float(np.abs(pred[:, 1] - truth[:, 1]).mean()))
    rows = [{"model": name, "train_from": lo, "train_to": hi, "windows": len(vals["accuracy_tau"]),
             **{k: {"mean": statistics.fmean(v), "std": statistics.stdev(v)} for k, v in vals.items()}}
            for (name, lo, hi), vals in scores.items() if len(vals["accuracy_tau"]) > 1]
    for r in rows:
        print(f"forward, {r['model']}, trained on {r['train_from']}-{r['train_to']}: " + ", ".join(
            f"{k} {v['mean']:.3f}±{v['std']:.3f}" for k, v in r.items() if isinstance(v, dict)), flush=True)
    return {"studies": used, "next": FORWARD_NEXT, "rows": rows}


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
    parser.add_argument("--studies", type=Path, nargs="*", default=STUDIES,
                        help="study files for the forward scores (default: search_wall_time's NSGA-II studies)")
    args = parser.parse_args(argv)

    from nas import api, zoo
    from nas.study.predictors import EnsemblePredictor, kendall_tau
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
    models = {MEAN: TrainingMean, **ridge_models(),
              "MLP ensemble (5 members)": lambda p, t: EnsemblePredictor(p, t, members=5)}
    rows, skipped = [], [n for n in SIZES if n > len(records) - args.held_out]
    for n in (n for n in SIZES if n not in skipped):
        for name, fit in models.items():
            scores: dict[str, list[float]] = {f"{t}_{m}": [] for t in TARGETS for m in ("tau", "mae")}
            seconds, strengths, encodings = [], [], []
            for split in range(args.splits):
                order = list(range(len(records)))
                random.Random(split).shuffle(order)
                train, test = order[:n], order[n:]
                start = time.perf_counter()
                model = fit([params[i] for i in train], y[train])
                seconds.append(time.perf_counter() - start)
                if name in (LOO_RIDGE, LOO_FEATURES):
                    strengths.append(model.ridge)
                if name == LOO_FEATURES:
                    encodings.append(model.features)
                pred = model.predict([params[i] for i in test])
                for j, target in enumerate(TARGETS):
                    scores[f"{target}_tau"].append(kendall_tau(pred[:, j], y[test, j]))
                    scores[f"{target}_mae"].append(float(np.abs(pred[:, j] - y[test, j]).mean()))
            row: dict[str, Any] = {"model": name, "train": n, "held_out": len(records) - n,
                                   "fit_s_median": statistics.median(seconds), "ranks": name != MEAN}
            if strengths:  # the strength each target took, median over splits
                row["ridge_median"] = dict(zip(TARGETS, map(float, np.median(strengths, axis=0))))
            if encodings:  # how often each target took each encoding
                row["features_chosen"] = {t: dict(Counter(e[j] for e in encodings)) for j, t in enumerate(TARGETS)}
            for key, vals in scores.items():
                row[key] = {"mean": statistics.fmean(vals), "std": statistics.stdev(vals)}
            rows.append(row)
            print(f"{name}, {n} training candidates: " + ", ".join(
                f"{k} {v['mean']:.3f}±{v['std']:.3f}" for k, v in row.items() if isinstance(v, dict) and "mean" in v),
                flush=True)
    if not args.studies:
        print("no study to score forward (python benchmarks/search_wall_time.py leaves its NSGA-II studies in "
              "runs/search_wall_time): forward scores skipped", flush=True)
    write_result("predictors", {"records": len(records), "source": "results/candidate_eval.json and "
                                f"{RECORDS.name} (exact path; {len(collected)} collected)",
                                "zoo": source["zoo"], "splits": args.splits, "targets": list(TARGETS),
                                "rows": rows, "sizes_skipped": skipped,
                                "forward": forward(args.studies) if args.studies else None})


if __name__ == "__main__":
    main()
