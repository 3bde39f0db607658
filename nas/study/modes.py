"""Operating modes of an exported network and the decision-cost view.

An early-exit network's threshold trades accuracy for energy and latency at run time. A *mode table*
records, for each threshold of a grid, the validation accuracy, exit ratios and the expected energy
(J), latency (cycles and s) and EDP read from the network's per-exit costs. The runtime picks a mode
by name or by budget (cross-layer optimisation study: high-accuracy / balanced / energy-saving):

- ``high_accuracy``: the most accurate mode (ties: the cheaper);
- ``energy_saving``: the lowest-energy mode within ``tolerance`` (absolute, default 1 point) of the
  best accuracy;
- ``balanced``: the mode closest to the ideal point (lowest energy, highest accuracy) with both axes
  scaled to the table's range.

Decision cost (confidence-based dynamic depth study): C = alpha * E / E_static + (1 - alpha) * error,
where E is the expected energy of the decision, E_static that of the static network (the largest)
and error = 1 - accuracy; :func:`decision_cost` gives C per mode and the threshold minimising it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

from hwmodel.accounting import expectation
from nas.supernet.calibrate import ExitOutputs, exit_stats

GRID = tuple(round(0.5 + 0.05 * i, 2) for i in range(10)) + (1.0,)


@dataclass(frozen=True)
class Mode:
    """One threshold's behaviour on the validation split (energies in J, latencies in cycles and s)."""

    threshold: float
    accuracy: float
    exit_ratios: tuple[float, ...]
    expected_energy_j: float
    expected_latency_cycles: float
    expected_latency_s: float
    expected_edp_j_cycles: float

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "exit_ratios": list(self.exit_ratios)}


def mode_table(outputs: ExitOutputs, cumulative_energy_j: Sequence[float], cumulative_latency_cycles: Sequence[float],
               clock_hz: float, thresholds: Sequence[float] = GRID) -> list[Mode]:
    """Modes for each threshold, from every exit's validation outputs and per-exit cumulative costs."""
    modes = []
    for t in sorted(set(thresholds)):
        stats = exit_stats(outputs, t)
        energy = expectation(stats.ratios, cumulative_energy_j)
        latency = expectation(stats.ratios, cumulative_latency_cycles)
        edp = expectation(stats.ratios, [e * c for e, c in zip(cumulative_energy_j, cumulative_latency_cycles)])
        modes.append(Mode(float(t), stats.accuracy, stats.ratios, energy, latency, latency / clock_hz, edp))
    return modes


def named_modes(modes: Sequence[Mode], tolerance: float = 0.01) -> dict[str, Mode]:
    """The high-accuracy, balanced and energy-saving modes of a table."""
    if not modes:
        raise ValueError("empty mode table")
    best = max(m.accuracy for m in modes)
    high = min((m for m in modes if m.accuracy == best), key=lambda m: m.expected_energy_j)
    saving = min((m for m in modes if m.accuracy >= best - tolerance), key=lambda m: m.expected_energy_j)
    e_lo, e_hi = min(m.expected_energy_j for m in modes), max(m.expected_energy_j for m in modes)
    a_lo = min(m.accuracy for m in modes)

    def distance(m: Mode) -> float:
        e = (m.expected_energy_j - e_lo) / (e_hi - e_lo) if e_hi > e_lo else 0.0
        a = (best - m.accuracy) / (best - a_lo) if best > a_lo else 0.0
        return e * e + a * a

    return {"high_accuracy": high, "balanced": min(modes, key=distance), "energy_saving": saving}


def select_mode(modes: Sequence[Mode], energy_budget_j: float | None = None,
                latency_budget_s: float | None = None) -> Mode:
    """The most accurate mode whose expected energy and latency fit the budgets (None: no budget)."""
    fitting = [m for m in modes
               if (energy_budget_j is None or m.expected_energy_j <= energy_budget_j)
               and (latency_budget_s is None or m.expected_latency_s <= latency_budget_s)]
    if not fitting:
        cheapest = min(modes, key=lambda m: m.expected_energy_j)
        raise ValueError(f"no operating mode fits energy <= {energy_budget_j} J and latency <= {latency_budget_s} s; "
                         f"the cheapest needs {cheapest.expected_energy_j:.3g} J and "
                         f"{cheapest.expected_latency_s:.3g} s")
    return max(fitting, key=lambda m: (m.accuracy, -m.expected_energy_j))


def decision_cost(modes: Sequence[Mode], alpha: float, static_energy_j: float) -> tuple[list[dict[str, float]], Mode]:
    """C = alpha * E / E_static + (1 - alpha) * (1 - accuracy) per mode, and the mode minimising it."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha: expected a number in [0, 1], got {alpha}")
    rows = [{"threshold": m.threshold, "normalised_energy": m.expected_energy_j / static_energy_j,
             "error": 1.0 - m.accuracy,
             "cost": alpha * m.expected_energy_j / static_energy_j + (1.0 - alpha) * (1.0 - m.accuracy)}
            for m in modes]
    best = min(range(len(modes)), key=lambda i: (rows[i]["cost"], -modes[i].accuracy))
    return rows, modes[best]


def format_modes(modes: Sequence[Mode], static_energy_j: float | None = None, alpha: float | None = None) -> str:
    """A text table of the modes (named ones marked); with ``alpha`` and ``static_energy_j``, each
    mode's decision cost and the threshold minimising it."""
    names: dict[float, list[str]] = {}
    for name, m in named_modes(modes).items():
        names.setdefault(m.threshold, []).append(name)
    costs: dict[float, float] = {}
    best = None
    if alpha is not None and static_energy_j:
        rows, best = decision_cost(modes, alpha, static_energy_j)
        costs = {r["threshold"]: r["cost"] for r in rows}
    head = f"{'threshold':>9}  {'accuracy':>8}  {'E[energy] uJ':>12}  {'E[latency] ms':>13}  {'E[EDP] J*cyc':>12}"
    head += f"  {'C(a=' + format(alpha, 'g') + ')':>10}" if costs else ""
    lines = [head + "  mode"]
    for m in modes:
        line = (f"{m.threshold:9.2f}  {m.accuracy:8.4f}  {m.expected_energy_j * 1e6:12.3f}  "
                f"{m.expected_latency_s * 1e3:13.4f}  {m.expected_edp_j_cycles:12.4g}")
        line += f"  {costs[m.threshold]:10.4f}" if costs else ""
        lines.append(line + "  " + ", ".join(names.get(m.threshold, [])))
    if best is not None and alpha is not None and static_energy_j:
        lines.append(f"decision cost C = {alpha:g} * E/E_static + {1 - alpha:g} * error is lowest at threshold "
                     f"{best.threshold:.2f} (E_static = {static_energy_j * 1e6:.3f} uJ)")
    return "\n".join(lines)
