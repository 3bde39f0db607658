"""accelerators/README.md's recipe for adding an accelerator, followed step by step."""

from __future__ import annotations

import shutil

import yaml

import search_spaces as ss
from hwmodel import CostModel, accelerators_dir, load_system
from nas.cli import main


def test_add_your_own_accelerator(tmp_path, capsys):
    # 1. copy the closest system folder
    chip = tmp_path / "my_chip"
    shutil.copytree(accelerators_dir() / "edge_tpu_single", chip)
    # 2. copy a core file next to system.yaml and change the array and a memory
    shutil.copy(accelerators_dir() / "cores" / "edge_tpu_core.yaml", chip / "core.yaml")
    shutil.copy(accelerators_dir() / "cores" / "edge_tpu_core.mapping.yaml", chip / "mapping.yaml")
    core = yaml.safe_load((chip / "core.yaml").read_text())
    core["operational_array"]["sizes"] = [16, 8, 4, 4]
    core["memories"]["act_sram"]["size"] = 8 * 1024 * 1024 * 8
    (chip / "core.yaml").write_text(yaml.safe_dump(core, sort_keys=False))
    # 3. name, description, cores
    system = yaml.safe_load((chip / "system.yaml").read_text())
    system.update(name="my_chip", description="twice the array of an Edge-TPU-like core")
    system["compute_cores"][0].update(core="core.yaml", mapping="mapping.yaml", name="big")
    (chip / "system.yaml").write_text(yaml.safe_dump(system))
    # 4. validate
    assert main(["accelerators", "--validate", str(chip)]) == 0
    out = capsys.readouterr().out
    assert "2048 MAC/cycle" in out and "8 MB" in out
    # 5. use it
    layer = ss.LayerSpec("pw", "conv", 32, 64, (16, 16), (16, 16))
    with CostModel(chip, cache=tmp_path / "c.sqlite") as mine, CostModel("edge_tpu_single", cache=None) as ref:
        cost, base = mine.layer_costs([layer])[0], ref.layer_costs([layer])[0]
        assert cost.core == "big" and cost.ideal_cycles < base.ideal_cycles
    assert load_system(chip).name == "my_chip"
    # editing the core file invalidates exactly its cached costs
    core["operational_array"]["unit_energy"] = 0.08
    (chip / "core.yaml").write_text(yaml.safe_dump(core, sort_keys=False))
    with CostModel(chip, cache=tmp_path / "c.sqlite") as edited:
        assert edited.layer_costs([layer])[0].mac_energy_pj == 2 * cost.mac_energy_pj
        assert edited.stats["misses"] == 1


def test_memories_out_of_order_are_reported(tmp_path):
    """yaml.safe_dump sorts keys by default, which reorders the hierarchy: a clear error, not a mapping failure."""
    from hwmodel import SchemaError
    from hwmodel.zigzag_core import validate_core_files

    core = yaml.safe_load((accelerators_dir() / "cores" / "edge_tpu_core.yaml").read_text())
    (tmp_path / "core.yaml").write_text(yaml.safe_dump(core))  # sorted: act_sram first
    try:
        validate_core_files(tmp_path / "core.yaml", accelerators_dir() / "cores" / "edge_tpu_core.mapping.yaml")
    except SchemaError as err:
        assert "innermost to outermost" in str(err) and "core.yaml" in str(err)
    else:
        raise AssertionError("expected a SchemaError")
