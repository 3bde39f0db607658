from __future__ import annotations

import pytest

from hwmodel.network import LayerResult, NetworkCost, expected_cost
from hwmodel.zigzag_core import LayerCost


def _network(energies_pj, latencies, labels):
    layers = [LayerResult(f"l{i}", "conv", i, False, 1, LayerCost(e, lat, 0.0, e, lat, 1.0, "c"))
              for i, (e, lat) in enumerate(zip(energies_pj, latencies))]
    return NetworkCost("sys", labels, layers)


def test_expected_edp_follows_the_reference_definition():
    net = _network([1e12, 2e12, 3e12], [10.0, 20.0, 30.0], ["A", "B", "K"])  # stage energies 1, 2, 3 J
    static = _network([5e12], [50.0], ["K"])
    assert net.cumulative_energy_j == pytest.approx([1.0, 3.0, 6.0])
    assert net.cumulative_latency_cycles == pytest.approx([10.0, 30.0, 60.0])
    assert net.et == pytest.approx([10.0, 90.0, 360.0])
    e = expected_cost(net, static, [0.5, 0.3, 0.2])
    assert e.expected_edp == pytest.approx(0.5 * 10 + 0.3 * 90 + 0.2 * 360)
    assert e.expected_energy_j == pytest.approx(0.5 * 1 + 0.3 * 3 + 0.2 * 6)
    assert e.expected_latency_cycles == pytest.approx(0.5 * 10 + 0.3 * 30 + 0.2 * 60)
    assert e.static_edp == pytest.approx(250.0)
    assert e.reduction_factor == pytest.approx(250.0 / e.expected_edp)
    assert e.exit_overhead == pytest.approx(360.0 / 250.0 - 1)
    with pytest.raises(ValueError, match="sum to 1"):
        expected_cost(net, static, [0.5, 0.5, 0.5])
