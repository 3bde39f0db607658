from __future__ import annotations

import math

import pytest

import search_spaces as ss
from hwmodel import CostModel, MappingError, ZigZagSettings, load_system
from hwmodel.cost_model import simple_core_cost
from hwmodel.scheduling import ScheduleSettings
from hwmodel.workload import kind, zigzag_layer
from hwmodel.zigzag_core import ZigZagCore
from tests.helpers import unmappable_system

LAYER_BY_LAYER = ScheduleSettings(mode="layer_by_layer")
SMALL_LAYERS = [
    ss.LayerSpec("conv", "conv", 8, 16, (16, 16), (16, 16), (3, 3), (1, 1), (1, 1)),
    ss.LayerSpec("dw", "conv", 16, 16, (16, 16), (8, 8), (3, 3), (2, 2), (1, 1), groups=16, w_bits=4, a_bits=4),
    ss.LayerSpec("pw", "conv", 16, 24, (8, 8), (8, 8), w_bits=8, a_bits=4, o_bits=4),
    ss.LayerSpec("fc", "fc", 256, 10, (1, 1), (1, 1), w_bits=4, a_bits=8),
]
POOL = ss.LayerSpec("p", "maxpool", 16, 16, (16, 16), (4, 4), (4, 4), (4, 4), a_bits=8, o_bits=8)
ADD = ss.LayerSpec("a", "add", 16, 16, (8, 8), (8, 8))


@pytest.fixture(scope="module")
def system():
    return load_system("edge_tpu_quad")


@pytest.fixture(scope="module")
def model(system):
    with CostModel(system, cache=None) as cm:
        yield cm


def test_layer_kinds_and_zigzag_dicts():
    assert [kind(s) for s in SMALL_LAYERS] == ["default", "depthwise", "default", "fc"]
    dw = zigzag_layer(SMALL_LAYERS[1])
    assert dw["loop_sizes"] == [1, 1, 16, 8, 8, 1, 3, 3]
    assert dw["operand_precision"] == {"W": 4, "I": 4, "O": 8, "O_final": 8}
    pool = zigzag_layer(POOL)
    assert pool["operator_type"] == "Pooling" and pool["loop_sizes"] == [1, 16, 4, 4, 4, 4]
    assert pool["operand_precision"]["W"] == 0  # the window: a dummy operand without data
    add = zigzag_layer(ADD)
    assert add["operator_type"] == "Add" and add["loop_sizes"] == [1, 16, 8, 8]
    assert add["operand_precision"] == {"W": 8, "I": 8, "O": 8, "O_final": 8}
    with pytest.raises(ValueError, match="avgpool"):
        zigzag_layer(ss.LayerSpec("p", "avgpool", 4, 4, (8, 8), (4, 4), (2, 2), (2, 2)))  # type: ignore[arg-type]


def test_lean_evaluator_equals_the_zigzag_api(system, tmp_path):
    """Per-layer energy and latency equal zigzag.api with the same core, hints and settings."""
    from zigzag.api import get_hardware_performance_zigzag

    core_spec = system.compute_cores[0]
    settings = ZigZagSettings(lpf_limit=4, optimize="EDP", spatial_mappings=3)
    core = ZigZagCore("edge_tpu", system.resolve(core_spec.core), system.resolve(core_spec.mapping), settings)
    for spec in SMALL_LAYERS:
        ours = core.cost(zigzag_layer(spec), spec.name)
        energy, latency, _ = get_hardware_performance_zigzag(
            [zigzag_layer(spec)], str(system.resolve(core_spec.core)), str(system.resolve(core_spec.mapping)),
            opt="EDP", lpf_limit=4, nb_spatial_mappings_generated=3, dump_folder=str(tmp_path / spec.name),
            loma_show_progress_bar=False)
        assert ours.energy_pj == pytest.approx(energy, rel=1e-9)
        assert ours.latency_cycles == pytest.approx(latency, rel=1e-9)


def test_one_mapping_per_evaluation_changes_no_cost(system, monkeypatch):
    """ZigZag builds two equal Mapping objects per temporal mapping when the unrolling is whole; building
    one (the shortcut, most of the cold time) gives the same cost of every layer of a network, fused
    tiles included."""
    import contextlib

    import hwmodel.zigzag_core as zigzag_core

    space = ss.create_space("mobilenetv2_cifar", width_mult=0.25, kernel_choices=(3, 5, 7))
    genotype = space.uniform(exits=(2, 6), depth=2, bits=8, kernel=5)
    layers = ss.specs(space.layer_graph(genotype))
    with CostModel(system, cache=None) as cm:
        costs = cm.layer_costs(layers), cm.evaluate(space.layer_graph(genotype))
    monkeypatch.setattr(zigzag_core, "_one_mapping_per_evaluation", contextlib.nullcontext)
    with CostModel(system, cache=None) as cm:
        assert (cm.layer_costs(layers), cm.evaluate(space.layer_graph(genotype))) == costs


