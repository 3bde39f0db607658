from __future__ import annotations

import collections
from pathlib import Path

import pytest
import yaml

import search_spaces as ss
from hwmodel import CostModel, SchemaError, load_system
from hwmodel.precision import MacEnergyModel, PrecisionScaling


def test_product_mac_energy_model():
    m = MacEnergyModel()
    assert m.scale(8, 8) == pytest.approx(1.0)
    assert m.scale(4, 4) == pytest.approx(0.1 + 0.9 * 16 / 64)
    assert m.scale(2, 8) == pytest.approx(0.1 + 0.9 * 16 / 64)
    assert m.scale(32, 32) == pytest.approx(0.1 + 0.9 * 16)  # float MACs ~15x an int8 MAC (Horowitz 2014)
    assert MacEnergyModel(model="constant").scale(2, 2) == 1.0
    with pytest.raises(ValueError, match="fixed_fraction"):
        MacEnergyModel(fixed_fraction=1.5)


@pytest.mark.parametrize("w, a, factor", [(8, 8, 1), (4, 8, 1), (4, 4, 2), (3, 4, 2), (2, 4, 2), (2, 2, 4), (1, 2, 4),
                                          (32, 32, 1)])
def test_precision_scaling_picks_the_narrowest_fitting_width(w, a, factor):
    assert PrecisionScaling("D1", {4: 2, 2: 4}).factor(w, a) == factor


@pytest.fixture(scope="module")
def hetero():
    with CostModel("hetero_tpu_bitfusion", cache="default", workers=1) as cm:
        yield cm


def test_allocation_rules_route_operators_to_cores(hetero):
    space = ss.create_space("mobilenetv2_cifar", width_mult=0.25)
    layers = ss.specs(space.layer_graph(space.uniform(exits=(4,), bits=8)))
    by_kind = collections.defaultdict(set)
    for spec, cost in zip(layers, hetero.layer_costs(layers)):
        by_kind["depthwise" if spec.depthwise else spec.op].add(cost.core)
    assert by_kind["depthwise"] == {"bitfusion_tpu"} and by_kind["fc"] == {"bitfusion_tpu"}
    assert by_kind["maxpool"] == {"pooling"} and by_kind["add"] == {"simd"}
    assert by_kind["conv"] <= {"tpu", "bitfusion_tpu"}


def test_precision_scalable_core_runs_low_precision_layers_faster(hetero):
    layer = ss.LayerSpec("pw", "conv", 64, 128, (16, 16), (16, 16), w_bits=8, a_bits=8, o_bits=8)
    narrow = layer.with_bits(4, 4, 4)
    hetero_core = hetero.system.compute_cores[1]
    assert hetero_core.name == "bitfusion_tpu"
    wide_cost = hetero.layer_costs([layer])[0]
    narrow_cost = hetero.layer_costs([narrow])[0]
    assert narrow_cost.core == "bitfusion_tpu"
    # twice the MACs per cycle at <= 4 bits: the compute-bound part halves
    assert narrow_cost.ideal_cycles <= 0.5 * wide_cost.ideal_cycles * 1.01


def test_constant_mac_model_keeps_zigzags_mac_energy(tmp_path):
    system = load_system("edge_tpu_single")
    data = yaml.safe_load(Path(system.path).read_text())
    data["compute_cores"][0]["core"] = str(system.resolve(system.compute_cores[0].core))
    data["compute_cores"][0]["mapping"] = str(system.resolve(system.compute_cores[0].mapping))
    data["compute_cores"][0]["mac_energy"] = {"model": "constant"}
    (tmp_path / "system.yaml").write_text(yaml.safe_dump(data))
    layer = ss.LayerSpec("pw", "conv", 16, 32, (8, 8), (8, 8), w_bits=2, a_bits=2, o_bits=2)
    with CostModel(tmp_path / "system.yaml", cache=None) as flat, CostModel(system, cache=None) as product:
        assert flat.layer_costs([layer])[0].mac_energy_pj == pytest.approx(layer.macs * 0.04)
        assert product.layer_costs([layer])[0].mac_energy_pj == pytest.approx(layer.macs * 0.04 * (0.1 + 0.9 * 4 / 64))


def _system_with(tmp_path, edit):
    system = load_system("hetero_tpu_bitfusion")
    data = yaml.safe_load(Path(system.path).read_text())
    for core in data["compute_cores"]:
        core["core"] = str(system.resolve(core["core"]))
        core["mapping"] = str(system.resolve(core["mapping"]))
    edit(data)
    path = tmp_path / "system.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_allocation_to_an_unknown_core_is_a_clear_error(tmp_path):
    path = _system_with(tmp_path, lambda d: d["allocation"].update(conv=["gpu"]))
    with pytest.raises(SchemaError, match="allocation.conv: expected names of compute cores"):
        load_system(path)


def test_precision_scaling_on_a_missing_dimension_is_a_clear_error(tmp_path):
    path = _system_with(tmp_path, lambda d: d["compute_cores"][1]["precision_scaling"].update(dimension="D9"))
    with pytest.raises(SchemaError, match=r"compute_cores\[1\].precision_scaling.dimension"):
        load_system(path)
