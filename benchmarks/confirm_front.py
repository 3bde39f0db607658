"""Confirming searched fronts: how much of a Pareto front's accuracy is the luck of its batch-norm images.

A search scores every candidate once, its batch norm re-estimated on the first N training images; which images
those are moves a candidate's accuracy (``benchmarks/bn_samples.py``), and a front is chosen on those values, so
it should hold the candidates the images suited. This benchmark re-scores the NSGA-II studies that
``benchmarks/reference_search.py`` ran (their study files; run it first) with ``api.confirm``: every feasible
Pareto trial at its own threshold on the same validation images, batch norm re-estimated on ``--slices``
disjoint slices of ``--images`` training images the search did not use. As a control, ``--control`` feasible
trials off the front (drawn at random, seeded) are re-scored the same way: off the front, the searched values
should be no luckier than the confirmed ones. Reported per study: each trial's searched and confirmed
accuracy and expected EDP, the mean and largest searched - confirmed difference on and off the front, and how
many front trials stay on the front under the confirmed values.

Usage: python benchmarks/confirm_front.py [--run-dir runs/fmnist_zoo_s12] [--supernet fmnist_mbv2_w025]
       [--slices 4] [--images 2000] [--control 8]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result

# reference_search's NSGA-II studies (folder names under <run-dir>/reference_search)
STUDIES = {"INT8 reference space, fused, NSGA-II": "int8_reference_space_fused_nsga_ii",
           "full space (backbone + per-layer bits), fused, NSGA-II": "full_space_fused_nsga_ii"}


def summary(front: list[dict], control: list[dict], kept: set[int]) -> dict:
    """Searched - confirmed accuracy (fractions) on and off the front, the spread over slices, and how many
    front trials stay on the front under their confirmed values."""
    def diffs(rows: list[dict]) -> list[float]:
        return [r["searched_accuracy"] - r["accuracy"] for r in rows]

    out = {"front_trials": len(front), "stay_on_front": sum(r["trial"] in kept for r in front),
           "front_optimism_mean": statistics.fmean(diffs(front)),
           "front_optimism_max_abs": max(map(abs, diffs(front))),
           "front_std_over_slices_mean": statistics.fmean(r["accuracy_std"] for r in front),
           "front_edp_change_max": max(abs(r["expected_edp"] / r["searched_expected_edp"] - 1) for r in front)}
    if control:
        out |= {"control_trials": len(control), "control_optimism_mean": statistics.fmean(diffs(control)),
                "control_optimism_max_abs": max(map(abs, diffs(control)))}
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--run-dir", default="runs/fmnist_zoo_s12", help="reference_search's --run-dir")
    parser.add_argument("--supernet", default="fmnist_mbv2_w025", help="the zoo supernet the studies searched")
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--images", type=int, default=2000, help="training images per slice")
    parser.add_argument("--control", type=int, default=8, help="feasible trials off the front re-scored too")
    args = parser.parse_args(argv)

    from nas import api, zoo
    from nas.config import load_config
    from nas.report.pareto import confirmed_front
    from nas.study.record import TrialRecord
    from nas.study.storage import sqlite_url
    from nas.study.study import open_study

    results, data, supernet = {}, None, None
    for name, folder in STUDIES.items():
        root = Path(args.run_dir) / "reference_search" / folder
        if not (root / "study.db").is_file():
            sys.exit(f"{root}/study.db: missing; run benchmarks/reference_search.py --supernet {args.supernet} "
                     f"--run-dir {args.run_dir} first")
        cfg = load_config(root / "config.yaml")
        if data is None:
            data = api.data_and_space(cfg)
            supernet = zoo.load_supernet(args.supernet, data[1])
        study = open_study(cfg.search, sqlite_url(root), create=False)
        start = time.perf_counter()
        confirmed = api.confirm(cfg, study, slices=args.slices, images=args.images, supernet=supernet, data=data)
        seconds = time.perf_counter() - start
        on_front = {c.trial for c in confirmed}
        others = [t for t in study.get_trials(deepcopy=False)
                  if t.number not in on_front and (r := TrialRecord.of(t)) is not None and r.feasible]
        picked = sorted(random.Random(0).sample(others, min(args.control, len(others))), key=lambda t: t.number)
        control = api.confirm(cfg, study, slices=args.slices, images=args.images, supernet=supernet, data=data,
                              trials=picked, progress=False)
        front_rows, control_rows = [c.to_dict() for c in confirmed], [c.to_dict() for c in control]
        results[name] = {"folder": str(root), "trials": len(study.trials), "front_seconds": seconds,
                         "val_images": cfg.search.val_samples, "search_bn_images": cfg.search.bn_recalibration_samples,
                         "front": front_rows, "control": control_rows,
                         "summary": summary(front_rows, control_rows, confirmed_front(confirmed))}
        print(name, {k: round(v, 4) for k, v in results[name]["summary"].items()}, flush=True)
    write_result("confirm_front", {"supernet": args.supernet, "zoo_sha256": zoo.entry(args.supernet).sha256,
                                   "slices": args.slices, "images": args.images, "studies": results})


if __name__ == "__main__":
    main()
