"""Keeping freed memory in the process (``nas.study.memory``) against glibc's default, on the
evaluator's fast path.

Child processes time the fast path of ``benchmarks/candidate_eval.py`` (folded, 500 batch-norm images,
2000 validation images, warm cost cache, a fresh evaluator per candidate) on the same random
candidates (after one untimed candidate that warms the process up), with ``EENAS_KEEP_FREED_MEMORY``
1 and 0 in alternation (ABBA... over the rounds, so a drift in the machine's load falls on both).
Reports the median of each phase per setting, their ratios, and the children's peak resident memory.

Usage: python benchmarks/freed_memory.py [--candidates K] [--rounds R]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._common import write_result
from benchmarks.candidate_eval import FAST, PHASES, ZOO_NAME, Bench

SETTINGS = {"kept": "1", "glibc default": "0"}  # EENAS_KEEP_FREED_MEMORY


def child(candidates: int) -> None:
    """Time the fast path on ``candidates`` random candidates; print one JSON line."""
    from nas import api
    from nas.study.memory import keep_freed_memory

    bench = Bench.load()
    space = bench.space
    rng = random.Random(0)
    genotypes = [space.sample(rng) for _ in range(candidates + 1)]  # the first warms the process up: not kept
    times = []
    with api.cost_model(bench.cfg, progress=False) as cm:
        for g in genotypes:
            ev = bench.evaluator(FAST, cm)
            ev.cost(space.layer_graph(g)), ev.cost(space.layer_graph(space.static_genotype(g)))  # warm: not timed
            start = time.perf_counter()
            ev(g)
            times.append({"total": time.perf_counter() - start, **ev.seconds})
    print(json.dumps({"kept": keep_freed_memory(), "times": times[1:],
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--candidates", type=int, default=8, help="random candidates per child (default 8)")
    parser.add_argument("--rounds", type=int, default=4, help="children per setting (default 4)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        return child(args.candidates)
    runs: dict[str, list[dict]] = {name: [] for name in SETTINGS}
    for r in range(args.rounds):
        for name in (list(SETTINGS) if r % 2 == 0 else list(SETTINGS)[::-1]):
            env = os.environ | {"EENAS_KEEP_FREED_MEMORY": SETTINGS[name]}
            out = subprocess.run([sys.executable, __file__, "--child", "--candidates", str(args.candidates)],
                                 env=env, capture_output=True, text=True, check=True).stdout
            runs[name].append(json.loads(out.strip().splitlines()[-1]))
            print(f"round {r + 1}, {name}: median "
                  f"{statistics.median(t['total'] for t in runs[name][-1]['times']):.2f} s", flush=True)
    rows = []
    for name, children in runs.items():
        times = [t for c in children for t in c["times"]]
        rows.append({"setting": name, "malloc_changed": all(c["kept"] for c in children),
                     "median_s": {k: statistics.median(t.get(k, 0.0) for t in times) for k in ("total", *PHASES)},
                     "peak_rss_mb": max(c["peak_rss_mb"] for c in children)})
    kept, default = rows[0]["median_s"], rows[1]["median_s"]
    ratios = {k: default[k] / kept[k] for k in ("total", "batchnorm", "backbone") if kept[k] > 0}
    for row in rows:
        print(f"{row['setting']}: " + ", ".join(f"{k} {v:.3f} s" for k, v in row["median_s"].items())
              + f"; peak RSS {row['peak_rss_mb']:.0f} MB")
    print("default / kept: " + ", ".join(f"{k} {v:.2f}x" for k, v in ratios.items()))
    write_result("freed_memory", {"zoo": ZOO_NAME, "variant": FAST.name, "candidates": args.candidates,
                                  "rounds": args.rounds, "settings": rows, "default_over_kept": ratios,
                                  "load_avg_1min_at_end": round(os.getloadavg()[0], 2)})


if __name__ == "__main__":
    main()
