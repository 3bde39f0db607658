"""What it costs to evaluate one candidate with an unseen backbone and bits, phase by phase.

The search's own evaluator (:class:`nas.study.evaluator.CandidateEvaluator`) on the zoo supernet and
Fashion-MNIST: 2000 validation images, every exit head of the candidate on every image (the backbone
keeps the pooled features of every mount, so a later head on it needs no inference), batch-norm
statistics re-estimated per candidate, the cost model on a warm cache. Variants run side by side, interleaved
candidate by candidate, each call on a fresh evaluator (no logits cached across candidates); then,
as a control, the fast path on the same candidates back to back (a study's order: whether the
interleaved variants, which allocate batches of 500, slow it). Each
variant's accuracy, exit ratios and per-exit accuracies are compared with the first variant's (the
exact path: the extracted network as exported, NCHW, in batches of 500, 2000 batch-norm images).
``--fidelity N`` then runs the unfolded path (the exact path's results bit for bit, in cache-sized
batches), the default (folded, int8), 500 and 250 batch-norm images (the fast path) in int8, and the
fast path in float (before int8) on N candidates for the fidelity figures (the timed candidates
among them); their records ("exact": the unfolded path) are the predictors' data.

Usage: python benchmarks/candidate_eval.py [--candidates K] [--fidelity N] [--timing-only]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from benchmarks._common import RESULTS, SOURCE, write_result

if TYPE_CHECKING:
    from nas.study.evaluator import CandidateEvaluator

ZOO_NAME = "fmnist_mbv2_w025"
VAL_IMAGES = 2000
PHASES = ("extract", "batchnorm", "backbone", "heads", "cost")


@dataclass(frozen=True)
class Variant:
    """One way of running the evaluator."""

    name: str
    bn_images: int
    folded: bool
    batch_size: int
    int8: bool = False


EXACT = Variant("extracted network, NCHW, batches of 500, 2000 batch-norm images (the exact path)", 2000, False, 500)
UNFOLDED = Variant("extracted network, NCHW, batches of 100, 2000 batch-norm images (the default before folding)",
                   2000, False, 100)
DEFAULT = Variant("folded, int8, NHWC, batches of 100, 2000 batch-norm images (the default)", 2000, True, 100, True)
MORE_BN = Variant("folded, int8, NHWC, batches of 100, 500 batch-norm images", 500, True, 100, True)
FAST = Variant("folded, int8, NHWC, batches of 100, 250 batch-norm images (the fast path)", 250, True, 100, True)
FAST_FLOAT = Variant("folded, float, NHWC, batches of 100, 250 batch-norm images (the fast path before int8)",
                     250, True, 100)
VARIANTS = [EXACT, UNFOLDED, DEFAULT, MORE_BN, FAST, FAST_FLOAT]
FIDELITY = {"default": DEFAULT, "more_bn": MORE_BN, "fast": FAST, "fast_float": FAST_FLOAT}  # against the exact path


@dataclass(frozen=True)
class Bench:
    """The zoo supernet, its space and data, as every timed evaluator here sees them."""

    cfg: Any
    splits: Any
    space: Any
    supernet: Any
    val: Any

    @classmethod
    def load(cls) -> Bench:
        """The zoo run's configuration (2000 validation images), its data and supernet; the configured threads."""
        from nas import api, zoo

        cfg = zoo.config(ZOO_NAME, {"search": {"val_samples": VAL_IMAGES}})
        torch.set_num_threads(cfg.train.threads or torch.get_num_threads())
        splits, space = api.data_and_space(cfg)
        return cls(cfg, splits, space, zoo.load_supernet(ZOO_NAME, space), splits.val.head(VAL_IMAGES))

    def evaluator(self, v: Variant, cost_model: Any, calibration: torch.Tensor | None = None) -> CandidateEvaluator:
        """A fresh evaluator (no cached logits) running ``v``; batch norm re-estimated on ``calibration``
        (default: the first ``v.bn_images`` training images, as a search does)."""
        from nas.study.evaluator import CandidateEvaluator

        cfg = self.cfg
        if calibration is None:
            calibration = self.splits.train.images[: v.bn_images]
        return CandidateEvaluator(self.space, self.supernet, self.val, cost_model, cfg.constraints,
                                  batch_size=v.batch_size, operating_point=cfg.cost.operating_point,
                                  schedule=cfg.cost.schedule, calibration=calibration, folded=v.folded, int8=v.int8)


