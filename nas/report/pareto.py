"""Study reports: the Pareto table (text), the Pareto plot (matplotlib) and the table of a confirmed front."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import optuna
from optuna.study import StudyDirection
from optuna.trial import FrozenTrial, TrialState

from hwmodel.plotting import pyplot, save
from nas.report.artifacts import attach_to_study
from nas.report.plots import plot_exit_costs
from nas.study.confirm import STUDY_ATTR, Confirmation
from nas.study.record import TrialRecord, records
from nas.study.study import pareto_numbers, pareto_trials

COLUMNS = ("trial", "accuracy", "E[EDP] J*cyc", "vs own static", "exits", "exit ratios", "eps", "E[energy] uJ",
           "E[lat] kcyc", "feasible")
CONFIRM_COLUMNS = ("trial", "searched acc", "confirmed acc", "std", "searched - confirmed", "E[EDP] searched",
                   "E[EDP] confirmed", "on confirmed front")


def trial_row(trial: FrozenTrial) -> dict[str, Any]:
    """One Pareto-table row (JSON-ready) from a complete trial's record."""
    r = record_of(trial)
    return {
        "trial": r.number,
        "accuracy": r.accuracy,
        "expected_edp_j_cycles": r.expected_edp_j_cycles,
        "reduction_factor": r.reduction_factor,
        "exits": r.exits,
        "exit_ratios": list(r.exit_ratios),
        "threshold": r.threshold,
        "expected_energy_uj": r.expected_energy_j * 1e6,
        "expected_latency_kcycles": r.expected_latency_cycles / 1e3,
        "feasible": r.feasible,
    }


def record_of(trial: FrozenTrial) -> TrialRecord:
    """The record of a trial that evaluated a candidate (ValueError otherwise)."""
    record = TrialRecord.of(trial)
    if record is None:
        raise ValueError(f"trial {trial.number} holds no evaluated candidate")
    return record


def _same_network(a: dict[str, Any], b: dict[str, Any]) -> bool:
    """Two rows that describe one network measured alike (a sampler proposed it again)."""
    keys = ("accuracy", "expected_edp_j_cycles", "exits", "exit_ratios", "threshold")
    return all(a[k] == b[k] for k in keys)


def format_table(rows: list[dict[str, Any]]) -> str:
    """Fixed-width text table of Pareto rows; rows repeating the row above (the same network, proposed
    again) are folded into it: trial "19 (+50, 57)"."""
    merged: list[tuple[dict[str, Any], list[int]]] = []
    for r in rows:
        if merged and _same_network(merged[-1][0], r):
            merged[-1][1].append(r["trial"])
        else:
            merged.append((r, []))
    cells = [
        [str(r["trial"]) + (f" (+{', '.join(map(str, again))})" if again else ""), f"{r['accuracy']:.4f}",
         f"{r['expected_edp_j_cycles']:.4g}", f"{r['reduction_factor']:.2f}x",
         r["exits"], "/".join(f"{x:.2f}" for x in r["exit_ratios"]), f"{r['threshold']:.2f}",
         f"{r['expected_energy_uj']:.2f}", f"{r['expected_latency_kcycles']:.1f}", "yes" if r["feasible"] else "no"]
        for r, again in merged
    ]
    return text_table(COLUMNS, cells)


def text_table(columns: Sequence[str], cells: Sequence[Sequence[str]]) -> str:
    """A fixed-width text table: right-aligned cells under a header line and a rule."""
    widths = [max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(columns)]
    line = "  ".join(h.rjust(w) for h, w in zip(columns, widths))
    body = ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join([line, "-" * len(line), *body])


def pareto_rows(study: optuna.Study) -> list[dict[str, Any]]:
    """Rows of the feasible Pareto front, by expected EDP."""
    return [trial_row(t) for t in pareto_trials(study)]


def choose_trial(study: optuna.Study, accuracy_tolerance: float = 0.01) -> FrozenTrial:
    """Default pick for export: the lowest-EDP feasible Pareto trial within ``accuracy_tolerance``
    (absolute) of the front's best accuracy. Accuracy and expected EDP are read by name from the
    trial's record, so any objectives, in any order, pick the same way. When ``nas confirm`` has
    confirmed this very front (:func:`stored_confirmation`), the pick is made on the confirmed values,
    among the trials that stay on the front under them."""
    front = pareto_trials(study) or pareto_trials(study, feasible_only=False)
    if not front:
        raise ValueError(f"study {study.study_name!r} has no complete trial to export")
    values = {t.number: (record_of(t).accuracy, record_of(t).expected_edp_j_cycles) for t in front}
    confirmed = stored_confirmation(study, front)
    if confirmed:
        kept = confirmed_front(list(confirmed.values()))
        values = {n: (c.accuracy, c.expected_edp) for n, c in confirmed.items() if n in kept}
        front = [t for t in front if t.number in values]
    best = max(acc for acc, _edp in values.values())
    return min((t for t in front if values[t.number][0] >= best - accuracy_tolerance),
               key=lambda t: values[t.number][1])


