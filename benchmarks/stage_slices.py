"""Recipe stages compared on several batch-norm slices: which differences between stages are real.

``benchmarks/fashion_mnist_supernet.py`` scores each stage's subnets once, batch norm re-estimated on the first
2000 training images; ``benchmarks/bn_samples.py`` shows that other images move a quantised network's accuracy
by tenths of a point. Here the largest, the reference backbone and the smallest of each stage given, at W8A8
and W4A4, are scored on the test split (10,000 images) with batch norm re-estimated on ``--slices`` disjoint
slices of 2000 training images (the first is the one the stage table uses); ``--subnets`` narrows them (an
evaluation takes about a minute on 2 cores). Scores are kept per checkpoint in ``runs/stage_slices/`` (keyed by
its sha256), so an interrupted run resumes. Per stage and subnet: the mean and
standard deviation over slices; per later stage, its difference from the first stage slice by slice (the same
images for both: what the images do to both networks alike cancels), mean and standard deviation.

Usage: python benchmarks/stage_slices.py [--parts supernet_stage12 supernet_stage13 supernet_stage14]
       [--slices 4] [--subnets "largest W8A8" "largest W4A4" ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_result
from fashion_mnist_supernet import CONFIG, SUPERNETS, architectures, evaluate, part_config

IMAGES = 2000  # training images per batch-norm slice (the stage table's count)
SUBNETS = ("largest", "reference", "smallest")
KEYS = [f"{name} W{b}A{b}" for name in SUBNETS for b in (8, 4)]
# scores per checkpoint: <part>.json holding {"sha256": ..., "scores": {key: [accuracy per slice]}}
CACHE = Path("runs/stage_slices")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", nargs="+", default=["supernet_stage12", "supernet_stage13", "supernet_stage14"],
                        help="supernet parts of benchmarks/fashion_mnist_supernet.py (the first: the baseline)")
    parser.add_argument("--slices", type=int, default=4)
    parser.add_argument("--subnets", nargs="+", default=KEYS, choices=KEYS, metavar="KEY",
                        help=f"which subnets at which bits (default: all of {KEYS})")
    args = parser.parse_args(argv)

    from nas import api, zoo
    from nas.config import load_config
    from nas.supernet.training import at_bits, load_supernet

    unknown = [p for p in args.parts if p not in SUPERNETS]
    if unknown:
        sys.exit(f"--parts: expected parts of {list(SUPERNETS)}, got {unknown}")
    cfg = load_config(CONFIG)
    splits, space = api.data_and_space(cfg)
    archs = {name: g for name, g in architectures(space).items() if name in SUBNETS}
    slices = [splits.train.images[i * IMAGES:(i + 1) * IMAGES] for i in range(args.slices)]
    test = (splits.test.images, splits.test.labels)
    accuracy: dict[str, dict[str, list[float]]] = {}
    start = time.perf_counter()
    for part in args.parts:
        checkpoint = api.paths(part_config(cfg, part)).checkpoint
        if not checkpoint.is_file():
            sys.exit(f"{checkpoint}: missing; train it with benchmarks/fashion_mnist_supernet.py --only {part}")
        supernet = load_supernet(space, checkpoint)
        cache = CACHE / f"{part}.json"
        sha = zoo.file_sha256(checkpoint)
        kept = json.loads(cache.read_text()) if cache.is_file() else {}
        scores = kept.get("scores", {}) if kept.get("sha256") == sha else {}
        accuracy[part] = {}
        for key in args.subnets:
            name, bits = key.split(" ")
            if len(scores.get(key, [])) < args.slices:
                g = at_bits(archs[name], int(bits[1]))
                scores[key] = [evaluate(supernet, g, *test, s)["final_exit_accuracy"] for s in slices]
                CACHE.mkdir(parents=True, exist_ok=True)
                cache.write_text(json.dumps({"sha256": sha, "scores": scores}, indent=1))
            accuracy[part][key] = scores[key][: args.slices]
            print(part, key, [round(100 * a, 2) for a in accuracy[part][key]], flush=True)
    base = args.parts[0]
    rows = []
    for part in args.parts:
        for key, accs in accuracy[part].items():
            diffs = [a - b for a, b in zip(accs, accuracy[base][key])]
            rows.append({"part": part, "subnet": key, "accuracies": accs, "mean": statistics.fmean(accs),
                         "std": statistics.stdev(accs), "first_slice": accs[0],
                         "vs_base_mean": statistics.fmean(diffs), "vs_base_std": statistics.stdev(diffs)})
    write_result("stage_slices", {"parts": args.parts, "base": base, "slices": args.slices, "images": IMAGES,
                                  "test_images": len(splits.test), "seconds": time.perf_counter() - start,
                                  "rows": rows})


if __name__ == "__main__":
    main()
