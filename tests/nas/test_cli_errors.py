"""Bad input through the command line: one line naming the file and the key, exit code 2 (1 for the
few checks argparse-style ``SystemExit`` makes), no traceback, and nothing already written changed.

Each case writes its bad file under ``tmp_path``, runs ``nas ...`` in-process and checks the line it
prints. A run folder that already holds a study (``study.db``, a real Optuna SQLite file) is
compared byte for byte before and after the failed command.
"""

from __future__ import annotations

import hashlib
import socket
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import optuna
import pytest
import yaml

from hwmodel import load_system
from nas.cli import main
from tests.helpers import system_data_elsewhere

REPO = Path(__file__).resolve().parents[2]


def fails(capsys: pytest.CaptureFixture[str], *argv: str, code: int = 2, after_progress: bool = False) -> str:
    """Run ``nas argv``; assert it fails with ``code`` and one ``error:`` line (with ``after_progress``:
    the last line, after the search's progress bar and per-trial lines); return that line."""
    try:
        rc = main(list(argv))
        err = capsys.readouterr().err
    except SystemExit as exc:
        rc, err = 1, f"{capsys.readouterr().err}{exc.code}"
    lines = [line for line in err.strip().splitlines() if line.strip()]
    if after_progress:
        assert sum(line.startswith("error:") for line in lines) == 1, err
        lines = lines[-1:]
    assert rc == code, f"exit code {rc}, stderr: {err}"
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


def digest(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder``."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def tiny_yaml(tmp_path: Path, **sections: dict) -> Path:
    """A small valid config file (synthetic data) with ``sections`` merged in; returns its path."""
    data: dict = {"run_dir": str(tmp_path / "run"),
                  "data": {"name": "synthetic", "n_train": 64, "n_val": 32, "n_test": 32},
                  "train": {"epochs": 0}, "search": {"n_trials": 2}, "cost": {"workers": 1, "cache": None}}
    for key, value in sections.items():
        data[key] = {**data.get(key, {}), **value} if isinstance(value, dict) else value
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


@pytest.fixture()
def run_with_study(tmp_path: Path) -> Path:
    """A run folder holding a real study file with one finished trial."""
    run = tmp_path / "run"
    run.mkdir()
    study = optuna.create_study(storage=f"sqlite:///{run / 'study.db'}", study_name="eenas")
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=1)
    return run


# --- config keys: refused at load, before the study file is touched ---------------------------------

CONFIG_CASES: dict[str, tuple[dict, str]] = {
    "lpf_limit 20": ({"cost": {"zigzag": {"lpf_limit": 20}}},
                     "cost.zigzag.lpf_limit: expected an integer in 1..8, got 20"),
    "lpf_limit 0": ({"cost": {"zigzag": {"lpf_limit": 0}}}, "lpf_limit: expected an integer in 1..8, got 0"),
    "tile_rows 0": ({"cost": {"schedule": {"tile_rows": 0}}},
                    "cost.schedule.tile_rows: expected a positive integer or null, got 0"),
    "tile_rows -4": ({"cost": {"schedule": {"tile_rows": -4}}},
                     "tile_rows: expected a positive integer or null, got -4"),
    "spatial_mappings 0": ({"cost": {"zigzag": {"spatial_mappings": 0}}},
                           "spatial_mappings: expected a positive integer"),
    "flat mode (moved)": ({"cost": {"mode": "fused"}},
                          "cost.mode: a key of cost.schedule now: write it as cost.schedule.mode"),
    "mode bogus": ({"cost": {"schedule": {"mode": "fast"}}}, "cost.schedule.mode"),
    "n_train 0": ({"data": {"n_train": 0}}, "data.n_train: expected a positive number of images, got 0"),
    "enqueue bogus": ({"search": {"enqueue": ["bogus"]}}, "search.enqueue: expected baselines of space"),
    "eval_batch_size 0": ({"search": {"eval_batch_size": 0}}, "eval_batch_size: expected a positive number"),
    "screening_picks 0": ({"search": {"screening_picks": 0}}, "screening_picks: expected a positive integer"),
    "surrogate_ridge 0": ({"search": {"surrogate_ridge": 0}}, "surrogate_ridge: expected a positive number or 'loo'"),
    "surrogate_ridge bogus": ({"search": {"surrogate_ridge": "cv"}}, "search.surrogate_ridge: expected"),
    "screening_rivals bogus": ({"search": {"screening_rivals": "both"}}, "search.screening_rivals: expected"),
    "fixed bogus": ({"search": {"fixed": {"nonsense": 1}}}, "search.fixed: nonsense: not a parameter"),
}


