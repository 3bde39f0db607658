from __future__ import annotations

import pytest

from hwmodel import accelerators_dir, list_systems, load_system
from hwmodel.summary import markdown, summarize
from nas.cli import main


def test_shipped_systems():
    assert set(list_systems()) >= {"edge_tpu_quad", "edge_tpu_single", "tpu_quad", "eyeriss_single",
                                   "hetero_tpu_bitfusion"}


def test_summary_figures():
    quad = summarize(load_system("edge_tpu_quad"))
    assert quad["peak_macs_per_cycle"] == 4 * 1024
    mems = {m["name"]: m for m in quad["compute_cores"][0]["memories"]}
    assert mems["weight_sram"]["size_bits"] == 32 * 1024 * 8 and mems["act_sram"]["read_bits_per_cycle"] == 2048
    hetero = summarize(load_system("hetero_tpu_bitfusion"))
    assert hetero["compute_cores"][1]["peak_macs_per_cycle_low_precision"] == {2: 4096, 4: 2048}
    eyeriss = summarize(load_system("eyeriss_single"))
    assert eyeriss["peak_macs_per_cycle"] == 168 and eyeriss["dvfs"]["default"] == "nominal"


@pytest.mark.parametrize("name", list_systems())
def test_shipped_readmes_are_current(name):
    """accelerators/<system>/README.md is generated; regenerate with `nas accelerators --write-readmes`."""
    readme = accelerators_dir() / name / "README.md"
    assert readme.read_text() == markdown(summarize(load_system(name)))


def test_validate_command_prints_the_summary(capsys):
    assert main(["accelerators", "--validate", "tpu_quad"]) == 0
    out = capsys.readouterr().out
    assert "valid" in out and "4096 MAC/cycle" in out and "unified_buffer" in out
