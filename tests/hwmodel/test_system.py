"""Tests of hwmodel.system: the shipped systems, the registry, fingerprints and bad-file errors.

Bad files are written under tmp_path next to a copy of the shipped ``cores/`` folder. Every bad
file must give exactly one SchemaError naming the offending file and a recognisable key path,
with no ZigZag exception chained to it and nothing logged by ZigZag.
"""

from __future__ import annotations

import copy
import logging
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from hwmodel.schema import SchemaError
from hwmodel.system import (
    ACCELERATORS_ENV,
    ComputeCoreSpec,
    InterconnectSpec,
    OffChipSpec,
    SimpleCoreSpec,
    SystemSpec,
    accelerators_dir,
    list_systems,
    load_system,
    system_path,
)

REPO = Path(__file__).resolve().parents[2]
SHIPPED = REPO / "accelerators"
CORE_FILE = SHIPPED / "cores" / "edge_tpu_core.yaml"
MAPPING_FILE = SHIPPED / "cores" / "edge_tpu_core.mapping.yaml"
ParameterSet = type(pytest.param())


@pytest.fixture(autouse=True)
def _shipped_accelerators(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests start from the shipped folder whatever the caller's environment says."""
    monkeypatch.delenv(ACCELERATORS_ENV, raising=False)


@pytest.fixture()
def tree(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A copy of the shipped accelerators tree, made the registry via $EENAS_ACCELERATORS."""
    root = tmp_path / "accelerators"
    shutil.copytree(SHIPPED, root)
    monkeypatch.setenv(ACCELERATORS_ENV, str(root))
    return root


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _dump(path: Path, data: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _quad() -> dict[str, Any]:
    return _yaml(SHIPPED / "edge_tpu_quad" / "system.yaml")


def _same_file(a: str | Path, b: str | Path) -> bool:
    return Path(a).resolve() == Path(b).resolve()


def _expect_error(target: str | Path, bad_file: Path, *needles: str,
                  caplog: pytest.LogCaptureFixture | None = None) -> SchemaError:
    """load_system(target) raises one SchemaError naming bad_file and every needle."""
    if caplog is not None:
        caplog.set_level(logging.DEBUG)
    with pytest.raises(SchemaError) as info:
        load_system(target)
    err = info.value
    msg = str(err)
    assert type(err) is SchemaError, f"{type(err).__name__}: {msg}"
    assert _same_file(err.file, bad_file), msg
    assert msg.startswith(f"{err.file}: "), msg
    assert Path(bad_file).name in msg, msg
    for needle in needles:
        assert needle in msg, f"{needle!r} not in {msg!r}"
    # No ZigZag (or PyYAML) exception chained or leaking into the message.
    assert err.__cause__ is None, msg
    assert err.__context__ is None or err.__suppress_context__, msg
    assert "Traceback" not in msg and "cerberus" not in msg.lower(), msg
    if caplog is not None:
        leaked = [r for r in caplog.records if r.name.startswith("zigzag")]
        assert not leaked, [r.getMessage() for r in leaked]
    return err


def _case_params(cases: dict[str, Any]) -> list[Any]:
    """Cases {id: (values...) or pytest.param(values..., marks=...)} -> parametrize values."""
    out = []
    for name, case in cases.items():
        if isinstance(case, ParameterSet):  # already a pytest.param (with marks)
            out.append(pytest.param(*case.values, marks=case.marks, id=name))
        else:
            out.append(pytest.param(*case, id=name))
    return out


# --- shipped systems ---------------------------------------------------------------------------


def test_accelerators_dir_is_the_shipped_folder():
    assert accelerators_dir().resolve() == SHIPPED.resolve()


def test_list_systems_includes_shipped_systems():
    names = list_systems()
    assert "edge_tpu_quad" in names
    assert "edge_tpu_single" in names
    assert "cores" not in names  # no system.yaml there
    assert names == sorted(names)


@pytest.mark.parametrize("name", sorted(p.parent.name for p in SHIPPED.glob("*/system.yaml")))
def test_every_shipped_system_loads(name: str):
    spec = load_system(name)
    assert isinstance(spec, SystemSpec)
    assert spec.name == name
    assert _same_file(spec.path, SHIPPED / name / "system.yaml")
    for core in spec.compute_cores:
        assert spec.resolve(core.core).is_file()
        assert spec.resolve(core.mapping).is_file()
    assert len(spec.fingerprint()) == 16


def test_edge_tpu_quad_values():
    spec = load_system("edge_tpu_quad")
    assert spec.num_compute_cores == 4
    assert spec.compute_cores == (
        ComputeCoreSpec(name="edge_tpu", core="../cores/edge_tpu_core.yaml",
                        mapping="../cores/edge_tpu_core.mapping.yaml", count=4),
    )
    assert isinstance(spec.compute_cores, tuple)
    assert spec.pooling_core == SimpleCoreSpec(core="../cores/pooling_core.yaml",
                                               mapping="../cores/pooling_core.mapping.yaml")
    assert spec.simd_core == SimpleCoreSpec(core="../cores/simd_core.yaml", mapping="../cores/simd_core.mapping.yaml")
    assert set(spec.simple_cores()) == {"pooling_core", "simd_core"}
    assert spec.offchip == OffChipSpec(bandwidth_bits_per_cycle=64, energy_per_access_pj=1000.0, access_bits=64)
    assert spec.offchip.energy_per_bit_pj == pytest.approx(1000 / 64)
    assert spec.interconnect == InterconnectSpec(topology="mesh", link_bandwidth_bits_per_cycle=32,
                                                 energy_per_bit_pj=0.0, rows=2, cols=2)
    # "1.0e9" is a string to PyYAML; the loader still gives a float.
    assert spec.clock_hz == 1.0e9 and type(spec.clock_hz) is float
    assert spec.resolve(spec.compute_cores[0].core) == CORE_FILE.resolve()
    assert spec.resolve(spec.compute_cores[0].mapping) == MAPPING_FILE.resolve()


def test_edge_tpu_single_values():
    spec = load_system("edge_tpu_single")
    assert spec.num_compute_cores == 1
    assert spec.pooling_core.units == 72
    assert spec.pooling_core.energy_per_op_pj == pytest.approx(0.1)
    assert spec.offchip.bandwidth_bits_per_cycle == 64
    assert spec.interconnect is None
    assert spec.clock_hz == 1.0e9


def test_load_by_name_folder_and_file_give_equal_specs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path):
    by_name = load_system("edge_tpu_quad")
    by_folder = load_system(SHIPPED / "edge_tpu_quad")
    by_file = load_system(SHIPPED / "edge_tpu_quad" / "system.yaml")
    by_str = load_system(str(SHIPPED / "edge_tpu_quad" / "system.yaml"))
    monkeypatch.chdir(SHIPPED)
    by_relative = load_system("edge_tpu_quad/system.yaml")
    monkeypatch.chdir(tmp_path)
    by_name_elsewhere = load_system("edge_tpu_quad")
    specs = [by_name, by_folder, by_file, by_str, by_relative, by_name_elsewhere]
    assert all(s == by_name for s in specs)
    assert all(_same_file(s.path, SHIPPED / "edge_tpu_quad" / "system.yaml") for s in specs)
    assert len({s.fingerprint() for s in specs}) == 1


def test_system_path_forms():
    target = (SHIPPED / "edge_tpu_single" / "system.yaml").resolve()
    assert _same_file(system_path("edge_tpu_single"), target)
    assert system_path(SHIPPED / "edge_tpu_single") == target
    assert system_path(target) == target


def test_unknown_system_name_lists_shipped_systems():
    with pytest.raises(SchemaError) as info:
        load_system("no_such_system")
    err = info.value
    msg = str(err)
    assert type(err) is SchemaError
    assert "no_such_system" in msg
    assert err.key == "accelerator"
    assert "edge_tpu_quad" in msg and "edge_tpu_single" in msg


def test_fingerprint_is_stable_and_distinguishes_systems():
    quad = load_system("edge_tpu_quad")
    assert quad.fingerprint() == quad.fingerprint()
    assert load_system("edge_tpu_quad").fingerprint() == quad.fingerprint()
    assert load_system("edge_tpu_single").fingerprint() != quad.fingerprint()


# --- $EENAS_ACCELERATORS and fingerprints of edited copies -------------------------------------


def test_env_var_points_registry_at_another_folder(tree: Path):
    assert accelerators_dir() == tree
    _dump(tree / "my_system" / "system.yaml", {**_quad(), "name": "my_system"})
    shipped = {p.parent.name for p in SHIPPED.glob("*/system.yaml")}
    assert "my_system" in list_systems() and set(list_systems()) - {"my_system"} == shipped
    spec = load_system("my_system")
    assert _same_file(spec.path, tree / "my_system" / "system.yaml")
    assert spec.resolve(spec.compute_cores[0].core) == (tree / "cores" / "edge_tpu_core.yaml").resolve()


def test_env_var_empty_folder_lists_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv(ACCELERATORS_ENV, str(tmp_path))
    assert list_systems() == []
    with pytest.raises(SchemaError) as info:
        load_system("edge_tpu_quad")
    assert "[]" in str(info.value)


def test_copied_tree_has_same_fingerprint(tree: Path):
    copied = load_system("edge_tpu_quad")
    assert _same_file(copied.path, tree / "edge_tpu_quad" / "system.yaml")
    original = load_system(SHIPPED / "edge_tpu_quad")
    assert copied == original
    assert copied.fingerprint() == original.fingerprint()


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert text.count(old) == 1, old
    path.write_text(text.replace(old, new))


@pytest.mark.parametrize(
    "relative, old, new",
    [
        ("cores/edge_tpu_core.yaml", "r_cost: 416.16", "r_cost: 500.0"),
        ("cores/edge_tpu_core.yaml", "sizes: [8, 8, 4, 4]", "sizes: [8, 8, 2, 4]"),
        ("cores/edge_tpu_core.mapping.yaml", "D1: [G]", "D1: [G, K]"),
        ("edge_tpu_quad/system.yaml", "energy_per_access_pj: 1000", "energy_per_access_pj: 900"),
        ("edge_tpu_quad/system.yaml", "count: 4", "count: 3"),
    ],
)
def test_fingerprint_changes_when_a_cost_relevant_file_changes(tree: Path, relative: str, old: str, new: str):
    before = load_system("edge_tpu_quad").fingerprint()
    _edit(tree / relative, old, new)
    after_spec = load_system("edge_tpu_quad")  # still a valid system
    assert after_spec.fingerprint() != before
    assert load_system("edge_tpu_quad").fingerprint() == after_spec.fingerprint()


def test_fingerprint_ignores_description(tree: Path):
    before = load_system("edge_tpu_quad").fingerprint()
    _edit(tree / "edge_tpu_quad" / "system.yaml", "description: Quad-core", "description: Renamed quad-core")
    assert load_system("edge_tpu_quad").fingerprint() == before


def test_shared_core_file_edit_changes_both_systems(tree: Path):
    quad, single = (load_system(n).fingerprint() for n in ("edge_tpu_quad", "edge_tpu_single"))
    _edit(tree / "cores" / "edge_tpu_core.yaml", "unit_energy: 0.04", "unit_energy: 0.05")
    assert load_system("edge_tpu_quad").fingerprint() != quad
    assert load_system("edge_tpu_single").fingerprint() != single


# --- bad system files ----------------------------------------------------------------------------


def _bad_system(tree: Path, edit: Callable[[dict[str, Any]], None]) -> Path:
    data = _quad()
    edit(data)
    return _dump(tree / "bad" / "system.yaml", data)


SYSTEM_CASES: dict[str, Any] = {
    "unknown top-level key": (
        lambda d: d.update(frobnicate=1),
        ("frobnicate: unknown key", "'offchip'", "'compute_cores'"),
    ),
    "missing offchip": (lambda d: d.pop("offchip"), ("offchip: missing required key",)),
    "missing compute_cores": (lambda d: d.pop("compute_cores"), ("compute_cores: missing required key",)),
    "count is a string": (
        lambda d: d["compute_cores"][0].update(count="four"),
        ("compute_cores[0].count: expected an integer, got 'four'",),
    ),
    "count zero": (lambda d: d["compute_cores"][0].update(count=0), ("compute_cores[0].count:",)),
    "zero offchip bandwidth": (
        lambda d: d["offchip"].update(bandwidth_bits_per_cycle=0),
        ("offchip.bandwidth_bits_per_cycle", "got 0"),
    ),
    "negative offchip bandwidth": (
        lambda d: d["offchip"].update(bandwidth_bits_per_cycle=-64),
        ("offchip.bandwidth_bits_per_cycle", "got -64"),
    ),
    "offchip bandwidth a float": (
        lambda d: d["offchip"].update(bandwidth_bits_per_cycle=64.5),
        ("offchip.bandwidth_bits_per_cycle: expected an integer",),
    ),
    "negative offchip energy": (
        lambda d: d["offchip"].update(energy_per_access_pj=-1),
        ("offchip.energy_per_access_pj",),
    ),
    "zero link bandwidth": pytest.param(
        lambda d: d["interconnect"].update(link_bandwidth_bits_per_cycle=0),
        ("interconnect.link_bandwidth_bits_per_cycle",),
    ),
    "unknown topology": pytest.param(
        lambda d: d["interconnect"].update(topology="ring"),
        ("interconnect.topology", "'mesh'", "'bus'", "'ring'"),
    ),
    "interconnect a string": (
        lambda d: d.update(interconnect="mesh"),
        ("interconnect: expected a mapping with keys", "got 'mesh'"),
    ),
    "interconnect null is fine, but unknown key next to it is not": (
        lambda d: d.update(interconnect=None, extra=True),
        ("extra: unknown key",),
    ),
    "pooling units zero": (lambda d: d["pooling_core"].update(units=0, energy_per_op_pj=0.1, core=None, mapping=None),
                           ("pooling_core.units",)),
    "pooling core without its mapping file": (
        lambda d: d["pooling_core"].pop("mapping"), ("pooling_core", "mapping: expected both core and mapping")),
    "pooling core given both ways": (
        lambda d: d["pooling_core"].update(units=72), ("pooling_core", "not both")),
    "simd core given neither way": (
        lambda d: d.update(simd_core={}),
        ("simd_core", "expected either core and mapping", "units and energy_per_op_pj")),
    "pooling core file missing": (
        lambda d: d["pooling_core"].update(core="../cores/no_pooling.yaml"),
        ("pooling_core.core", "no_pooling.yaml", "does not exist")),
    "compute core named like the SIMD core": (
        lambda d: d["compute_cores"][0].update(name="simd"), ("compute_cores", "'simd'", "taken")),
    "unknown key in simd core": (
        lambda d: d["simd_core"].update(lanes=64),
        ("simd_core.lanes: unknown key", "'units'", "'core'"),
    ),
    "no compute cores": (lambda d: d.update(compute_cores=[]), ("compute_cores",)),
    "clock a word": (lambda d: d.update(clock_hz="fast"), ("clock_hz: expected a finite number",)),
    "compute_cores a mapping": (
        lambda d: d.update(compute_cores={"name": "x"}),
        ("compute_cores: expected a list",),
    ),
    "core file missing": (
        lambda d: d["compute_cores"][0].update(core="../cores/no_such_core.yaml"),
        ("compute_cores[0].core", "no_such_core.yaml", "does not exist"),
    ),
    "mapping file missing": (
        lambda d: d["compute_cores"][0].update(mapping="missing.mapping.yaml"),
        ("compute_cores[0].mapping", "missing.mapping.yaml", "does not exist"),
    ),
}


@pytest.mark.parametrize("edit, needles", _case_params(SYSTEM_CASES))
def test_bad_system_file(tree: Path, edit: Callable[[dict[str, Any]], None], needles: tuple[str, ...],
                         caplog: pytest.LogCaptureFixture):
    path = _bad_system(tree, edit)
    _expect_error(path, path, *needles, caplog=caplog)
    # Loading by name (through $EENAS_ACCELERATORS) reports the same file.
    _expect_error("bad", path, *needles)


def test_system_yaml_syntax_error(tree: Path):
    path = tree / "bad" / "system.yaml"
    path.parent.mkdir()
    text = (SHIPPED / "edge_tpu_quad" / "system.yaml").read_text()
    text = text.replace("  bandwidth_bits_per_cycle: 64\n", "  bandwidth_bits_per_cycle: 64\n energy: [1, 2\n")
    path.write_text(text)
    lines = text.splitlines()
    bad_line = next(i for i, line in enumerate(lines, 1) if line.startswith(" energy"))
    err = _expect_error(path, path, "line ", "valid YAML")
    assert err.key.startswith("line ")
    assert abs(int(err.key.split()[1]) - bad_line) <= 1, (err.key, bad_line)


def test_system_yaml_not_a_mapping(tree: Path):
    path = tree / "bad" / "system.yaml"
    path.parent.mkdir()
    path.write_text("- just\n- a list\n")
    _expect_error(path, path, "<top level>", "expected a mapping")


def test_empty_system_yaml_reports_first_missing_key(tree: Path):
    path = tree / "bad" / "system.yaml"
    path.parent.mkdir()
    path.write_text("# nothing here\n")
    _expect_error(path, path, "missing required key")


def test_path_key_is_the_loaders_not_the_files(tree: Path):
    # `path` is filled in by the loader: a `path:` in the file is an unknown key, and the keys the
    # error lists are the ones a user may write
    path = _bad_system(tree, lambda d: d.update(path="/nowhere/system.yaml"))
    err = _expect_error(path, path, "path: unknown key")
    assert "'path'" not in str(err).split("expected one of", 1)[1]
    assert _same_file(load_system(tree / "edge_tpu_quad").path, tree / "edge_tpu_quad" / "system.yaml")


# --- bad core and mapping files ------------------------------------------------------------------


def _with_core(tree: Path, core: Any = None, mapping: Any = None) -> tuple[Path, Path, Path]:
    """A system in tree/bad whose compute core uses the given core/mapping data (shipped if None)."""
    core_path = _dump(tree / "cores" / "bad_core.yaml", _yaml(CORE_FILE) if core is None else core)
    mapping_path = _dump(tree / "cores" / "bad_core.mapping.yaml", _yaml(MAPPING_FILE) if mapping is None else mapping)
    data = _quad()
    data["compute_cores"][0].update(core="../cores/bad_core.yaml", mapping="../cores/bad_core.mapping.yaml")
    system = _dump(tree / "bad" / "system.yaml", data)
    return system, core_path, mapping_path


def _core(edit: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = copy.deepcopy(_yaml(CORE_FILE))
    edit(data)
    return data


def _mapping(edit: Callable[[list[dict[str, Any]]], None]) -> list[dict[str, Any]]:
    data = copy.deepcopy(_yaml(MAPPING_FILE))
    edit(data)
    return data


def _drop_i2(core: dict[str, Any]) -> None:
    """Remove every memory level holding I2 (the weights)."""
    mems = core["memories"]
    del mems["weight_reg"], mems["weight_sram"]
    mems["dram_port"]["operands"] = ["I1", "O"]
    port = mems["dram_port"]["ports"][0]
    port["allocation"] = [a for a in port["allocation"] if not a.startswith("I2")]


def _three_dim_core(core: dict[str, Any]) -> None:
    """A valid core whose array has only D1..D3."""
    core["operational_array"].update(dimensions=["D1", "D2", "D3"], sizes=[8, 8, 16])
    core["memories"]["weight_reg"]["served_dimensions"] = ["D3"]
    for name in ("weight_sram", "act_sram", "dram_port"):
        core["memories"][name]["served_dimensions"] = ["D1", "D2", "D3"]


def _port(name: str, index: int, **values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda core: core["memories"][name]["ports"][index].update(values)


CORE_CASES = {
    "memory size a string": (
        _core(lambda c: c["memories"]["weight_reg"].update(size="big")),
        ("memories.weight_reg.size", "integer"),
    ),
    "unknown operand": (
        _core(lambda c: c["memories"]["weight_reg"].update(operands=["W"])),
        ("memories.weight_reg.operands[0]", "regex"),
    ),
    "port bandwidth_min zero": (
        _core(_port("weight_reg", 0, bandwidth_min=0)),
        ("memories.weight_reg.ports[0]", "bandwidth_min"),
    ),
    "port bandwidth_min negative": (
        _core(_port("act_sram", 1, bandwidth_min=-8)),
        ("memories.act_sram.ports[1]", "bandwidth_min"),
    ),
    "no memory holds I2": (_core(_drop_i2), ("memories", "I2")),
    "unit_energy a string": (
        _core(lambda c: c["operational_array"].update(unit_energy="cheap")),
        ("operational_array.unit_energy",),
    ),
    "core file a list": ([1, 2, 3], ("<top level>", "ZigZag core description")),
    "port bandwidth_max below bandwidth_min": pytest.param(
        _core(_port("weight_reg", 1, bandwidth_max=16)),
        ("memories.weight_reg.ports[1]", "bandwidth_max"),
    ),
    "served dimension not in the array": pytest.param(
        _core(lambda c: c["memories"]["weight_reg"].update(served_dimensions=["D3", "D9"])),
        ("memories.weight_reg.served_dimensions", "D9"),
    ),
}


@pytest.mark.parametrize("core, needles", _case_params(CORE_CASES))
def test_bad_core_file(tree: Path, core: Any, needles: tuple[str, ...], caplog: pytest.LogCaptureFixture):
    system, core_path, _ = _with_core(tree, core=core)
    err = _expect_error(system, core_path, *needles, caplog=caplog)
    assert str(core_path.name) in str(err)


MAPPING_CASES = {
    "hint on a dimension ZigZag does not know (D7)": (
        None,
        _mapping(lambda m: m[0]["spatial_mapping_hint"].update(D7=["K"])),
        ("[0].spatial_mapping_hint.D7",),
    ),
    "hint on a dimension the core does not have (D4 on a 3-D array)": (
        _core(_three_dim_core),
        [{"name": "default", "spatial_mapping_hint": {"D1": ["K"], "D2": ["C"], "D4": ["OX"]}}],
        ("[0].spatial_mapping_hint.D4", "array dimension", "'D1', 'D2', 'D3'"),
    ),
    "spatial_mapping on a dimension the core does not have": (
        _core(_three_dim_core),
        [{"name": "default", "spatial_mapping_hint": {"D1": ["K"]}},
         {"name": "fc", "spatial_mapping": {"D4": ["K, 4"]}}],
        ("[1].spatial_mapping.D4", "array dimension"),
    ),
    "entry without a name": pytest.param(
        None,
        _mapping(lambda m: m[1].pop("name")),
        ("[1].name",),
    ),
    "mapping file a mapping, not a list": (
        None,
        {"name": "default"},
        ("<top level>", "a list of ZigZag mapping entries"),
    ),
    "no default entry": pytest.param(
        None,
        _mapping(lambda m: m[0].update(name="conv")),
        ("'default'",),
    ),
}


@pytest.mark.parametrize("core, mapping, needles", _case_params(MAPPING_CASES))
def test_bad_mapping_file(tree: Path, core: Any, mapping: Any, needles: tuple[str, ...],
                          caplog: pytest.LogCaptureFixture):
    system, _, mapping_path = _with_core(tree, core=core, mapping=mapping)
    _expect_error(system, mapping_path, *needles, caplog=caplog)


def test_three_dim_core_with_matching_mapping_is_valid(tree: Path):
    hints = [{"name": "default", "spatial_mapping_hint": {"D1": ["K"], "D2": ["C"], "D3": ["OX"]}}]
    system, _, _ = _with_core(tree, core=_core(_three_dim_core), mapping=hints)
    spec = load_system(system)
    assert spec.num_compute_cores == 4


def test_core_yaml_syntax_error(tree: Path):
    system, core_path, _ = _with_core(tree)
    core_path.write_text(CORE_FILE.read_text().replace("    size: 32\n", "    size: [32\n", 1))
    err = _expect_error(system, core_path, "line ", "valid YAML")
    assert err.key.startswith("line ")


def test_first_core_error_is_reported_for_second_compute_core(tree: Path):
    system, core_path, _ = _with_core(tree, core=_core(lambda c: c["memories"]["act_sram"].update(size="2MB")))
    data = _quad()
    data["compute_cores"] = [
        {**data["compute_cores"][0], "count": 2},
        {"name": "bad", "core": "../cores/bad_core.yaml", "mapping": "../cores/bad_core.mapping.yaml", "count": 2},
    ]
    _dump(system, data)
    _expect_error(system, core_path, "memories.act_sram.size")


# --- property tests: generated malformed system and core files give one SchemaError, quickly ---------

from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.fuzz import bounded, mutations, yaml_texts  # noqa: E402

_SYSTEM = _yaml(SHIPPED / "edge_tpu_quad" / "system.yaml")
_CORE = _yaml(CORE_FILE)
_FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _validate_or_schema_error(system: Any, core: Any | str) -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        (folder / "core.yaml").write_text(core if isinstance(core, str) else yaml.safe_dump(core, allow_unicode=True),
                                          encoding="utf-8", errors="surrogateescape")
        shutil.copy(MAPPING_FILE, folder / "mapping.yaml")
        if isinstance(system, dict) and isinstance(system.get("compute_cores"), list) and system["compute_cores"] \
                and isinstance(system["compute_cores"][0], dict):
            system = copy.deepcopy(system)
            system["compute_cores"][0].update(core="core.yaml", mapping="mapping.yaml")
        path = folder / "system.yaml"
        path.write_text(yaml.safe_dump(system, allow_unicode=True))
        with bounded():
            try:
                load_system(path)
            except SchemaError as exc:
                assert exc.file in (str(path), str(folder / "core.yaml"), str(folder / "mapping.yaml")) \
                    or Path(exc.file).parent == folder, str(exc)


@_FUZZ
@given(mutations(_SYSTEM))
def test_fuzzed_system_file_gives_one_schema_error(system):
    _validate_or_schema_error(system, _CORE)


@_FUZZ
@given(mutations(_CORE))
def test_fuzzed_core_file_gives_one_schema_error(core):
    _validate_or_schema_error(_SYSTEM, core)


@_FUZZ
@given(yaml_texts)
def test_fuzzed_core_text_gives_one_schema_error(text):
    _validate_or_schema_error(_SYSTEM, text)
