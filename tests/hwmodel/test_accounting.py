from __future__ import annotations

import pytest

from hwmodel.accounting import LayerResult, NetworkCost, expected_cost
from hwmodel.zigzag_core import LayerCost


def _network(energies_pj, latencies, labels):
    layers = [LayerResult(f"l{i}", "conv", i, False, 1, LayerCost(e, lat, 0.0, e, lat, 1.0, "c"))
              for i, (e, lat) in enumerate(zip(energies_pj, latencies))]
    return NetworkCost.from_layers("sys", labels, layers)


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


def test_dvfs_scales_dynamic_energy_with_v_squared_and_adds_static_power():
    from hwmodel.dvfs import OperatingPoint

    net = _network([1e12, 2e12], [1e6, 3e6], ["A", "K"])  # 3 J dynamic over 4e6 cycles
    point = OperatingPoint("half", frequency_hz=0.5e9, voltage_v=0.5, static_power_w=0.25)
    scaled = net.at(point, reference_voltage_v=1.0)
    seconds = 4e6 / 0.5e9
    assert scaled.latency_cycles == net.latency_cycles
    assert scaled.latency_s == pytest.approx(seconds)
    assert scaled.energy_j == pytest.approx(3.0 * 0.25 + 0.25 * seconds)
    assert scaled.cumulative_energy_j[0] == pytest.approx(1.0 * 0.25 + 0.25 * 1e6 / 0.5e9)
    # idempotent: the operating point applies to the reference-voltage energies
    assert scaled.at(point, reference_voltage_v=1.0).energy_j == pytest.approx(scaled.energy_j)
    assert scaled.at(OperatingPoint("ref", 1e9, 1.0, 0.0), reference_voltage_v=1.0).energy_j == pytest.approx(3.0)


def test_edp_has_an_interior_optimum_when_voltage_follows_frequency():
    """V proportional to f (high-performance zone) plus static power: EDP in J x s is U-shaped."""
    from hwmodel.dvfs import OperatingPoint

    net = _network([1e12], [1e9], ["K"])  # 1 J dynamic at 1 V, 1e9 cycles
    points = [OperatingPoint(f"{f}", f * 1e9, 0.5 + 0.5 * f, 0.5) for f in (0.25, 0.5, 1.0, 1.5, 2.0, 3.0)]
    edp = [net.at(p, 1.0).energy_j * net.at(p, 1.0).latency_s for p in points]
    best = edp.index(min(edp))
    assert 0 < best < len(points) - 1
    # with constant voltage (low-power zone) EDP only falls with frequency
    flat = [OperatingPoint(f"{f}", f * 1e9, 0.8, 0.5) for f in (0.25, 0.5, 1.0, 2.0)]
    edp_flat = [net.at(p, 1.0).energy_j * net.at(p, 1.0).latency_s for p in flat]
    assert edp_flat == sorted(edp_flat, reverse=True)


def test_cost_model_reports_at_the_default_operating_point(tmp_path):
    import search_spaces as ss
    from hwmodel import CostModel
    from hwmodel.scheduling import ScheduleSettings
    from hwmodel.zigzag_core import ZigZagSettings

    space = ss.create_space("mobilenetv2_cifar", width_mult=0.25, bits_choices=(8,))
    graph = space.layer_graph(space.uniform(exits=(4,), bits=8))
    # the cheapest mapper search: what is checked is the operating points' arithmetic, not the mapping
    with CostModel("eyeriss_single", settings=ZigZagSettings(lpf_limit=2, spatial_mappings=1),
                   cache=tmp_path / "cache.sqlite") as cm:
        one_at_a_time = ScheduleSettings(mode="layer_by_layer")
        nominal = cm.evaluate(graph, one_at_a_time)
        low = cm.evaluate(graph, one_at_a_time, operating_point="low")
        with pytest.raises(KeyError, match="unknown operating point"):
            cm.evaluate(graph, one_at_a_time, operating_point="turbo")
    assert nominal.clock_hz == 2e8 and low.clock_hz == 1e8
    assert low.latency_cycles == nominal.latency_cycles
    assert low.latency_s == pytest.approx(2 * nominal.latency_s)
    static_nominal = 0.028 * nominal.latency_s
    static_low = 0.02 * low.latency_s
    dynamic = nominal.energy_j - static_nominal
    assert low.energy_j == pytest.approx(dynamic * 0.82**2 + static_low, rel=1e-9)


def test_branch_energy_share():
    layers = [LayerResult("b", "conv", 0, False, 1, LayerCost(3.0, 1, 0, 3, 1, 1, "c")),
              LayerResult("e", "fc", 0, True, 1, LayerCost(1.0, 1, 0, 1, 1, 1, "c")),
              LayerResult("k", "conv", 1, False, 1, LayerCost(5.0, 1, 0, 5, 1, 1, "c"))]
    net = NetworkCost.from_layers("sys", ["A", "K"], layers)
    assert net.branch_energy_share == pytest.approx([0.25, 0.0])