def stored_confirmation(study: optuna.Study, front: Sequence[FrozenTrial]) -> dict[int, Confirmation] | None:
    """The confirmation ``nas confirm`` stored on the study, by trial number, if it covers exactly the trials of
    ``front`` (a study searched further since then has another front: its confirmation is stale, None)."""
    stored = study.user_attrs.get(STUDY_ATTR)
    if not stored:
        return None
    confirmed = {c.trial: c for c in map(Confirmation.from_dict, stored)}
    return confirmed if set(confirmed) == {t.number for t in front} else None

def plot_pareto(study: optuna.Study, path: str | Path, front: list[FrozenTrial] | None = None) -> Path:
    """Accuracy vs expected EDP for every complete trial: colour = number of exits, x = infeasible,
    line = feasible Pareto front (under the study's objectives; ``front``: it, if already at hand).
    Saved as PNG."""

    plt = pyplot()
    trials = records(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)))
    fig, ax = plt.subplots(figsize=(7, 4.5), dpi=120)
    if trials:
        n_exits = [len(r.exit_labels) for r in trials]
        vmin, vmax = min(n_exits), max(max(n_exits), min(n_exits) + 1)
        for ok, marker, label in ((True, "o", "feasible"), (False, "x", "infeasible")):
            sel = [i for i, r in enumerate(trials) if r.feasible == ok]
            if sel:
                sc = ax.scatter([trials[i].expected_edp_j_cycles for i in sel], [trials[i].accuracy for i in sel],
                                c=[n_exits[i] for i in sel], cmap="viridis", vmin=vmin, vmax=vmax, marker=marker,
                                label=label)
        fig.colorbar(sc, ax=ax, label="exits (incl. final)")
        line = [record_of(t) for t in (pareto_trials(study) if front is None else front)]
        if line:
            ax.plot([r.expected_edp_j_cycles for r in line], [r.accuracy for r in line], "r--", lw=1,
                    label="Pareto front")
        static = [r.static_edp_j_cycles for r in trials]
        ax.axvline(sum(static) / len(static), color="grey", lw=0.8, ls=":", label="static network (mean)")
    ax.set_xscale("log")
    ax.set_xlabel("expected EDP (J x cycles)")
    ax.set_ylabel("top-1 accuracy (validation)")
    ax.set_title(f"study {study.study_name}: {len(trials)} complete trials")
    ax.legend(loc="lower right", fontsize=8)
    return save(fig, path)


def write_report(study: optuna.Study, run_dir: str | Path, *, exit_cost_networks: int = 5) -> tuple[str, Path]:
    """Write ``pareto.json``, ``pareto.png`` and ``exit_costs.png`` (cumulative ET per exit stage of
    the ``exit_cost_networks`` lowest-EDP Pareto trials) in ``run_dir``, attach them to the study as
    artifacts; return (table text, Pareto plot path)."""
    run_dir = Path(run_dir)
    front = pareto_trials(study)  # once: the rows, the plot and the exit-cost networks all read it
    rows = [trial_row(t) for t in front]
    files = [run_dir / "pareto.json", plot_pareto(study, run_dir / "pareto.png", front)]
    files[0].write_text(json.dumps(rows, indent=2))
    chosen = [{**record_of(t).attributes, "name": f"trial {t.number}"} for t in front[:exit_cost_networks]]
    if chosen:
        files.append(plot_exit_costs(chosen, run_dir / "exit_costs.png"))
    attach_to_study(study, files, "report")
    return format_table(rows), files[1]


def confirmed_front(confirmations: Sequence[Confirmation]) -> set[int]:
    """Trials that stay Pareto-optimal (higher accuracy, lower expected EDP) under their confirmed values."""
    directions = [StudyDirection.MAXIMIZE, StudyDirection.MINIMIZE]
    return set(pareto_numbers(directions, {c.trial: (c.accuracy, c.expected_edp) for c in confirmations}))


def format_confirmations(confirmations: Sequence[Confirmation]) -> str:
    """Fixed-width table of a confirmed front (:mod:`nas.study.confirm`): each trial's searched and confirmed
    accuracy (mean and standard deviation over the slices) and expected EDP (J x cycles), and whether it stays
    on the front under the confirmed values."""
    front = confirmed_front(confirmations)
    return text_table(CONFIRM_COLUMNS, [
        [str(c.trial) + (f" (+{', '.join(map(str, again))})" if again else ""), f"{c.searched_accuracy:.4f}",
         f"{c.accuracy:.4f}", f"{c.accuracy_std:.4f}", f"{c.optimism:+.4f}", f"{c.searched_expected_edp:.4g}",
         f"{c.expected_edp:.4g}", "yes" if c.trial in front else "no"] for c, again in distinct(confirmations)])


def distinct(confirmations: Sequence[Confirmation]) -> list[tuple[Confirmation, list[int]]]:
    """Confirmations folded where a row repeats the one above (the same network, proposed again, scores alike on
    every slice): each kept row with the trial numbers folded into it."""
    merged: list[tuple[Confirmation, list[int]]] = []
    for c in confirmations:
        last = merged[-1][0] if merged else None
        if last is not None and (last.searched_accuracy, last.accuracies, last.expected_edps) == (
                c.searched_accuracy, c.accuracies, c.expected_edps):
            merged[-1][1].append(c.trial)
        else:
            merged.append((c, []))
    return merged
