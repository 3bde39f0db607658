"""Operating modes and the decision-cost view on a hand-computed two-exit example."""

from __future__ import annotations

import math

import pytest
import torch

from nas.study.modes import decision_cost, mode_table, named_modes, select_mode
from nas.supernet.calibrate import ExitOutputs


def outputs() -> ExitOutputs:
    """4 samples, 2 classes. Exit 0 predicts class 0 with confidences 0.9 (right), 0.75 (wrong),
    0.55 (right), 0.95 (wrong); the final exit is right on samples 0-2 only."""
    labels = torch.tensor([0, 1, 0, 1])
    first = torch.tensor([[math.log(9), 0.0], [math.log(3), 0.0], [math.log(0.55 / 0.45), 0.0], [math.log(19), 0.0]])
    final = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 0.0]])
    return ExitOutputs(torch.stack([first.argmax(1), final.argmax(1)]), [first, final], labels)


ENERGY, LATENCY, CLOCK = (1e-6, 3e-6), (100.0, 300.0), 1e6


@pytest.fixture
def modes():
    return mode_table(outputs(), ENERGY, LATENCY, CLOCK, (0.6, 0.8, 1.0))


def test_mode_table_matches_hand_computed_values(modes):
    by = {m.threshold: m for m in modes}
    assert by[0.6].exit_ratios == (0.75, 0.25) and by[0.6].accuracy == 0.5
    assert by[0.8].exit_ratios == (0.5, 0.5) and by[0.8].accuracy == 0.75
    assert by[1.0].exit_ratios == (0.0, 1.0) and by[1.0].accuracy == 0.75
    assert by[0.6].expected_energy_j == pytest.approx(1.5e-6)
    assert by[0.8].expected_energy_j == pytest.approx(2e-6)
    assert by[0.6].expected_latency_cycles == pytest.approx(150.0)
    assert by[0.6].expected_latency_s == pytest.approx(1.5e-4)
    assert by[0.8].expected_edp_j_cycles == pytest.approx(0.5 * 1e-6 * 100 + 0.5 * 3e-6 * 300)


def test_named_modes(modes):
    named = {k: m.threshold for k, m in named_modes(modes).items()}
    assert named == {"high_accuracy": 0.8, "balanced": 0.8, "energy_saving": 0.8}
    # with a 30-point tolerance, the cheapest mode counts as "energy saving"
    assert named_modes(modes, tolerance=0.3)["energy_saving"].threshold == 0.6
    with pytest.raises(ValueError, match="empty"):
        named_modes([])


def test_select_mode_by_budget(modes):
    assert select_mode(modes, energy_budget_j=2.5e-6).threshold == 0.8
    assert select_mode(modes, energy_budget_j=1.8e-6).threshold == 0.6
    assert select_mode(modes, latency_budget_s=1.9e-4).threshold == 0.6
    assert select_mode(modes).threshold == 0.8  # no budget: the most accurate, then the cheaper
    with pytest.raises(ValueError, match="no operating mode fits"):
        select_mode(modes, energy_budget_j=1e-6)


def test_decision_cost(modes):
    rows, best = decision_cost(modes, 0.5, static_energy_j=3e-6)
    costs = {r["threshold"]: r["cost"] for r in rows}
    assert costs[0.6] == pytest.approx(0.5 * 0.5 + 0.5 * 0.5)
    assert costs[0.8] == pytest.approx(0.5 * 2 / 3 + 0.5 * 0.25)
    assert costs[1.0] == pytest.approx(0.5 * 1.0 + 0.5 * 0.25)
    assert best.threshold == 0.8
    assert decision_cost(modes, 1.0, 3e-6)[1].threshold == 0.6  # energy only
    assert decision_cost(modes, 0.0, 3e-6)[1].accuracy == 0.75  # error only
    with pytest.raises(ValueError, match="alpha"):
        decision_cost(modes, 1.5, 3e-6)
