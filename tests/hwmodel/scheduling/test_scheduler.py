"""Invariants of schedules, on the shipped systems, in both modes."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
import yaml

import search_spaces as ss
from hwmodel import CostModel, load_system
from hwmodel.accounting import LayerResult, NetworkCost
from hwmodel.scheduling import ScheduleSettings, schedule_network
from hwmodel.scheduling.plots import gantt, memory_plot
from hwmodel.scheduling.result import Op, Schedule

SPACE = ss.create_space("mobilenetv2_cifar", width_mult=0.25)
GENOTYPE = SPACE.uniform(exits=(3, 6), depth=1, bits=8, threshold=0.8)
GRAPH = SPACE.layer_graph(GENOTYPE)
SYSTEMS = ["edge_tpu_quad", "edge_tpu_single", "tpu_quad", "hetero_tpu_bitfusion"]
SETTINGS = {
    "layer_by_layer": ScheduleSettings(mode="layer_by_layer"),
    "fused whole layers": ScheduleSettings(mode="fused", tile_rows=None),
    "fused rows=1 depth-first": ScheduleSettings(mode="fused", tile_rows=1),
    "fused rows=4 breadth-first": ScheduleSettings(mode="fused", tile_rows=4, order="breadth_first"),
    "fused rows=8 round robin": ScheduleSettings(mode="fused", tile_rows=8, allocation="round_robin"),
}


@pytest.fixture(scope="module", params=SYSTEMS)
def model(request):
    with CostModel(request.param, cache="default", workers=2) as cm:
        yield cm


def check_invariants(s: Schedule) -> None:
    # 1. no resource runs two operations at once (a multi-link transfer holds each of its links)
    busy = defaultdict(list)
    for op in s.ops:
        for resource in op.resource.split("+"):
            busy[resource].append((op.start, op.end))
    for resource, spans in busy.items():
        spans.sort()
        for (_s0, e0), (s1, _e1) in zip(spans, spans[1:]):
            assert s1 >= e0 - 1e-9, f"{resource} overlaps at {s1}"
    # 2. every tile starts after its producers end, and after the transfers and reloads of its inputs
    compute = {op.tile: op for op in s.ops if op.kind == "compute"}
    assert len(compute) == s.tile_count
    for idx, op in compute.items():
        for src in s.producers[idx]:
            assert op.start >= compute[src].end - 1e-9
    for op in s.ops:
        if op.kind == "transfer" or op.name.startswith(("reload", "input", "weights")):
            assert compute[op.tile].start >= op.end - 1e-9, op.name
    # 3. on-chip activation memory never exceeds capacity
    for instance, capacity in s.capacity.items():
        assert s.peak_occupancy(instance) <= capacity
    # 4. energy is the sum of its parts; exit accounting reads the timeline
    assert sum(s.breakdown().values()) == pytest.approx(s.energy_pj)
    assert all(op.end >= op.start >= 0 for op in s.ops)
    cum = [s.energy_until(t) for t in s.exit_times]
    assert cum == sorted(cum) and cum[-1] <= s.energy_pj * (1 + 1e-9)
    assert s.exit_times == sorted(s.exit_times) and s.exit_times[-1] <= s.makespan


@pytest.mark.parametrize("label", list(SETTINGS))
def test_schedule_invariants(model, label):
    s = schedule_network(GRAPH, model, SETTINGS[label])
    check_invariants(s)
    if SETTINGS[label].mode == "layer_by_layer":  # one layer at a time
        spans = sorted((op.start, op.end) for op in s.ops if op.kind == "compute")
        assert all(b[0] >= a[1] - 1e-9 for a, b in zip(spans, spans[1:]))


def test_fused_is_never_worse_than_layer_by_layer_for_the_same_allocation(model):
    for tile_rows in (None, 8):
        fused = schedule_network(GRAPH, model, ScheduleSettings(mode="fused", tile_rows=tile_rows))
        lbl = schedule_network(GRAPH, model, ScheduleSettings(mode="layer_by_layer", allocation=fused.allocation))
        assert fused.energy_pj * fused.makespan <= lbl.energy_pj * lbl.makespan


def test_layer_by_layer_on_one_core_reproduces_the_per_layer_engine():
    with CostModel("edge_tpu_single", cache="default") as cm:
        layers = ss.specs(GRAPH)
        ref = NetworkCost.from_layers(cm.system.name, GRAPH.graph["exit_labels"], [
            LayerResult(s.name, s.op, s.stage, s.branch, s.macs, c) for s, c in zip(layers, cm.layer_costs(layers))])
        sched = cm.evaluate(GRAPH, ScheduleSettings(mode="layer_by_layer"))
    assert sched.energy_j == pytest.approx(ref.energy_j, rel=1e-12)
    assert sched.latency_cycles == ref.latency_cycles
    assert sched.cumulative_latency_cycles == ref.cumulative_latency_cycles
    assert sched.cumulative_energy_j == pytest.approx(ref.cumulative_energy_j, rel=1e-12)
    by_name = {r.name: r for r in ref.layers}
    for r in sched.layers:
        assert r.cost.energy_pj == pytest.approx(by_name[r.name].cost.energy_pj, rel=1e-12)


def test_spills_when_activations_do_not_fit(tmp_path):
    system = load_system("edge_tpu_single")
    core = yaml.safe_load(system.resolve(system.compute_cores[0].core).read_text())
    core["memories"]["act_sram"]["size"] = 8 * 1024 * 8  # 8 KB of activation memory
    (tmp_path / "core.yaml").write_text(yaml.safe_dump(core, sort_keys=False))
    data = yaml.safe_load(Path(system.path).read_text())
    data["compute_cores"][0].update(core="core.yaml", mapping=str(system.resolve(system.compute_cores[0].mapping)))
    (tmp_path / "system.yaml").write_text(yaml.safe_dump(data, sort_keys=False))
    with CostModel(tmp_path / "system.yaml", cache="default") as cm:
        small = schedule_network(GRAPH, cm, ScheduleSettings(mode="fused", tile_rows=8))
    with CostModel("edge_tpu_single", cache="default") as cm:
        roomy = schedule_network(GRAPH, cm, ScheduleSettings(mode="fused", tile_rows=8))
    check_invariants(small)
    spills = [op for op in small.ops if op.name.startswith("spill")]
    reloads = [op for op in small.ops if op.name.startswith("reload")]
    assert spills and reloads and not any(op.name.startswith("spill") for op in roomy.ops)
    assert small.peak_occupancy("edge_tpu#0") <= 8 * 1024 * 8
    assert small.breakdown()["offchip"] > roomy.breakdown()["offchip"]


def test_genetic_allocation_never_loses_to_the_heuristic():
    with CostModel("edge_tpu_quad", cache="default") as cm:
        base = schedule_network(GRAPH, cm, ScheduleSettings(mode="fused", tile_rows=8, allocation="contiguous"))
        ga = schedule_network(GRAPH, cm, ScheduleSettings(mode="fused", tile_rows=8, allocation="genetic",
                                                          genetic_generations=3, genetic_population=6))
    check_invariants(ga)
    assert ga.energy_pj * ga.makespan <= base.energy_pj * base.makespan


def test_explicit_allocation_is_validated():
    with CostModel("edge_tpu_quad", cache="default") as cm:
        base = schedule_network(GRAPH, cm, ScheduleSettings(mode="fused", tile_rows=8))
        everything_on_3 = {k: ("edge_tpu#3" if v.startswith("edge_tpu") else v) for k, v in base.allocation.items()}
        s = schedule_network(GRAPH, cm, ScheduleSettings(mode="fused", tile_rows=8, allocation=everything_on_3))
        assert {op.resource for op in s.ops if op.kind == "compute"} <= {"edge_tpu#3", "pooling", "simd"}
        with pytest.raises(ValueError, match="pooling"):
            schedule_network(GRAPH, cm, ScheduleSettings(mode="fused", allocation={**base.allocation,
                                                                                   "exit_D.pool": "edge_tpu#0"}))
    with pytest.raises(ValueError, match="mode"):
        ScheduleSettings(mode="pipelined")


def test_energy_until_prorates_running_operations():
    ops = [Op("compute", "a", "c", 0, 10, {"mac": 10.0}, "a", 0),
           Op("transfer", "b", "l", 5, 15, {"interconnect": 20.0}, "b", 1)]
    s = Schedule("fused", "sys", ["A", "K"], ops, [10.0, 15.0], {}, 1, 2)
    assert s.energy_until(10) == pytest.approx(10 + 10)
    assert s.energy_until(15) == pytest.approx(30)
    net = s.network_cost(1e9)
    assert net.cumulative_energy_j == pytest.approx([20e-12, 30e-12])
    assert net.et == pytest.approx([20e-12 * 10, 30e-12 * 15])


def test_plots_and_summary(tmp_path):
    with CostModel("edge_tpu_quad", cache="default") as cm:
        s = schedule_network(GRAPH, cm, ScheduleSettings(mode="fused", tile_rows=4))
    assert gantt(s, tmp_path / "g.png").stat().st_size > 10_000
    assert memory_plot(s, tmp_path / "m.png").stat().st_size > 5_000
    table = s.summary_table()
    assert "edge_tpu#0" in table and "offchip" in table and "exit finish times" in table


def test_a_schedule_survives_json_and_redraws(tmp_path):
    import json

    with CostModel("edge_tpu_quad", cache="default") as cm:
        s = schedule_network(GRAPH, cm, ScheduleSettings(mode="fused", tile_rows=8))
    back = Schedule.from_dict(json.loads(json.dumps(s.to_dict())))
    assert back == s and back.makespan == s.makespan and back.energy_until(s.exit_times[0]) == s.energy_until(
        s.exit_times[0])
    assert gantt(back, tmp_path / "g.png").stat().st_size > 0 and memory_plot(back, tmp_path / "m.png").is_file()


def test_pooling_and_add_tiles_run_on_their_zigzag_cores():
    """edge_tpu_quad gives its pooling and SIMD cores as core files: in a fused schedule every max-pool
    and add tile runs on its core, taking the cycles and energy ZigZag gives that tile on the core's
    on-chip variant (data moves are the scheduler's, as for compute tiles)."""
    from hwmodel.scheduling import platform_of
    from hwmodel.scheduling.tiles import build_tiles
    from hwmodel.zigzag_core import ZigZagCore

    with CostModel("edge_tpu_quad", cache=None) as cm:
        s = schedule_network(GRAPH, cm, ScheduleSettings(mode="fused", tile_rows=4))
        room = min(i.weight_bits for i in platform_of(cm).compute)
        system, settings = cm.system, cm.settings
    tiles = build_tiles(GRAPH, 4, room)
    cores = {name: ZigZagCore(name, system.resolve(spec.core or ""), system.resolve(spec.mapping or ""), settings,
                              onchip=True)
             for name, spec in (system.simple_core("maxpool"), system.simple_core("add"))}
    expected: dict[tuple, object] = {}
    seen = defaultdict(int)
    for op in s.ops:
        if op.kind != "compute" or op.tile is None or tiles[op.tile].spec.op not in ("maxpool", "add"):
            continue
        tile = tiles[op.tile]
        assert op.resource == ("pooling" if tile.spec.op == "maxpool" else "simd")
        key = (op.resource, tile.shape_key())
        if key not in expected:
            expected[key] = cores[op.resource].cost(tile.zigzag(), tile.name)
        cost = expected[key]
        assert op.end - op.start == pytest.approx(cost.latency_cycles)  # type: ignore[attr-defined]
        assert op.energy_pj["mac"] == pytest.approx(cost.mac_energy_pj)  # type: ignore[attr-defined]
        assert op.energy_pj["onchip"] == pytest.approx(cost.mem_energy_pj)  # type: ignore[attr-defined]
        seen[tile.spec.op] += 1
    assert seen["maxpool"] > 0 and seen["add"] > 0