@pytest.mark.parametrize("case", CONFIG_CASES, ids=list(CONFIG_CASES))
def test_bad_config_key_is_refused_before_the_study_changes(capsys, tmp_path, run_with_study, case):
    sections, needle = CONFIG_CASES[case]
    config = tiny_yaml(tmp_path, **sections)
    before = digest(run_with_study)
    line = fails(capsys, "search", "--config", str(config))
    assert str(config) in line and needle in line, line
    assert digest(run_with_study) == before


def test_unknown_operating_point_is_refused_before_the_study_changes(capsys, tmp_path, run_with_study):
    config = tiny_yaml(tmp_path, cost={"operating_point": "turbo"})
    before = digest(run_with_study)
    line = fails(capsys, "search", "--config", str(config))
    assert str(config) in line and "cost.operating_point: " in line and "'turbo'" in line
    assert digest(run_with_study) == before


def test_top_level_list_and_empty_file(capsys, tmp_path):
    listed = tmp_path / "list.yaml"
    listed.write_text("- run_dir: x\n")
    line = fails(capsys, "train", "--config", str(listed))
    assert str(listed) in line and "a mapping with keys" in line and "got a list" in line
    empty = tmp_path / "empty.yaml"
    empty.write_text("# nothing here\n")
    line = fails(capsys, "train", "--config", str(empty))
    assert str(empty) in line and "empty file" in line and "{}" in line


def test_internal_keys_are_not_offered(capsys, tmp_path):
    line = fails(capsys, "train", "--config", str(tiny_yaml(tmp_path, runn_dir="x")))
    allowed = line.split("expected one of", 1)[1]
    assert "runn_dir: unknown key" in line and "'run_dir'" in allowed and "'source'" not in allowed


@pytest.mark.parametrize(("override", "needle"), [
    ("search.n_trials=[1", "--set search.n_trials: line 1: expected valid YAML"),
    ("run_dir.x=1", "run_dir.x: expected a key inside a section, but run_dir is a single value"),
])
def test_bad_set_override(capsys, tmp_path, override, needle):
    line = fails(capsys, "train", "--config", str(tiny_yaml(tmp_path)), "--set", override)
    assert needle in line, line


def test_non_utf8_files(capsys, tmp_path):
    png = b"\x89PNG\r\n\x1a\n" + bytes(range(256))
    config = tmp_path / "config.yaml"
    config.write_bytes(png)
    line = fails(capsys, "train", "--config", str(config))
    assert str(config) in line and "UTF-8" in line
    system = tmp_path / "system.yaml"
    system.write_bytes(png)
    line = fails(capsys, "accelerators", "--validate", str(system))
    assert str(system) in line and "UTF-8" in line


BOMB = "a: &a ['lol','lol','lol','lol','lol','lol','lol','lol','lol']\n" + "".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
    f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n" for i in range(8))


def test_yaml_alias_bomb_is_refused_quickly(capsys, tmp_path):
    """9^9 (387 million) strings once expanded: refused in well under a second."""
    system = yaml.safe_load((REPO / "accelerators" / "edge_tpu_quad" / "system.yaml").read_text())
    text = BOMB + yaml.safe_dump(system).replace("description:", "description: *i\nold_description:", 1)
    bad_system = tmp_path / "system.yaml"
    bad_system.write_text(text)
    config = tmp_path / "config.yaml"
    config.write_text(BOMB + "search:\n  enqueue: *i\n")
    for argv in (("accelerators", "--validate", str(bad_system)), ("train", "--config", str(config))):
        t0 = time.perf_counter()
        line = fails(capsys, *argv)
        assert time.perf_counter() - t0 < 5.0
        assert "once aliases are expanded" in line and argv[-1] in line


