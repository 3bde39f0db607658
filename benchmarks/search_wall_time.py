"""Random search vs NSGA-II vs NSGA-II with multi-fidelity screening, at equal wall time, full space.

Each arm runs in its own study for ``--minutes`` of wall time (the static network enqueued first,
the same seed), on the zoo supernet and Fashion-MNIST, the whole search space (backbone, per-layer
bits, exits, branches, threshold): 2000 validation images, batch norm re-estimated on
``--bn-images`` training images, the cost cache filled for the whole space beforehand. Arms run one
after another, seed by seed, so they share the machine equally. Reported per arm and seed: the
hypervolume (feasible trials in (accuracy, expected EDP / static EDP), reference point (0, 1)) over
wall time, trials evaluated, candidates screened; and the time the screened search needs to reach
plain NSGA-II's final hypervolume (goal: at most a quarter of the budget) and whether it ends above
random search. Writes results/search_wall_time.json; ``python benchmarks/render.py`` draws
search_wall_time.png.

Usage: python benchmarks/search_wall_time.py [--minutes 20] [--seeds 0 1 2] [--bn-images 500] [--arms ...]
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import RESULTS, write_result
from nas.study.screening import Screener

ZOO_NAME = "fmnist_mbv2_w025"
T0 = "wall_time_t0"  # study user attribute: the arm's start (seconds since the epoch)
ROUND_SECONDS = "wall_time_screening_rounds_s"  # study user attribute: each screening round's wall time (s)

ARMS = {"random": {"sampler": "random"}, "nsga2": {"sampler": "nsga2"},
        "nsga2 + screening, 4 picks": {"sampler": "nsga2", "screening": True, "screening_picks": 4},
        "nsga2 + screening, 8 picks": {"sampler": "nsga2", "screening": True, "screening_picks": 8},
        "nsga2 + screening, 8 picks, ridge by leave-one-out": {"sampler": "nsga2", "screening": True,
                                                               "screening_picks": 8, "surrogate_ridge": "loo"},
        "nsga2 + screening, 8 picks, predicted rivals": {"sampler": "nsga2", "screening": True, "screening_picks": 8,
                                                         "screening_rivals": "predicted"}}


def earlier_round_seconds(path: Path) -> dict[tuple[str, int], list[float]]:
    """The screening rounds' wall times that the results file about to be replaced holds, by (arm, seed): a kept
    study written before it recorded its own (ROUND_SECONDS) takes them from there."""
    if not path.is_file():
        return {}
    runs = json.loads(path.read_text()).get("runs", {})
    return {(arm, r["seed"]): r["screening_rounds_s"] for arm, rs in runs.items() for r in rs
            if r.get("screening_rounds_s")}


@dataclass(frozen=True)
class TimedScreener(Screener):
    """A screener that keeps the wall time of each of its rounds (seconds)."""

    seconds: list[float] = field(default_factory=list)

    def round(self, study: Any, space: Any) -> Any:
        start = time.perf_counter()
        try:
            return super().round(study, space)
        finally:
            self.seconds.append(time.perf_counter() - start)


def shared_prefix_blocks(space: Any, genotypes: list[Any]) -> list[int]:
    """For each genotype in order, the backbone blocks (stem included in block 0) it shares, choices
    and bits, with some earlier genotype: what reusing a shared prefix's activations would skip."""
    names = space.backbone_layer_names()
    block_of = [0 if n == "stem" else int(n.split(".")[0][1:]) for n in names]
    blocks = max(block_of) + 1
    seen: set[tuple] = set()
    shared = []
    for g in genotypes:
        keys, key = [], ()
        for b in range(blocks):
            bits = tuple((w, a) for w, a, i in zip(g.weight_bits, g.act_bits, block_of) if i == b)
            key = (*key, tuple(g.backbone[3 * b: 3 * b + 3]), bits)
            keys.append(key)
        shared.append(sum(1 for k in keys if k in seen))  # prefixes nest: the count is the longest one
        seen.update(keys)
    return shared


