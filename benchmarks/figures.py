"""The benchmark figures, drawn from the JSON in ``benchmarks/results`` alone: restyling a figure
re-runs nothing. ``python benchmarks/render.py`` draws them all (:func:`draw_all`); a figure whose
JSON is missing is skipped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from hwmodel.plotting import pyplot, save

RESULTS = Path(__file__).resolve().parent / "results"
PER_EXIT_PLOT = "fashion_mnist_per_exit.png"


def fashion_mnist_supernet(data: dict, out: Path) -> list[Path]:
    """Per-exit test accuracy of the reference backbone, one line per exit-branch depth."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.4, 3.6))
    for r in data["per_exit"]:
        ax.plot(r["exit_labels"], [100 * a for a in r["exit_accuracy"]], marker="o",
                label=f"{r['branch_depth']}-FC branch")
    ax.set_xlabel("mounting point (exit after block)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("Reference backbone, W8A8, weights from the supernet")
    ax.grid(alpha=0.3)
    ax.legend()
    return [save(fig, out / PER_EXIT_PLOT)]


def reference_studies(data: dict, out: Path) -> list[Path]:
    """Study 1 (cumulative ET per exit at each bit-width) and study 2 (every four-exit mounting)."""
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    for ax, key in zip(axes, ("constant MAC energy, layer_by_layer", "precision-aware MAC energy, layer_by_layer")):
        for row in data["quantization"]:
            c = row["costs"][key]
            ax.plot(range(4), c["et_per_exit_j_cycles"], "o-",
                    label=f"{row['bits']}: E[ET] {c['expected_edp_j_cycles']:.3g}")
        ax.set_xticks(range(4), ["D", "F", "I", "K"])
        ax.set_yscale("log")
        ax.set_xlabel("exit")
        ax.set_ylabel("cumulative ET (J x cycles)")
        ax.set_title(key, fontsize=9)
        ax.legend(fontsize=7)
    paths = [save(fig, out / "reference_quantization.png")]
    mounting = data["mounting"]
    best5 = sorted(mounting, key=lambda m: m["expected_edp_j_cycles"])[:5]
    fig, (a, b) = plt.subplots(1, 2, figsize=(11, 4), dpi=110)
    a.scatter([m["expected_edp_j_cycles"] for m in mounting], [m["test_accuracy"] for m in mounting], s=12)
    for m in best5:
        a.annotate(m["exits"], (m["expected_edp_j_cycles"], m["test_accuracy"]), fontsize=7)
    a.axvline(mounting[0]["static_edp_j_cycles"], color="grey", ls=":", label="static network")
    a.set_xlabel("expected ET (J x cycles)")
    a.set_ylabel("test accuracy")
    a.legend(fontsize=7)
    for m in best5:
        b.plot(range(4), m["et_per_exit_j_cycles"], "o-", label=m["exits"])
    b.set_xlabel("exit stage")
    b.set_ylabel("cumulative ET (J x cycles)")
    b.set_title("ET per stage, best five by expected ET", fontsize=9)
    b.legend(fontsize=7)
    return [*paths, save(fig, out / "reference_mounting.png")]


def reference_search(data: dict, out: Path) -> list[Path]:
    """Study 3: the NSGA-II Pareto fronts against the static network, and hypervolume over trials."""
    plt = pyplot()
    studies, ref_edp = data["studies"], data["reference_static_edp_j_cycles"]
    fig, ax = plt.subplots(figsize=(7.5, 4.5), dpi=120)
    for name, r in studies.items():
        if r["sampler"] != "nsga2":
            continue
        front = r["pareto"]
        ax.step([p["expected_edp_j_cycles"] / ref_edp for p in front], [p["accuracy"] for p in front], "o-",
                where="post", ms=3, label=name)
    static = studies[data.get("reference_static_study", next(iter(studies)))]["static"]
    ax.scatter([1.0], [static["val_accuracy"]], marker="*", s=120, color="black", zorder=5,
               label="static network (INT8, layer-by-layer)")
    ax.axhline(static["val_accuracy"] - data["max_accuracy_loss"], color="grey", ls=":", lw=1,
               label="static accuracy - 1 point")
    ax.set_xscale("log")
    ax.set_xlabel("expected EDP / static network's EDP (INT8, layer-by-layer)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Pareto fronts of the feasible trials (Fashion-MNIST)", fontsize=9)
    ax.legend(fontsize=6.5, loc="lower right")
    paths = [save(fig, out / "reference_search_pareto.png")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8), dpi=110)
    for ax, prefix in zip(axes, ("INT8 reference space, layer-by-layer",
                                 "full space (backbone + per-layer bits), fused")):
        for name, r in studies.items():
            if name.startswith(prefix):
                ax.plot(range(1, len(r["hypervolume"]) + 1), r["hypervolume"], label=r["sampler"])
        ax.set_title(prefix, fontsize=9)
        ax.set_xlabel("trials")
        ax.set_ylabel("hypervolume (accuracy x EDP / static EDP)")
        ax.legend(fontsize=7)
    return [*paths, save(fig, out / "reference_search_hypervolume.png")]