def test_recursive_alias_is_refused(capsys, tmp_path):
    config = tmp_path / "config.yaml"
    config.write_text("search: &s\n  enqueue: [*s]\n")
    line = fails(capsys, "train", "--config", str(config))
    assert "recursive aliases" in line


# --- accelerator files: implausible values are refused by --validate --------------------------------

def _system_copy(tmp_path: Path, edit_system: Callable[[dict], None] | None = None,
                 edit_core: Callable[[dict], None] | None = None) -> Path:
    src = REPO / "accelerators" / "edge_tpu_quad" / "system.yaml"
    system = system_data_elsewhere(load_system(src))
    core_src = (src.parent / system["compute_cores"][0]["core"]).resolve()
    core = yaml.safe_load(core_src.read_text())
    if edit_core:
        edit_core(core)
    (tmp_path / "core.yaml").write_text(yaml.safe_dump(core, sort_keys=False))
    system["compute_cores"][0]["core"] = "core.yaml"
    system["compute_cores"][0]["mapping"] = str((src.parent / system["compute_cores"][0]["mapping"]).resolve())
    if edit_system:
        edit_system(system)
    path = tmp_path / "system.yaml"
    path.write_text(yaml.safe_dump(system, sort_keys=False))
    return path


def _set(path: str, value: object) -> Callable[[dict], None]:
    def edit(data: dict) -> None:
        *parents, leaf = path.split(".")
        node = data
        for key in parents:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[leaf] = value
    return edit


ACCELERATOR_CASES = {
    "zero-size array": (None, _set("operational_array.sizes", [8, 0, 4, 4]), "core.yaml",
                        "operational_array.sizes: expected a positive number of units"),
    "mesh 0 x -1": (_set("interconnect.rows", 0), None, "system.yaml", "mesh of at least 1 x 1"),
    "mesh too small": (_set("interconnect.cols", 1), None, "system.yaml", "has room for 2 cores, expected at least"),
    "1-bit memory": (None, _set("memories.weight_reg.size", 1), "core.yaml",
                     "memories.weight_reg.size: expected at least one access of its ports (32 bits), got 1"),
    "negative r_cost": (None, _set("memories.act_sram.r_cost", -416.16), "core.yaml",
                        "memories.act_sram.r_cost: expected a non-negative number"),
    "NaN unit energy": (None, _set("operational_array.unit_energy", float("nan")), "core.yaml",
                        "operational_array.unit_energy: expected a non-negative number"),
    "negative link energy": (_set("interconnect.energy_per_bit_pj", -0.5), None, "system.yaml",
                             "energy_per_bit_pj: expected a non-negative number"),
    "NaN clock": (_set("clock_hz", float("nan")), None, "system.yaml", "clock_hz: expected a finite number"),
}


@pytest.mark.parametrize("case", ACCELERATOR_CASES, ids=list(ACCELERATOR_CASES))
def test_implausible_accelerator_fails_validation(capsys, tmp_path, case):
    edit_system, edit_core, bad_file, needle = ACCELERATOR_CASES[case]
    if case == "mesh 0 x -1":
        edit_system = lambda d: d["interconnect"].update(rows=0, cols=-1)  # noqa: E731
    path = _system_copy(tmp_path, edit_system, edit_core)
    line = fails(capsys, "accelerators", "--validate", str(path))
    assert str(tmp_path / bad_file) in line and needle in line, line


# --- dataset files ----------------------------------------------------------------------------------

def _npz(tmp_path: Path, x_train: np.ndarray, y_train: np.ndarray) -> Path:
    path = tmp_path / "data.npz"
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_train[:8], y_test=y_train[:8])
    return path


