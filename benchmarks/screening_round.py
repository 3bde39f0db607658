"""One screening round timed as it runs now and with the parts it replaced in Optuna put back.

Variants: ``now`` (NSGA-II told the space, ``KnownSpaceNSGAII``, and the screening study in
``PredictedTrialsStorage``); ``optuna storage`` (the same in Optuna's ``InMemoryStorage``);
``optuna storage, optuna's NSGA-II`` (also Optuna's NSGA-II, inferring its space). Loads the
finished trials of a study file (default: the 8-pick screened arm of ``search_wall_time``, seed 0)
into a study in memory and runs ``Screener.round`` on a fresh copy per variant, in turns over
``--repeats``; prints each variant's median seconds and whether all proposed the same picks.
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
from typing import Any

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
    told = screening.KnownSpaceNSGAII

    def inferred(space: Any, **kwargs: Any) -> optuna.samplers.NSGAIISampler:  # Optuna's, not told the space
        return optuna.samplers.NSGAIISampler(**kwargs)

    create_study = optuna.create_study

    def in_optuna_storage(**kwargs: Any) -> optuna.Study:  # the screening study, in Optuna's storage
        return create_study(**{**kwargs, "storage": optuna.storages.InMemoryStorage()})

    variants: dict[str, tuple[Any, Any]] = {"now": (told, create_study), "optuna storage": (told, in_optuna_storage),
                "optuna storage, optuna's NSGA-II": (inferred, in_optuna_storage)}
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    picks: dict[str, list[dict]] = {}
    try:
        for _ in range(args.repeats):
            for name, (sampler, create) in variants.items():
                study = create_study(directions=source.directions)
                study.add_trials(trials)
                screening.KnownSpaceNSGAII = sampler  # type: ignore[misc]
                optuna.create_study = create
                start = time.perf_counter()
                picked = screening.Screener(seed=0).round(study, space)
                optuna.create_study = create_study
                seconds[name].append(time.perf_counter() - start)
                picks[name] = [t.params for t in picked]
    finally:
        screening.KnownSpaceNSGAII = told  # type: ignore[misc]
        optuna.create_study = create_study
    print(f"{len(trials)} trials from {args.study}")
    now = statistics.median(seconds["now"])
    for name, s in seconds.items():
        print(f"{name}: median {statistics.median(s):.2f} s a round ({len(picks[name])} picks), "
              f"{statistics.median(s) / now:.2f}x the time of now")
    print(f"same picks in every variant: {all(p == picks['now'] for p in picks.values())}")


if __name__ == "__main__":
    main()