def test_costs_respect_physical_bounds(model):
    """Energy >= MACs x MAC energy and latency >= MACs / peak MAC per cycle, for every layer."""
    space = ss.create_space("mobilenetv2_cifar", width_mult=0.25)
    g = space.uniform(exits=(2, 6), depth=2, bits=8)
    layers = ss.specs(space.layer_graph(g))
    for layer, cost in zip(layers, model.layer_costs(layers)):
        if layer.op in ("conv", "fc"):
            assert cost.energy_pj >= layer.macs * 0.04 * (1 - 1e-9)
            assert cost.latency_cycles >= layer.macs / 1024
        assert cost.energy_pj > 0 and cost.latency_cycles > 0


def test_lower_precision_moves_fewer_bits_and_costs_less_per_mac(model):
    wide = model.layer_costs([SMALL_LAYERS[0]])[0]
    narrow = model.layer_costs([SMALL_LAYERS[0].with_bits(4, 4, 4)])[0]
    assert narrow.mem_energy_pj < wide.mem_energy_pj
    # product model: E(4, 4) / E(8, 8) = 0.1 + 0.9 * 16 / 64
    assert narrow.mac_energy_pj == pytest.approx(wide.mac_energy_pj * (0.1 + 0.9 * 16 / 64))
    assert wide.mac_energy_pj == pytest.approx(SMALL_LAYERS[0].macs * 0.04)  # 8x8 = reference bits
    assert narrow.energy_pj == pytest.approx(narrow.mac_energy_pj + narrow.mem_energy_pj)


def test_pooling_and_add_are_costed_by_zigzag_on_their_cores(system, model, tmp_path):
    """On a system whose pooling and SIMD cores are core files, max-pooling and adds cost exactly what
    zigzag.api gives on those cores, and are cached like every other layer."""
    from zigzag.api import get_hardware_performance_zigzag

    pool, add = model.layer_costs([POOL, ADD])
    assert (pool.core, add.core) == ("pooling", "simd")
    for spec, cost, core in ((POOL, pool, system.pooling_core), (ADD, add, system.simd_core)):
        energy, latency, _ = get_hardware_performance_zigzag(
            [zigzag_layer(spec)], str(system.resolve(core.core)), str(system.resolve(core.mapping)), opt="EDP",
            lpf_limit=4, nb_spatial_mappings_generated=3, dump_folder=str(tmp_path / spec.name),
            loma_show_progress_bar=False)
        assert cost.energy_pj == pytest.approx(energy, rel=1e-9)
        assert cost.latency_cycles == pytest.approx(latency, rel=1e-9)
        assert 0 < cost.spatial_utilization <= 1
        assert cost.mac_energy_pj == pytest.approx(spec.ops * 0.1)  # 0.1 pJ per comparison / addition
    assert pool.latency_cycles >= POOL.ops / 72 and add.latency_cycles >= ADD.ops / 64
    with CostModel(system, cache=tmp_path / "c.sqlite") as first:
        first.layer_costs([POOL, ADD])
        assert first.stats["misses"] == 2
    with CostModel(system, cache=tmp_path / "c.sqlite") as second:
        assert second.layer_costs([POOL, ADD]) == [pool, add]
        assert second.stats == {"hits": 2, "misses": 0, "in_process": 0}


def test_a_system_without_pooling_and_simd_core_files_uses_the_analytical_model():
    """eyeriss_single gives its pooling and SIMD cores as throughputs only: no ZigZag job, the analytical
    model's figures."""
    system = load_system("eyeriss_single")
    assert not system.simple_cores()
    with CostModel(system, cache=None) as cm:
        assert not cm.zigzag_costed("maxpool") and not cm.zigzag_costed("add") and cm.zigzag_costed("fc")
        pool, add = cm.layer_costs([POOL, ADD])
        assert cm.stats["misses"] == 0
        graph = ss.create_space("mobilenetv2_cifar", width_mult=0.25).layer_graph(
            ss.create_space("mobilenetv2_cifar", width_mult=0.25).uniform(exits=(3,), bits=8))
        fused = cm.evaluate(graph)  # the fused schedule runs pooling / add tiles analytically too
        assert fused.energy_j > 0
    units, energy = system.pooling_core.units, system.pooling_core.energy_per_op_pj
    assert units is not None and energy is not None
    ops = 4 * 4 * 16 * 16
    moved = 16 * 16 * 16 * 8 + 4 * 4 * 16 * 8
    per_bit = system.offchip.energy_per_bit_pj
    assert pool == simple_core_cost(POOL, system.pooling_core, system, "pooling")
    assert pool.energy_pj == pytest.approx(ops * energy + moved * per_bit)
    bandwidth = system.offchip.bandwidth_bits_per_cycle
    assert pool.latency_cycles == max(math.ceil(ops / units), math.ceil(moved / bandwidth))
    assert add.core == "simd"
    assert add.mac_energy_pj == pytest.approx(8 * 8 * 16 * (system.simd_core.energy_per_op_pj or 0))


