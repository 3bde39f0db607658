"""Random search vs NSGA-II vs NSGA-II with surrogate pre-screening, on one trained supernet.

Each arm runs the same trial budget in its own study (same seed, same enqueued static baseline) on
the config's supernet, cost model and validation split; the cost cache is filled for the whole
space first so that no arm pays for cold ZigZag runs. Reported per arm: wall time, candidates fully
evaluated (pre-screened ones are skipped), the hypervolume (accuracy x EDP normalised by the static
baseline's EDP, reference accuracy 0) after every trial, and the trials each arm needs to reach
random search's final hypervolume. Writes results/search_samplers.json; ``python benchmarks/render.py``
draws search_samplers.png.

Usage: python benchmarks/search_samplers.py [--config configs/quickstart.yaml] [--trials 80] [--run-dir DIR]
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from optuna.trial import TrialState

from nas import api
from nas.config import CONFIGS_DIR, load_config
from nas.study.hypervolume import hypervolume_curve, trials_to_reach
from nas.study.record import records

ARMS = {"random": {"sampler": "random"}, "nsga2": {"sampler": "nsga2"},
        "nsga2 + pre-screening": {"sampler": "nsga2", "prescreen": True}}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", default=str(CONFIGS_DIR / "quickstart.yaml"))
    ap.add_argument("--trials", type=int, default=80)
    ap.add_argument("--run-dir", default="runs/search_samplers", help="where the supernet and the studies go")
    args = ap.parse_args()
    cfg = load_config(args.config, {"run_dir": args.run_dir})
    data = api.data_and_space(cfg)
    supernet = api.train(cfg, data=data)
    with api.cost_model(cfg) as cm:  # every layer of the space, so the arms compare on search alone
        api.warm_cost_cache(cfg, data[1], cm)
    out_root = Path(cfg.run_dir)
    arms = {}
    for name, settings in ARMS.items():
        run = replace(cfg, run_dir=str(out_root / name.replace(" ", "_").replace("+", "")),
                      search=replace(cfg.search, n_trials=args.trials, study_name="samplers", trial_plots=False,
                                     **settings))
        if api.paths(run).study.exists():
            api.paths(run).study.unlink()
        t0 = time.perf_counter()
        study = api.search(run, supernet, data=data)
        wall = time.perf_counter() - t0
        trials = study.trials
        arms[name] = {"wall_s": wall, "trials": len(trials), "study": study,
                      "evaluated": sum(t.state == TrialState.COMPLETE for t in trials),
                      "prescreened": sum(t.state == TrialState.PRUNED for t in trials)}
        print(f"{name}: {wall:.0f} s, {arms[name]['evaluated']} evaluated, {arms[name]['prescreened']} pre-screened")
    baseline = next(r for r in records(arms["nsga2"]["study"].trials) if r.baseline == "static")
    edp_ref = baseline.expected_edp_j_cycles
    for arm in arms.values():
        arm["hypervolume"] = hypervolume_curve(arm.pop("study").trials, 0.0, edp_ref)
    target = arms["random"]["hypervolume"][-1]
    for arm in arms.values():
        arm["trials_to_random_final"] = trials_to_reach(arm["hypervolume"], target)
    write_result("search_samplers", {"config": str(Path(args.config).resolve().relative_to(CONFIGS_DIR.parent)),
                                     "trials": args.trials, "edp_reference_j_cycles": edp_ref,
                                     "random_final_hypervolume": target, "arms": arms})


if __name__ == "__main__":
    main()