def _npz_config(tmp_path: Path, npz: Path) -> Path:
    return tiny_yaml(tmp_path, data={"name": "npz", "root": str(npz), "n_val": 8})


def test_huge_label_is_refused_without_allocating(capsys, tmp_path):
    y = np.zeros(64, dtype=np.int64)
    y[3] = 900_000
    npz = _npz(tmp_path, np.zeros((64, 32, 32), np.uint8), y)
    line = fails(capsys, "train", "--config", str(_npz_config(tmp_path, npz)))
    assert str(npz) in line and "y_train" in line and "class labels in 0..999, found label 900000" in line


def test_nan_pixels_are_refused(capsys, tmp_path):
    x = np.zeros((64, 32, 32), np.float32)
    x[5, 3, 3] = np.nan
    npz = _npz(tmp_path, x, np.arange(64) % 10)
    line = fails(capsys, "train", "--config", str(_npz_config(tmp_path, npz)))
    assert str(npz) in line and "x_train" in line and "finite pixel values, found 1 NaN" in line


def test_object_dtype_npz_is_refused(capsys, tmp_path):
    npz = tmp_path / "data.npz"
    labels = np.arange(64) % 10
    np.savez(npz, x_train=np.array([np.zeros(3), "x"] * 32, dtype=object), y_train=labels,
             x_test=np.zeros((8, 32, 32), np.uint8), y_test=labels[:8])
    line = fails(capsys, "train", "--config", str(_npz_config(tmp_path, npz)))
    assert str(npz) in line and "x_train: expected a numeric array stored without pickle" in line


@pytest.mark.parametrize("size", [8, 28, 40])
def test_image_sizes_the_space_accepts_are_adapted(tmp_path, size):
    from nas import api
    from nas.config import load_config

    npz = _npz(tmp_path, np.zeros((64, size, size), np.uint8), np.arange(64) % 10)
    splits, space = api.data_and_space(load_config(_npz_config(tmp_path, npz)))
    expected = max(size, 32)  # smaller images are zero-padded to 32, larger ones size the space
    assert splits.image_shape == (1, expected, expected) and space.options.input_size == expected
    assert space.layer_graph(space.extreme(True)).graph["input_shape"] == (1, expected, expected)


def test_image_size_the_space_refuses_names_the_file(capsys, tmp_path):
    npz = _npz(tmp_path, np.zeros((64, 36, 36), np.uint8), np.arange(64) % 10)
    line = fails(capsys, "train", "--config", str(_npz_config(tmp_path, npz)))
    assert str(npz) in line and "1-channel 36x36 images" in line and "multiple of 8" in line


def test_idx_images_of_40_pixels_size_the_space(tmp_path):
    from nas import api
    from nas.config import load_config

    root = tmp_path / "idx"
    root.mkdir()
    for stem, n in (("train", 64), ("t10k", 16)):
        images = np.zeros((n, 40, 40), np.uint8)
        (root / f"{stem}-images-idx3-ubyte").write_bytes(bytes([0, 0, 8, 3]) + b"".join(
            d.to_bytes(4, "big") for d in images.shape) + images.tobytes())
        (root / f"{stem}-labels-idx1-ubyte").write_bytes(bytes([0, 0, 8, 1]) + n.to_bytes(4, "big")
                                                         + (np.arange(n) % 10).astype(np.uint8).tobytes())
    cfg = load_config(tiny_yaml(tmp_path, data={"name": "fashion_mnist", "root": str(root), "n_val": 8}))
    splits, space = api.data_and_space(cfg)
    assert splits.image_shape == (1, 40, 40) and space.options.input_size == 40


# --- storages, studies and servers ------------------------------------------------------------------

@pytest.mark.parametrize("url", ["sqlite:///", "sqlite://", "sqlite:///:memory:"])
def test_in_memory_sqlite_is_refused_before_anything_runs(capsys, tmp_path, url):
    line = fails(capsys, "search", "--config", str(tiny_yaml(tmp_path)), "--storage", url)
    assert f"error: {url}: expected a study file after sqlite:///" in line
    assert not (tmp_path / "run" / "study.db").exists()