def time_to_reach(times: list[float], curve: list[float], target: float) -> float | None:
    """Seconds after which ``curve`` (values at ``times``) first reaches ``target`` (None: never)."""
    return next((t for t, v in zip(times, curve) if v >= target - 1e-12), None)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=20.0, help="wall time of each arm and seed")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    ap.add_argument("--bn-images", type=int, default=500, help="batch-norm images per candidate")
    ap.add_argument("--run-dir", default="runs/search_wall_time")
    ap.add_argument("--arms", nargs="+", choices=list(ARMS), default=list(ARMS),
                    help="arms to run (random and nsga2 are needed for the reach and beats-random figures)")
    ap.add_argument("--reuse-arms", nargs="*", choices=list(ARMS), default=[],
                    help="arms whose studies in --run-dir, from an earlier run with the same settings, are kept "
                         "instead of re-run (e.g. the baselines, after a change to the screening only)")
    args = ap.parse_args()
    arms = {name: ARMS[name] for name in args.arms}

    import torch
    from optuna.trial import TrialState

    from nas import api, zoo
    from nas.study.evaluator import CandidateEvaluator
    from nas.study.hypervolume import hypervolume_curve
    from nas.study.record import records
    from nas.study.study import run_study
    from search_spaces import Genotype

    cfg = zoo.config(ZOO_NAME, {"run_dir": args.run_dir, "search.val_samples": 2000,
                                "search.bn_recalibration_samples": args.bn_images, "search.trial_plots": False,
                                "search.n_trials": 100000})
    torch.set_num_threads(cfg.train.threads or torch.get_num_threads())
    splits, space = api.data_and_space(cfg)
    supernet = zoo.load_supernet(ZOO_NAME, space)
    runs: dict[str, list[dict]] = {name: [] for name in arms}
    earlier = earlier_round_seconds(RESULTS / "search_wall_time.json")
    with api.cost_model(cfg) as cm:
        start = time.perf_counter()
        print(f"cost cache: {api.warm_cost_cache(cfg, space, cm)} in {time.perf_counter() - start:.0f} s", flush=True)
        for seed in args.seeds:
            for name, settings in arms.items():
                run = replace(cfg, run_dir=str(Path(args.run_dir) / f"{re.sub(r'[^a-z0-9]+', '_', name)}_{seed}"),
                              search=replace(cfg.search, seed=seed, study_name="wall_time", **settings))
                reused = name in args.reuse_arms
                if api.paths(run).study.exists() and not reused:
                    api.paths(run).study.unlink()
                study = api.prepare_study(run, space)  # a kept study is resumed as it is
                screener = api.screener(run, space)
                timed = None if screener is None else TimedScreener(**asdict(screener))
                if not reused:
                    evaluator = CandidateEvaluator.from_config(run, space, supernet, splits.val.head(2000), cm,
                                                               api.calibration_images(run, splits))
                    study.set_user_attr(T0, time.time())
                    run_study(study, space, evaluator, run.search.n_trials, progress=False,
                              timeout_s=args.minutes * 60, screener=timed)
                    if timed is not None:
                        study.set_user_attr(ROUND_SECONDS, timed.seconds)
                # None: a screened arm whose round times are not known
                rounds_s = [] if timed is None else study.user_attrs.get(ROUND_SECONDS) or earlier.get((name, seed))
                if rounds_s and ROUND_SECONDS not in study.user_attrs:  # a kept study keeps them from now on
                    study.set_user_attr(ROUND_SECONDS, rounds_s)
                trials = sorted((t for t in study.get_trials(deepcopy=False) if t.datetime_complete is not None),
                                key=lambda t: t.datetime_complete)
                # studies written before T0 was recorded: their first trial's start (milliseconds later)
                t0 = study.user_attrs.get(T0) or min(t.datetime_start for t in trials).timestamp()
                static = next(r for r in records(trials) if r.baseline == "static")
                times = [t.datetime_complete.timestamp() - t0 for t in trials]
                runs[name].append({"seed": seed, "static_edp_j_cycles": static.expected_edp_j_cycles,
                                   "times_s": times, "trials": [t.number for t in trials],
                                   "evaluated": sum(t.state == TrialState.COMPLETE for t in trials),
                                   "screened": int(study.user_attrs.get("screened_candidates", 0)),
                                   "screened_trials": sum("screening" in t.user_attrs for t in trials),
                                   "screening_rounds_s": rounds_s,
                                   "reused": reused})
                print(f"seed {seed}, {name}: {runs[name][-1]['evaluated']} evaluated, "
                      f"{runs[name][-1]['screened']} screened" + (" (kept from an earlier run)" if reused else ""),
                      flush=True)
                runs[name][-1]["_trials"] = trials
    edp_ref = runs["random"][0]["static_edp_j_cycles"]  # the same static network in every study
    for arm in runs.values():
        for r in arm:
            trials = r.pop("_trials")  # in completion order
            evaluated = [Genotype.from_dict(t.user_attrs["genotype"]) for t in trials if "genotype" in t.user_attrs]
            r["shared_prefix_blocks"] = shared_prefix_blocks(space, evaluated)
            # hypervolume after each completed trial, in completion order
            r["hypervolume"] = [hypervolume_curve(trials[: i + 1], 0.0, edp_ref)[-1] for i in range(len(trials))]
    summary = {}
    for name, arm in runs.items():
        finals = [r["hypervolume"][-1] if r["hypervolume"] else 0.0 for r in arm]
        summary[name] = {"final_hypervolume_mean": statistics.fmean(finals),
                         "final_hypervolume_std": statistics.pstdev(finals),
                         "evaluated_mean": statistics.fmean(r["evaluated"] for r in arm),
                         "screened_mean": statistics.fmean(r["screened"] for r in arm),
                         "screening_s_mean": None if any(r["screening_rounds_s"] is None for r in arm)
                         else statistics.fmean(sum(r["screening_rounds_s"]) for r in arm),
                         "shared_prefix_blocks_mean": statistics.fmean(
                             b for r in arm for b in r["shared_prefix_blocks"] or [0])}
    reach = []
    for arm in (name for name, settings in arms.items() if settings.get("screening")):
        for screened, plain, rnd in zip(runs[arm], runs["nsga2"], runs["random"]):
            target = plain["hypervolume"][-1] if plain["hypervolume"] else 0.0
            t = time_to_reach(screened["times_s"], screened["hypervolume"], target)
            reach.append({"arm": arm, "seed": screened["seed"], "nsga2_final": target,
                          "screening_time_to_nsga2_final_s": t,
                          "fraction_of_budget": None if t is None else t / (args.minutes * 60),
                          "beats_random": (screened["hypervolume"] or [0.0])[-1] > (rnd["hypervolume"] or [0.0])[-1]})
    write_result("search_wall_time", {"zoo": ZOO_NAME, "minutes": args.minutes, "seeds": args.seeds,
                                      "reused_arms": args.reuse_arms,
                                      "bn_images": args.bn_images, "val_images": 2000,
                                      "edp_reference_j_cycles": edp_ref,
                                      "screening": {"candidates": cfg.search.screening_candidates,
                                                    "picks": cfg.search.screening_picks,
                                                    "min_trials": cfg.search.screening_min_trials},
                                      "summary": summary, "reach": reach, "runs": runs})


if __name__ == "__main__":
    main()
