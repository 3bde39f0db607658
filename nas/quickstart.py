"""The quickstart: the whole pipeline on the built-in synthetic data, in a few minutes on 2 cores."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from nas import api
from nas.config import CONFIGS_DIR, RunConfig, load_config
from nas.study.storage import sqlite_url
from nas.supernet.calibrate import early_exit_stats

QUICKSTART_CONFIG = CONFIGS_DIR / "quickstart.yaml"  # synthetic data, a small supernet trained first
FASHION_MNIST_CONFIG = CONFIGS_DIR / "quickstart_fashion_mnist.yaml"  # Fashion-MNIST, the zoo supernet


def choose_config() -> tuple[Path, str]:
    """The quickstart's config and why: Fashion-MNIST with the zoo supernet where the dataset is
    installed (its ``data.root`` exists), else the built-in synthetic data."""
    root = load_config(FASHION_MNIST_CONFIG).data.root
    if root and Path(root).is_dir():
        return FASHION_MNIST_CONFIG, f"Fashion-MNIST found at {root}: the shipped zoo supernet, nothing to train"
    return QUICKSTART_CONFIG, (f"Fashion-MNIST not found at {root} (on Debian: apt-get install dataset-fashion-mnist), "
                               "so the built-in synthetic data and a small supernet trained first")


def _step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def constraint_summary(cfg: RunConfig) -> str:
    """The active constraints as ``name <= limit`` (or "none")."""
    active = [f"{k} <= {v:g}" for k, v in vars(cfg.constraints).items() if v is not None]
    return ", ".join(active) or "none"


def quickstart(config: str | Path | None = None, overrides: dict[str, Any] | None = None,
               progress: bool = True) -> dict[str, Any]:
    """Train (or take the zoo supernet), search, report, export, reload (:func:`nas.api.run`); print
    each result. ``config``: None chooses one (:func:`choose_config`). Returns the figures printed."""
    t0 = time.time()
    if config is None:
        config, why = choose_config()
        print(f"config {Path(config).name}: {why}", flush=True)
    cfg = load_config(config, overrides)

    def announce(step: str, out: api.RunOutcome) -> None:
        if step == "data":
            _step(f"data and search space ({cfg.data.name}, {cfg.space.name})")
        elif step == "train":
            assert out.splits is not None and out.space is not None
            print(f"{len(out.splits.train)} train / {len(out.splits.val)} validation / {len(out.splits.test)} test "
                  f"images of shape {out.splits.image_shape}; space width "
                  f"{out.space.options.width_mult}")
            if cfg.train.zoo:
                _step(f"supernet: zoo {cfg.train.zoo} (`nas zoo`), trained on {cfg.data.name} -> "
                      f"{api.paths(cfg).checkpoint}")
            else:
                _step(f"training the QAT supernet ({cfg.train.epochs} epochs) -> {api.paths(cfg).checkpoint}")
        elif step == "search":
            pinned = ", ".join(f"{k} {v}" for k, v in cfg.search.fixed.items())
            _step(f"search: {cfg.search.n_trials} trials, {cfg.search.sampler}, accelerator {cfg.cost.accelerator}"
                  + (f"; pinned: {pinned}" if pinned else ""))

    out = api.run(cfg, progress=progress, before_step=announce)
    _step("Pareto front (feasible trials; accuracy on the validation split)")
    print(out.report_table)
    print(f"plot: {out.report_plot}")
    print(f"each accuracy above carries the noise of the batch-norm images its candidate was scored with; to re-score "
          f"the front on other images: nas confirm --run-dir {api.paths(cfg).root}")

    _step("export and reload")
    path, splits, table = out.export, out.splits, out.report_table
    assert splits is not None
    if path is None:
        print(f"No trial met the exit-overhead constraints ({constraint_summary(cfg)}), so nothing is exported: "
              "an infeasible network is no early-exit result. Run more trials (search.n_trials), or relax "
              "constraints.* in the config.")
        wall = time.time() - t0
        print(f"\nquickstart finished in {wall:.0f} s", flush=True)
        return {"wall_s": wall, "trial": None, "export": None, "pareto": table}
    loaded = api.load(path)
    recorded = loaded.metrics
    val = early_exit_stats(loaded.network, splits.val)
    test = early_exit_stats(loaded.network, splits.test)
    labels = recorded["exit_labels"]
    print(f"exported trial {recorded['trial']} to {path}")
    print(f"exits {''.join(labels)}, threshold {loaded.genotype.threshold:.2f}")
    print(f"  study (validation):      accuracy {recorded['accuracy']:.4f}, exit ratios "
          + " ".join(f"{lbl}={r:.3f}" for lbl, r in zip(labels, recorded["exit_ratios"])))
    print(f"  reloaded, real early exit (validation): accuracy {val.accuracy:.4f}, exit ratios "
          + " ".join(f"{lbl}={r:.3f}" for lbl, r in zip(labels, val.ratios)))
    print(f"  reloaded, real early exit (test):       accuracy {test.accuracy:.4f}, exit ratios "
          + " ".join(f"{lbl}={r:.3f}" for lbl, r in zip(labels, test.ratios)))
    static_accuracy = recorded["exit_accuracy_all_samples"][-1]  # the final exit on every image: the static network
    print(f"  its static network (validation): accuracy {static_accuracy:.4f}; the early exits cost "
          f"{(static_accuracy - recorded['accuracy']) * 100:.2f} points")
    print(f"  expected EDP {recorded['expected_edp_j_cycles']:.4g} J*cycles = "
          f"{recorded['reduction_factor']:.2f}x lower "
          f"than the static network ({recorded['static_edp_j_cycles']:.4g})")

    _step("dashboard")
    root = api.paths(cfg).root
    print(f"nas dashboard --run-dir {root}")
    print(f"  (or: optuna-dashboard {sqlite_url(root)} --host 127.0.0.1 --port 8080)")
    wall = time.time() - t0
    print(f"\nquickstart finished in {wall:.0f} s", flush=True)
    return {"wall_s": wall, "trial": recorded["trial"], "recorded": recorded, "val": val, "test": test,
            "static_accuracy": static_accuracy, "export": str(path), "pareto": table}