def differences(got: list[Any], base: list[Any]) -> dict[str, float]:
    """Max and mean absolute differences of accuracy (fraction), exit ratios and per-exit accuracy
    between two lists of evaluations of the same candidates (per-exit: each exit on every sample)."""
    acc = [abs(a.stats.accuracy - b.stats.accuracy) for a, b in zip(got, base)]
    ratios = [abs(x - y) for a, b in zip(got, base) for x, y in zip(a.stats.ratios, b.stats.ratios)]
    exits = [abs(x - y) for a, b in zip(got, base)
             for x, y in zip(a.stats.exit_accuracy_all, b.stats.exit_accuracy_all)]
    return {"candidates": len(got), "accuracy_max_abs_diff": max(acc), "accuracy_mean_abs_diff": statistics.fmean(acc),
            "exit_ratio_max_abs_diff": max(ratios), "exit_ratio_mean_abs_diff": statistics.fmean(ratios),
            "exit_accuracy_max_abs_diff": max(exits), "exit_accuracy_mean_abs_diff": statistics.fmean(exits)}


def every_head_seconds(ev: Any, genotype: Any) -> float:
    """Seconds to run every head variant the space can mount on ``genotype``'s backbone (each mount,
    depth and bit-width pair) on the features the evaluator kept: what its heads phase cost before it
    ran only the candidate's own heads."""
    from search_spaces.genotype import HeadKey

    entry = ev._heads[(genotype.backbone, genotype.weight_bits, genotype.act_bits)]
    bits = tuple(ev.space.options.bits_choices)
    variants = [(HeadKey.parse(k)[0], HeadKey.parse(k)[1], w, a) for k in ev.supernet.heads for w in bits for a in bits]
    t = time.perf_counter()
    ev._run_heads(entry, variants)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=8, help="random candidates timed per variant (default 8)")
    parser.add_argument("--fidelity", type=int, default=100,
                        help="candidates on which the fast path is compared with the exact one (default 100)")
    parser.add_argument("--timing-only", action="store_true",
                        help="re-time the variants (an idle machine) and keep the fidelity figures and records of "
                             "the last results file")
    args = parser.parse_args(argv)
    kept = json.loads((RESULTS / "candidate_eval.json").read_text()) if args.timing_only else None
    if kept is not None:
        args.fidelity = 0

    from nas import api
    from search_spaces.modules.folded import int8_available

    bench = Bench.load()
    cfg, space = bench.cfg, bench.space
    rng = random.Random(0)
    candidates = [space.sample(rng) for _ in range(max(args.candidates, args.fidelity))]

    with api.cost_model(cfg, progress=False) as cm:
        def evaluator(v: Variant) -> CandidateEvaluator:
            return bench.evaluator(v, cm)

        warm = evaluator(EXACT)
        start = time.perf_counter()
        for g in candidates:  # warm the cost cache: what is timed is a warm lookup, as in a long study
            warm.cost(space.layer_graph(g)), warm.cost(space.layer_graph(space.static_genotype(g)))
        print(f"cost cache warmed for {len(candidates)} candidates in {time.perf_counter() - start:.0f} s", flush=True)

        times: dict[str, list[dict[str, float]]] = {v.name: [] for v in VARIANTS}
        results: dict[str, list[Any]] = {v.name: [] for v in VARIANTS}

        def run(i: int, g: Any, variants: list[Variant], timed: bool) -> None:
            for v in variants:
                ev = evaluator(v)
                t = time.perf_counter()
                results[v.name].append(ev(g))
                if timed:
                    times[v.name].append({"total": time.perf_counter() - t, **ev.seconds,
                                          "every_head": every_head_seconds(ev, g)})
            if timed or (i + 1) % 10 == 0:
                print(f"candidate {i + 1}/{len(candidates)}: "
                      f"accuracy default {results[DEFAULT.name][-1].stats.accuracy:.4f}, "
                      f"fast {results[FAST.name][-1].stats.accuracy:.4f}", flush=True)

        for i, g in enumerate(candidates[: args.candidates]):
            run(i, g, VARIANTS, True)
        # control, timed right after: the fast path's candidates back to back, no other variant between them
        # (as in a study)
        alone = Variant(f"{FAST.name}, its candidates back to back", FAST.bn_images, FAST.folded, FAST.batch_size,
                        FAST.int8)
        times[alone.name], results[alone.name] = [], []
        for g in candidates[: args.candidates]:
            ev = evaluator(alone)
            t = time.perf_counter()
            results[alone.name].append(ev(g))
            times[alone.name].append({"total": time.perf_counter() - t, **ev.seconds})
        load = round(os.getloadavg()[0], 2)
        for i, g in enumerate(candidates[args.candidates :], start=args.candidates):  # fidelity only: not timed
            run(i, g, [UNFOLDED, *FIDELITY.values()], False)
        rows = []
        for v in (*VARIANTS, alone):
            keys = ("total", *PHASES, *(("every_head",) if "every_head" in times[v.name][0] else ()))
            med = {k: statistics.median(p.get(k, 0.0) for p in times[v.name]) for k in keys}
            rows.append({"variant": v.name, "bn_images": v.bn_images, "folded": v.folded,
                         "batch_size": v.batch_size, "median_s": med,
                         "vs_exact": differences(results[v.name][: args.candidates], results[EXACT.name])})
            print(f"{v.name}: median {med['total']:.2f} s (" + ", ".join(f"{k} {med[k]:.2f}" for k in PHASES) + ")")
        # on every candidate: UNFOLDED gives the exact path's results bit for bit, in a fifth of its time
        fidelity = {name: kept[f"{name}_vs_exact"] if kept else differences(results[v.name], results[UNFOLDED.name])
                    for name, v in FIDELITY.items()}
        for name, fid in fidelity.items():
            print(f"{name} vs exact on {fid['candidates']} candidates: " + ", ".join(
                f"{k} {v:.4f}" for k, v in fid.items() if k != "candidates"))
    from nas import zoo

    # the supernet that scored the records (--timing-only keeps the last file's records, and so its supernet)
    records_sha = kept.get("records_zoo_sha256") if kept else zoo.entry(ZOO_NAME).sha256
    # the commit that measured the fidelity figures and records (--timing-only keeps the last file's)
    fidelity_commit = kept.get("fidelity_commit", kept["commit"]) if kept else SOURCE[0]
    write_result("candidate_eval", {"zoo": ZOO_NAME, "records_zoo_sha256": records_sha,
                                    "fidelity_commit": fidelity_commit,
                                    "val_images": VAL_IMAGES, "heads": "candidate",
                                    "threads": torch.get_num_threads(), "int8_available": int8_available(),
                                    "candidates": args.candidates, "variants": rows, "exact": EXACT.name,
                                    **{name: v.name for name, v in FIDELITY.items()},
                                    **{f"{name}_vs_exact": fid for name, fid in fidelity.items()},
                                    "records": kept["records"] if kept else [
        {"genotype": g.to_dict(), **{key: {"accuracy": r.stats.accuracy, "ratios": list(r.stats.ratios),
                                          "exit_accuracy_all": list(r.stats.exit_accuracy_all)}
                                    for key, r in (("exact", e), ("fast", f))}}  # really evaluated: data for predictors
        for g, e, f in zip(candidates, results[UNFOLDED.name], results[FAST.name])],
        "alone": alone.name, "load_avg_1min_after_timing": load})


if __name__ == "__main__":
    main()
