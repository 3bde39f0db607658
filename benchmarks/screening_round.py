"""One screening round timed with NSGA-II told the space (``KnownSpaceNSGAII``) and inferring it (Optuna's own).

Loads the complete trials of a study file (default: the 8-pick screened arm of ``search_wall_time``,
seed 0) into a study in memory and runs ``Screener.round`` on a fresh copy per variant, ABAB over
``--repeats``; prints each variant's median seconds and whether the two proposed the same picks.
Prints only (no results file): the figure is a diagnostic, not a BENCHMARKS section.

Usage: python benchmarks/screening_round.py [--study runs/search_wall_time/nsga2_screening_8_picks_0/study.db]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.candidate_eval import ZOO_NAME


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--study", default="runs/search_wall_time/nsga2_screening_8_picks_0/study.db")
    ap.add_argument("--name", default="wall_time", help="study name in the file")
    ap.add_argument("--repeats", type=int, default=2)
    args = ap.parse_args()

    import optuna

    from nas import api, zoo
    from nas.study import screening

    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    space = api.data_and_space(zoo.config(ZOO_NAME))[1]
    source = optuna.load_study(study_name=args.name, storage=f"sqlite:///{args.study}")
    trials = [t for t in source.get_trials() if t.state.is_finished()]
    told = screening.KnownSpaceNSGAII.infer_relative_search_space
    inferred = optuna.samplers.NSGAIISampler.infer_relative_search_space
    seconds: dict[str, list[float]] = {"told": [], "inferred": []}
    picks: dict[str, list[dict]] = {}
    for _ in range(args.repeats):
        for name, method in (("told", told), ("inferred", inferred)):
            screening.KnownSpaceNSGAII.infer_relative_search_space = method  # type: ignore[method-assign]
            study = optuna.create_study(directions=source.directions)
            study.add_trials(trials)
            start = time.perf_counter()
            picked = screening.Screener(seed=0).round(study, space)
            seconds[name].append(time.perf_counter() - start)
            picks[name] = [t.params for t in picked]
    screening.KnownSpaceNSGAII.infer_relative_search_space = told  # type: ignore[method-assign]
    print(f"{len(trials)} trials from {args.study}")
    for name, s in seconds.items():
        print(f"space {name}: median {statistics.median(s):.2f} s a round ({len(picks[name])} picks)")
    print(f"same picks: {picks['told'] == picks['inferred']}; "
          f"inferred / told: {statistics.median(seconds['inferred']) / statistics.median(seconds['told']):.2f}x")


if __name__ == "__main__":
    main()
