"""What a trial costs outside the evaluator: Optuna's RDB storage against this project's batched one.

One NSGA-II study per storage on a SQLite file, the whole space, the real objective (``run_study``:
decode ~150 parameters, evaluate on the zoo supernet's fast path, ~40 user attributes, the
callbacks), the cost cache filled beforehand. The storages take turns in blocks of ``--block``
trials (ABBA..., so a drift in the machine's load falls on each), each resuming its own study.
Reported per storage: wall time per trial, evaluator time per trial and their difference, the
overhead; and the overhead's ratio to the batched storage's.

Usage: python benchmarks/study_overhead.py [--trials 40] [--block 10]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result
from benchmarks.candidate_eval import FAST, ZOO_NAME, Bench


def storages(url: str) -> dict[str, Any]:
    """Storage name -> a storage on ``url`` with the heartbeats ``storage_for`` sets."""
    import optuna
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback

    from nas.study.storage import storage_for

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        plain = RDBStorage(f"{url}_plain.db", engine_kwargs={"connect_args": {"timeout": 60}},
                           heartbeat_interval=30, grace_period=90,
                           heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(max_retry=1))
    return {"Optuna RDBStorage (a transaction per write)": plain,
            "BatchedRDBStorage + WAL (storage_for)": storage_for(f"{url}_batched.db")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trials", type=int, default=40, help="trials per storage")
    ap.add_argument("--block", type=int, default=10, help="trials per turn")
    args = ap.parse_args()

    import optuna

    from nas import api
    from nas.study.metrics import OBJECTIVES
    from nas.study.study import make_sampler, run_study

    bench = Bench.load()
    cfg = bench.cfg
    evaluated: dict[str, list[float]] = {}
    walls: dict[str, float] = {}
    with api.cost_model(cfg) as cm, tempfile.TemporaryDirectory() as tmp:
        api.warm_cost_cache(cfg, bench.space, cm)
        studies = {}
        for name, storage in storages(f"sqlite:///{tmp}/study").items():
            studies[name] = optuna.create_study(
                study_name="overhead", storage=storage, sampler=make_sampler(cfg.search),
                directions=[OBJECTIVES[o].direction for o in cfg.search.objectives])
            evaluated[name], walls[name] = [], 0.0
        names = list(studies)
        for turn in range(2 * -(-args.trials // args.block)):
            name = names[(0, 1, 1, 0)[turn % 4]]  # ABBA...
            done = len(evaluated[name])
            start = time.perf_counter()
            run_study(studies[name], bench.space, _Timed(bench.evaluator(FAST, cm), evaluated[name]),
                      min(done + args.block, args.trials), progress=False)
            walls[name] += time.perf_counter() - start
            print(f"turn {turn}: {name}: {len(evaluated[name])} trials", flush=True)
    rows = []
    for name in names:
        trials = len(studies[name].trials)
        wall, evaluation = walls[name] / trials, sum(evaluated[name]) / trials
        rows.append({"storage": name, "trials": trials, "wall_s_per_trial": wall,
                     "evaluator_s_per_trial": evaluation, "evaluator_s_median": statistics.median(evaluated[name]),
                     "overhead_s_per_trial": wall - evaluation})
    base = rows[-1]["overhead_s_per_trial"]
    for r in rows:
        r["overhead_ratio_to_batched"] = r["overhead_s_per_trial"] / base
        print(f"{r['storage']}: {r['wall_s_per_trial']:.3f} s a trial, evaluator {r['evaluator_s_per_trial']:.3f} s, "
              f"overhead {r['overhead_s_per_trial']:.3f} s ({r['overhead_ratio_to_batched']:.2f}x)")
    write_result("study_overhead", {"zoo": ZOO_NAME, "bn_images": FAST.bn_images, "sampler": cfg.search.sampler,
                                    "trials_per_storage": args.trials, "block": args.block, "rows": rows})


class _Timed:
    """An evaluator whose calls append their seconds to ``seconds`` (everything else passes through)."""

    def __init__(self, evaluator: Any, seconds: list[float]) -> None:
        self._evaluator, self._seconds = evaluator, seconds

    def __getattr__(self, name: str) -> Any:
        return getattr(self._evaluator, name)

    def __call__(self, genotype: Any) -> Any:
        start = time.perf_counter()
        try:
            return self._evaluator(genotype)
        finally:
            self._seconds.append(time.perf_counter() - start)


if __name__ == "__main__":
    main()