def test_dashboard_checks_the_storage_before_printing_its_url(capsys, tmp_path):
    missing = tmp_path / "nothing" / "study.db"
    line = fails(capsys, "dashboard", "--storage", f"sqlite:///{missing}")
    assert "expected an existing study file" in line and str(missing) in line
    assert not missing.exists()


def test_second_dashboard_on_a_busy_port(capsys, run_with_study):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        url = f"sqlite:///{run_with_study / 'study.db'}"
        line = fails(capsys, "dashboard", "--storage", url, "--port", str(port), code=1)
    assert f"--port {port}: expected a free port on 127.0.0.1" in line
    assert "optuna-dashboard on" not in capsys.readouterr().out


# --- checkpoints ------------------------------------------------------------------------------------

class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        import os

        return (os.system, (f"touch '{self.marker}'",))


def test_checkpoint_with_code_is_refused_without_unsafe_advice(capsys, tmp_path):
    import torch

    run = tmp_path / "run"
    run.mkdir()
    marker = tmp_path / "ran"
    torch.save({"version": 2, "state_dict": _Payload(marker)}, run / "supernet.pt")
    line = fails(capsys, "search", "--config", str(tiny_yaml(tmp_path)))
    assert str(run / "supernet.pt") in line and "refused, the file holds more than tensors" in line
    assert "weights_only=False" not in line and "trust" not in line
    assert not marker.exists()


# --- runs with a real (tiny) supernet and study ---------------------------------------------------------

@pytest.fixture()
def tiny_copy(tiny_run, tmp_path: Path) -> Path:
    """A copy of the tiny run's folder (config.yaml pointing at the copy, study.db, supernet.pt)."""
    import shutil

    cfg = tiny_run[0]
    run = tmp_path / "tiny"
    shutil.copytree(cfg.run_dir, run, ignore=shutil.ignore_patterns("artifacts", "exports"))
    data = yaml.safe_load((run / "config.yaml").read_text())
    (run / "config.yaml").write_text(yaml.safe_dump({**data, "run_dir": str(run)}))
    return run


def test_export_of_a_missing_or_failed_trial(capsys, tiny_copy):
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{tiny_copy / 'study.db'}")
    failed = study.ask()
    study.tell(failed, state=optuna.trial.TrialState.FAIL)
    before = digest(tiny_copy)
    line = fails(capsys, "export", "--run-dir", str(tiny_copy), "--trial", "999")
    assert f"--trial 999: expected a trial number of study 'tiny' (0..{failed.number})" in line
    line = fails(capsys, "export", "--run-dir", str(tiny_copy), "--trial", str(failed.number))
    assert f"--trial {failed.number}: expected a complete trial" in line and "is FAIL" in line
    assert digest(tiny_copy) == before and not (tiny_copy / "exports").exists()


def test_a_study_whose_every_trial_failed_exits_non_zero_with_the_reasons(capsys, tiny_copy, tmp_path):
    from tests.helpers import unmappable_system

    (tmp_path / "hw").mkdir()
    system = unmappable_system(tmp_path / "hw")
    (tiny_copy / "study.db").unlink()
    line = fails(capsys, "search", "--run-dir", str(tiny_copy), "--set", f"cost.accelerator={system}",
                 "--set", "cost.cache=null", "--set", "search.n_trials=2", "--set", "search.enqueue=[]",
                 after_progress=True)
    assert "study 'tiny': all 2 trials failed (2 x MappingError: layer" in line and "cannot be mapped" in line


def test_search_into_a_fresh_folder_writes_its_config(tiny_run, tmp_path):
    from nas import api

    cfg, supernet, _study, data = tiny_run
    from dataclasses import replace

    fresh = replace(cfg, run_dir=str(tmp_path / "fresh"), search=replace(cfg.search, n_trials=1))
    api.search(fresh, supernet, progress=False, data=data)
    assert (tmp_path / "fresh" / "config.yaml").is_file()
    assert main(["report", "--run-dir", str(tmp_path / "fresh")]) == 0
