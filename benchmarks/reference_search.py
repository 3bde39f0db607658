"""The reference's search and what searching and modelling more buys (issue 7, study 3).

One trained supernet (``configs/fashion_mnist_supernet.yaml``: the searchable reference space on
Fashion-MNIST, per-layer 4/8-bit QAT) and the reference's constraints (final-exit ratio and exit
overhead at most 0.5). Five studies, each in its own resumable study file:

- reference setting: NSGA-II over exits A..J, branch depths and the threshold, with the backbone
  pinned to the reference's and every bit-width to 8 (``search.fixed``), layer-by-layer schedule;
  the same with random search (same budget and seed); the same NSGA-II with the layer-fused schedule;
- the full space: NSGA-II with the searched backbone (kernels, expansions, skipped blocks) and
  per-layer 4/8 bits, layer-fused; random search on it. Every full-space candidate needs its own
  inference, so these score on the first 2000 validation images with batch-norm statistics from 1000
  training images (the test-split check below uses all of both).

Every study starts with the static network (reference backbone, INT8, final exit only); the
reference-setting ones also with the published D, F, I + K network. Reported per study: the Pareto
front (validation accuracy vs expected EDP), the hypervolume after every trial (reference point:
accuracy 0 and that study's static EDP) and, against random search, the trials NSGA-II needs to
reach random's final hypervolume; and the headline: the best expected-EDP reduction against the
static INT8 network among the feasible trials within 1 point of its validation accuracy, against
the static network under the same schedule and against the reference's (layer-by-layer). The
chosen networks and the static one are then measured on the test split, the fused studies' also
under the layer-by-layer schedule (the same network under the reference's cost model).

Needs the trained supernet: ``python benchmarks/fashion_mnist_supernet.py`` (or ``nas train
--config configs/fashion_mnist_supernet.yaml``), then pass its folder. Interrupted studies resume;
delete ``<run-dir>/reference_search`` to start over. Writes results/reference_search.json;
``python benchmarks/render.py`` draws reference_search_pareto.png and reference_search_hypervolume.png.
Usage: python benchmarks/reference_search.py [--run-dir runs/fashion_mnist_supernet]
       [--trials-reference 100] [--trials-full 80] [--quick]
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import figures
from _common import trained_supernet, write_result
from optuna.trial import FrozenTrial, TrialState

from nas import api
from nas.cli import parse_overrides
from nas.config import CONFIGS_DIR, RunConfig, load_config
from nas.study.evaluator import CandidateEvaluator
from nas.study.hypervolume import hypervolume_curve, trials_to_reach
from nas.study.record import TrialRecord, records
from nas.study.study import pareto_trials

REFERENCE = {"backbone": "reference", "bits": 8}
LBL = {"mode": "layer_by_layer", "tile_rows": None}
FUSED = {"mode": "fused", "tile_rows": 16}
# name -> (pinned parameters, schedule, sampler, which budget, the random twin it is compared with)
STUDIES: dict[str, tuple[dict, dict, str, str, str | None]] = {
    "INT8 reference space, layer-by-layer, NSGA-II": (REFERENCE, LBL, "nsga2", "reference",
                                                       "INT8 reference space, layer-by-layer, random"),
    "INT8 reference space, layer-by-layer, random": (REFERENCE, LBL, "random", "reference", None),
    "INT8 reference space, fused, NSGA-II": (REFERENCE, FUSED, "nsga2", "reference", None),
    "full space (backbone + per-layer bits), fused, NSGA-II": ({}, FUSED, "nsga2", "full",
                                                               "full space (backbone + per-layer bits), fused, random"),
    "full space (backbone + per-layer bits), fused, random": ({}, FUSED, "random", "full", None),
}
REFERENCE_STATIC = "INT8 reference space, layer-by-layer, NSGA-II"  # the reference's static network and schedule
MAX_LOSS = 0.01  # accuracy points (as a fraction) below the static network


FULL_SCORING = {"val_samples": 2000, "bn_recalibration_samples": 1000}  # every full-space candidate runs inference


def study_config(cfg: RunConfig, name: str, trials: int) -> RunConfig:
    fixed, schedule, sampler, _budget, _twin = STUDIES[name]
    slug = name.replace(" (backbone + per-layer bits)", "").replace(", ", "_").replace(" ", "_").replace("-", "_")
    enqueue = ("static", "reference_dfik") if fixed else ("static",)
    return replace(cfg, run_dir=str(Path(cfg.run_dir) / "reference_search" / slug.lower()),
                   cost=replace(cfg.cost, schedule=replace(cfg.cost.schedule, **schedule)),
                   search=replace(cfg.search, n_trials=trials, sampler=sampler, fixed=fixed, enqueue=enqueue,
                                  study_name="study3", trial_plots=False, **({} if fixed else FULL_SCORING)))


def static_trial(trials: list[FrozenTrial]) -> TrialRecord:
    return next(r for r in records(trials) if r.baseline == "static")


def best_within(trials: list[FrozenTrial], static: TrialRecord) -> TrialRecord | None:
    """The feasible trial of lowest expected EDP within ``MAX_LOSS`` of the static accuracy."""
    floor = static.accuracy - MAX_LOSS
    ok = [r for r in records(trials) if r.feasible and r.accuracy >= floor - 1e-12]
    return min(ok, key=lambda r: r.expected_edp_j_cycles, default=None)


def point(r: TrialRecord) -> dict:
    return {"trial": r.number, "accuracy": r.accuracy, "expected_edp_j_cycles": r.expected_edp_j_cycles,
            "exits": r.exits, "threshold": r.threshold, "feasible": r.feasible}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--run-dir", default="runs/fashion_mnist_supernet", help="folder holding the trained supernet.pt")
    ap.add_argument("--trials-reference", type=int, default=100, help="budget of the reference-setting studies")
    ap.add_argument("--trials-full", type=int, default=80, help="budget of the full-space studies")
    ap.add_argument("--only", nargs="+", metavar="TEXT", help="run only the studies whose names contain TEXT, "
                    "no report (e.g. two processes: --only 'reference space' and --only 'full space'; then a "
                    "plain run reports)")
    ap.add_argument("--supernet", metavar="NAME", help="a zoo supernet (nas zoo) instead of <run-dir>/supernet.pt")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a key of the supernet config, e.g. --set data.name=cifar10 --set data.root=PATH")
    ap.add_argument("--quick", action="store_true", help="500 images, 6 trials per study, no JSON: a smoke test")
    args = ap.parse_args()
    quick = {"data.limit_test": 500, "data.n_val": 500, "search.bn_recalibration_samples": 200} if args.quick else {}
    reference = load_config(CONFIGS_DIR / "reference_fashion_mnist.yaml")
    cfg = load_config(CONFIGS_DIR / "fashion_mnist_supernet.yaml",
                      {"run_dir": args.run_dir, **quick, **parse_overrides(args.set)})
    cfg = replace(cfg, constraints=reference.constraints,
                  search=replace(cfg.search, population_size=reference.search.population_size))
    splits, space = data = api.data_and_space(cfg)
    supernet = trained_supernet(cfg, space, args.supernet)
    budgets = {"reference": 6 if args.quick else args.trials_reference, "full": 6 if args.quick else args.trials_full}
    with api.cost_model(cfg) as cm:  # cold ZigZag runs once, before any study, so studies compare on search alone
        for schedule in (LBL, FUSED):
            api.warm_cost_cache(replace(cfg, cost=replace(cfg.cost, schedule=replace(cfg.cost.schedule, **schedule))),
                                space, cm)

    studies: dict[str, dict] = {}
    for name, (_fixed, _schedule, _sampler, budget, _twin) in STUDIES.items():
        if args.only and not any(text in name for text in args.only):
            continue
        run = study_config(cfg, name, budgets[budget])
        study = api.search(run, supernet, data=data)
        trials = sorted(study.get_trials(deepcopy=False), key=lambda t: t.number)
        # wall time from the trials' own timestamps: right across resumed invocations
        wall = (max(t.datetime_complete for t in trials if t.datetime_complete)
                - min(t.datetime_start for t in trials if t.datetime_start)).total_seconds()
        studies[name] = {"config": run, "study": study, "trials": trials, "wall_s": wall}
        print(f"{name}: {len(trials)} trials, {wall:.0f} s from first start to last end", flush=True)
    if args.only:
        return

    ref_static = static_trial(studies[REFERENCE_STATIC]["trials"])
    ref_edp = ref_static.expected_edp_j_cycles
    results, chosen = {}, {}
    for name, s in studies.items():
        trials, static = s["trials"], static_trial(s["trials"])
        static_edp = static.expected_edp_j_cycles
        best = best_within(trials, static)
        curve = hypervolume_curve(trials, 0.0, static_edp)
        results[name] = {
            "pinned": STUDIES[name][0], "schedule": STUDIES[name][1]["mode"], "sampler": STUDIES[name][2],
            "trials": len(trials), "complete": sum(t.state == TrialState.COMPLETE for t in trials),
            "feasible": sum(r.feasible for r in records(trials)),
            "wall_s": s["wall_s"],
            "static": {"val_accuracy": static.accuracy, "edp_j_cycles": static_edp},
            "pareto": [point(r) for r in records(pareto_trials(s["study"]))],
            "hypervolume": curve,
            "best_within_1_point": None if best is None else {
                **point(best), "reduction_vs_static_same_schedule": static_edp / best.expected_edp_j_cycles,
                "reduction_vs_reference_static": ref_edp / best.expected_edp_j_cycles,
                "bits": sorted(set(best.genotype.weight_bits) | set(best.genotype.act_bits))},
        }
        if best is not None:
            chosen[name] = (best.genotype, s["config"])
        best_1pt = results[name]["best_within_1_point"]
        print(f"{name}: final HV {curve[-1]:.4f}; best within 1 point: "
              f"{best_1pt and round(best_1pt['reduction_vs_static_same_schedule'], 2)}x",
              flush=True)
    for name, r in results.items():
        twin = STUDIES[name][4]
        if twin:
            target = results[twin]["hypervolume"][-1]
            r["random_twin"] = twin
            r["random_final_hypervolume"] = target
            r["trials_to_random_final"] = trials_to_reach(r["hypervolume"], target)
            r["random_trials_to_own_final"] = trials_to_reach(results[twin]["hypervolume"], target)

    # the chosen networks and the static one, measured on the test split (full calibration, every test
    # image); fused studies' networks also under the layer-by-layer schedule (same network, other cost model)
    calibration = api.calibration_images(cfg, splits)
    with api.cost_model(cfg, progress=False) as cm:
        test = CandidateEvaluator(space, supernet, splits.test, cm, cfg.constraints,
                                  batch_size=cfg.search.eval_batch_size, calibration=calibration)
        evaluators = {sched["mode"]: test.with_schedule(replace(cfg.cost.schedule, **sched))
                      for sched in (LBL, FUSED)}  # one logits cache: the static network runs inference once
        for name, (genotype, run) in chosen.items():
            modes = {"test": run.cost.schedule.mode} | ({"test_layer_by_layer": "layer_by_layer"}
                                                       if run.cost.schedule.mode == "fused" else {})
            for key, mode in modes.items():
                ev, st = evaluators[mode](genotype), evaluators[mode](space.baselines()["static"])
                results[name]["best_within_1_point"][key] = {
                    "accuracy": ev.stats.accuracy, "static_accuracy": st.stats.accuracy,
                    "exit_ratios": list(ev.stats.ratios), "expected_edp_j_cycles": ev.expected.expected_edp,
                    "static_edp_j_cycles": st.expected.expected_edp,
                    "reduction_vs_static_same_schedule": st.expected.expected_edp / ev.expected.expected_edp,
                    "feasible": all(v <= 0 for v in ev.constraints.values())}
                print(name, key, {k: v for k, v in results[name]["best_within_1_point"][key].items()
                                  if k != "exit_ratios"}, flush=True)
    payload = {"config": "configs/fashion_mnist_supernet.yaml (constraints and population size of "
                          "reference_fashion_mnist.yaml)", "max_accuracy_loss": MAX_LOSS, "val_images": len(splits.val),
               "test_images": len(splits.test), "reference_static_edp_j_cycles": ref_edp,
               "reference_static_study": REFERENCE_STATIC, "studies": results}
    if args.quick:  # plots and JSON beside the quick studies, not in results/
        out = Path(cfg.run_dir) / "reference_search"
        figures.reference_search(payload, out)
        (out / "reference_search.json").write_text(json.dumps(payload, indent=2))
        print(f"wrote {out}/reference_search*.png and .json")
        return
    write_result("reference_search", payload)  # the figures: python benchmarks/render.py


if __name__ == "__main__":
    main()