def test_stage_sums_and_early_exit_accounting(model):
    space = ss.create_space("mobilenetv2_cifar", width_mult=0.25)
    g = space.uniform(exits=(3, 7), bits=8)
    net = model.evaluate(space.layer_graph(g), LAYER_BY_LAYER)
    static = model.evaluate(space.layer_graph(space.static_genotype(g)), LAYER_BY_LAYER)
    assert net.exit_labels == ["D", "H", "K"]
    assert sum(net.stage_energy_pj) == pytest.approx(sum(r.cost.energy_pj for r in net.layers))
    assert net.cumulative_latency_cycles[-1] == pytest.approx(sum(r.cost.latency_cycles for r in net.layers))
    # exits add classifiers on top of the same backbone
    assert net.energy_j > static.energy_j and net.latency_cycles > static.latency_cycles
    assert static.exit_labels == ["K"]


def test_cache_persists_across_instances(system, tmp_path):
    space = ss.create_space("mobilenetv2_cifar", width_mult=0.25)
    graph = space.layer_graph(space.uniform(exits=(4,), bits=8))
    with CostModel(system, cache=tmp_path / "c.sqlite") as first:
        a = first.evaluate(graph, LAYER_BY_LAYER)
        assert first.stats["misses"] > 0
    with CostModel(system, cache=tmp_path / "c.sqlite") as second:
        b = second.evaluate(graph, LAYER_BY_LAYER)
        assert second.stats["misses"] == 0 and second.stats["hits"] > 0
    assert [r.cost for r in a.layers] == [r.cost for r in b.layers]


def test_unmappable_layer_raises_a_typed_error(tmp_path):
    """A core whose memories cannot hold the layer: MappingError naming layer and core."""
    unmappable_system(tmp_path)
    with CostModel(tmp_path / "system.yaml", cache=None) as cm:
        with pytest.raises(MappingError) as err:
            cm.layer_costs([SMALL_LAYERS[0]])
    assert err.value.layer == "conv" and err.value.core == "edge_tpu"
    assert "conv" in str(err.value) and "edge_tpu" in str(err.value)


def test_depthwise_layers_fill_the_array_through_hints(model):
    """Hints let ZigZag unroll groups and taps: a 3x3 depthwise layer keeps hundreds of the 1024 PEs busy,
    not the 16 a fixed dense mapping (K on D1, C on D2) would give it."""
    dw3 = ss.LayerSpec("dw3", "conv", 96, 96, (32, 32), (32, 32), (3, 3), (1, 1), (1, 1), groups=96)
    dw7 = ss.LayerSpec("dw7", "conv", 576, 576, (8, 8), (8, 8), (7, 7), (1, 1), (3, 3), groups=576)
    costs = model.layer_costs([dw3, dw7])
    assert costs[0].spatial_utilization >= 0.25 and costs[1].spatial_utilization >= 0.5


def test_started_workers_cost_exactly_what_one_process_costs(system):
    """Workers started ahead (each builds its cores before any job), longest-first submission and
    this process taking the shortest jobs change only where the costs are computed, not what they are."""
    space = ss.create_space("mobilenetv2_cifar", width_mult=0.25)
    graph = space.layer_graph(space.uniform(exits=(4,), bits=8))
    with CostModel(system, cache=None, workers=1) as alone:
        expected = alone.evaluate(graph)
        alone.start_workers()  # one worker: nothing to start
        assert alone._pool is None
    with CostModel(system, cache=None, workers=2) as pool:
        pool.start_workers()
        assert pool._pool is not None
        got = pool.evaluate(graph)
        assert pool.stats["misses"] > 3
        # the helper took jobs, and so did this process while the helper was busy
        assert 0 < pool.stats["in_process"] < pool.stats["misses"]
    assert [r.cost for r in got.layers] == [r.cost for r in expected.layers]
    assert got.edp == expected.edp