def search_samplers(data: dict, out: Path) -> list[Path]:
    """Hypervolume over trials of each search arm, against random search's final value."""
    plt = pyplot()
    arms = data["arms"]
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for name, arm in arms.items():
        ax.plot(range(1, len(arm["hypervolume"]) + 1), arm["hypervolume"], label=f"{name} ({arm['wall_s']:.0f} s)")
    ax.axhline(arms["random"]["hypervolume"][-1], color="grey", ls=":", lw=1, label="random search, final")
    ax.set_xlabel("trials")
    ax.set_ylabel("hypervolume (accuracy x EDP / static EDP)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return [save(fig, out / "search_samplers.png")]


def search_wall_time(data: dict, out: Path) -> list[Path]:
    """Hypervolume over wall time of each search arm, one line per seed."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6, 3.6), dpi=120)
    for (name, runs), color in zip(data["runs"].items(), ("tab:grey", "tab:blue", "tab:orange", "tab:red")):
        for i, r in enumerate(runs):
            ax.step(r["times_s"], r["hypervolume"], where="post", color=color, lw=1.2, alpha=0.9,
                    label=name if i == 0 else None)
    first = [v for runs in data["runs"].values() for r in runs for v in r["hypervolume"][:20] if v > 0]
    if first:  # the static network alone gives most of the area: show what the searches add to it
        ax.set_ylim(bottom=min(first) - 0.01)
    ax.set_xlabel("wall time (s)")
    ax.set_ylabel("hypervolume (accuracy x EDP / static EDP)")
    ax.legend(fontsize=7)
    fig.tight_layout()
    return [save(fig, out / "search_wall_time.png")]


def scheduling(data: dict, out: Path) -> list[Path]:
    """Gantt charts of the reference backbone (exits D, F, I, K) fused and layer by layer, and the
    fused schedule's on-chip memory, from the schedules the benchmark stored."""
    from hwmodel.scheduling.plots import gantt, memory_plot
    from hwmodel.scheduling.result import Schedule

    fused, lbl = (Schedule.from_dict(data["schedules"][k]) for k in ("fused", "layer_by_layer"))
    return [gantt(fused, out / "scheduling_gantt.png", "reference backbone, exits D,F,I,K: fused, "
                  f"{fused.tile_rows}-row tiles"),
            memory_plot(fused, out / "scheduling_memory.png"),
            gantt(lbl, out / "scheduling_gantt_lbl.png", "reference backbone, exits D,F,I,K: layer by layer")]


FIGURES: dict[str, Callable[[dict, Path], list[Path]]] = {
    "scheduling": scheduling,
    "fashion_mnist_supernet": fashion_mnist_supernet, "reference_studies": reference_studies,
    "reference_search": reference_search, "search_samplers": search_samplers,
    "search_wall_time": search_wall_time}


def draw_all(results: dict[str, dict], out: Path = RESULTS) -> list[Path]:
    """Every figure whose benchmark JSON is in ``results`` (benchmark name -> its JSON), into ``out``."""
    return [path for name, draw in FIGURES.items() if name in results and _drawable(name, results[name])
            for path in draw(results[name], out)]


def _drawable(name: str, data: dict) -> bool:
    """False for JSON written by a version of the benchmark that did not store what the figure needs."""
    return name != "scheduling" or "schedules" in data
