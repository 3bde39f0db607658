"""What it costs to evaluate one candidate with an unseen backbone and bits, phase by phase.

The search's own evaluator (:class:`nas.objectives.CandidateEvaluator`) on the zoo supernet and
Fashion-MNIST: 2000 validation images, every exit head the space can mount, batch-norm statistics
re-estimated per candidate, the cost model on a warm cache. Variants run side by side on the same
random candidates, each with a fresh evaluator (no logits cached across candidates); each variant's
accuracy and exit ratios are compared with the first variant's.

Usage: python benchmarks/candidate_eval.py [--candidates K]
"""

from __future__ import annotations

import argparse
import random
import statistics
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from benchmarks._common import write_result  # noqa: E402

ZOO_NAME = "fmnist_mbv2_w025"
VAL_IMAGES = 2000
PHASES = ("extract", "batchnorm", "backbone", "heads", "cost")


@dataclass(frozen=True)
class Variant:
    """One way of running the evaluator."""

    name: str
    bn_images: int
    batch_size: int


VARIANTS = [Variant("2000 batch-norm images, batches of 500 (the Fashion-MNIST config)", 2000, 500),
            Variant("1000 batch-norm images", 1000, 500),
            Variant("500 batch-norm images", 500, 500),
            Variant("250 batch-norm images", 250, 500),
            Variant("500 batch-norm images, batches of 1000", 500, 1000)]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=8, help="random candidates timed per variant (default 8)")
    args = parser.parse_args(argv)

    from nas import api, zoo
    from nas.objectives import CandidateEvaluator

    cfg = zoo.config(ZOO_NAME, {"search": {"val_samples": VAL_IMAGES}})
    torch.set_num_threads(cfg.train.threads or torch.get_num_threads())
    splits, space = api.data_and_space(cfg)
    supernet = zoo.load_supernet(ZOO_NAME, space)
    val = splits.val.head(VAL_IMAGES)
    rng = random.Random(0)
    candidates = [space.sample(rng) for _ in range(args.candidates)]

    with api.cost_model(cfg, progress=False) as cm:
        def evaluator(v: Variant) -> CandidateEvaluator:
            return CandidateEvaluator(space, supernet, val, cm, cfg.constraints, v.batch_size, cfg.cost.operating_point,
                                      api.schedule_settings(cfg), splits.train.images[: v.bn_images])

        slow = evaluator(VARIANTS[0])
        start = time.perf_counter()
        for g in candidates:  # warm the cost cache: what is timed is a warm lookup, as in a long study
            slow.cost(space.layer_graph(g)), slow.cost(space.layer_graph(space.static_genotype(g)))
        print(f"cost cache warmed for {len(candidates)} candidates in {time.perf_counter() - start:.0f} s")

        rows, results = [], {}
        for v in VARIANTS:  # interleaved per candidate would mix caches; each variant gets fresh evaluators
            per = []
            for g in candidates[: args.candidates]:
                ev = evaluator(v)
                t = time.perf_counter()
                result = ev(g)
                per.append({"total": time.perf_counter() - t, **ev.seconds})
                results.setdefault(v.name, []).append(result)
            row = {"variant": v.name, "bn_images": v.bn_images, "batch_size": v.batch_size,
                   "median_s": {k: statistics.median(p.get(k, 0.0) for p in per) for k in ("total", *PHASES)}}
            rows.append(row)
            print(f"{v.name}: median {row['median_s']['total']:.2f} s ("
                  + ", ".join(f"{k} {row['median_s'][k]:.2f}" for k in PHASES) + ")")
        base = results[VARIANTS[0].name]
        for row in rows:
            got = results[row["variant"]]
            acc = [abs(a.stats.accuracy - b.stats.accuracy) for a, b in zip(got, base)]
            ratios = [abs(x - y) for a, b in zip(got, base) for x, y in zip(a.stats.ratios, b.stats.ratios)]
            row["vs_first_variant"] = {"candidates": len(got), "accuracy_max_abs_diff": max(acc),
                               "accuracy_mean_abs_diff": statistics.fmean(acc),
                               "exit_ratio_max_abs_diff": max(ratios), "exit_ratio_mean_abs_diff": statistics.fmean(ratios)}
    write_result("candidate_eval", {"zoo": ZOO_NAME, "val_images": VAL_IMAGES, "threads": torch.get_num_threads(),
                                    "candidates": args.candidates, "variants": rows})


if __name__ == "__main__":
    main()
