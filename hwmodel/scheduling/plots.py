"""Pictures of a schedule: a Gantt chart per resource and on-chip memory occupancy over time."""

from __future__ import annotations

from pathlib import Path

from hwmodel.plotting import pyplot, save
from hwmodel.scheduling.result import Schedule


def gantt(schedule: Schedule, path: str | Path, title: str | None = None) -> Path:
    """One row per resource (cores, links, off-chip), bars coloured by exit stage; exits as lines."""
    plt = pyplot()
    resources = sorted({op.resource for op in schedule.ops},
                       key=lambda r: (r == "offchip", "->" in r or r.startswith("port") or r == "bus", r))
    row = {r: i for i, r in enumerate(resources)}
    stages = max((op.stage for op in schedule.ops), default=0) + 1
    cmap = plt.get_cmap("tab10")
    fig, ax = plt.subplots(figsize=(11, 0.45 * len(resources) + 1.8), dpi=110)
    for op in schedule.ops:
        ax.barh(row[op.resource], op.end - op.start, left=op.start, height=0.7, color=cmap(op.stage % 10),
                edgecolor="none", alpha=0.9 if op.kind == "compute" else 0.55)
    for label, t in zip(schedule.exit_labels, schedule.exit_times):
        ax.axvline(t, color="black", lw=0.8, ls="--")
        ax.text(t, -0.9, f"exit {label}", rotation=90, va="bottom", ha="right", fontsize=7)
    ax.set_yticks(range(len(resources)), resources, fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("cycles")
    handles = [plt.Rectangle((0, 0), 1, 1, color=cmap(s % 10)) for s in range(stages)]
    ax.legend(handles, [f"stage {schedule.exit_labels[s]}" for s in range(stages)], fontsize=7, loc="lower right")
    ax.set_title(title or f"{schedule.system}: {schedule.mode} schedule, {schedule.tile_count} tiles")
    return save(fig, path)


def memory_plot(schedule: Schedule, path: str | Path) -> Path:
    """Stored activations on each core's on-chip memory over time, against its capacity."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(9, 3.5), dpi=110)
    for name in sorted(schedule.stored):
        steps = schedule.occupancy(name)
        if steps:
            ts, bits = zip(*steps)
            ax.step(ts, [b / 8 / 1024 for b in bits], where="post", label=name)
    caps = {c for c in schedule.capacity.values() if c}
    for cap in caps:
        ax.axhline(cap / 8 / 1024, color="red", lw=0.8, ls=":", label=f"capacity {cap / 8 / 1024:g} KB")
    ax.set_xlabel("cycles")
    ax.set_ylabel("stored activations (KB)")
    ax.legend(fontsize=7)
    ax.set_title(f"{schedule.system}: on-chip activation memory ({schedule.mode})")
    return save(fig, path)
