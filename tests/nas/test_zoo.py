"""The model zoo: publishing, hash and space checks, searching from a zoo supernet, and the shipped
entries reproducing their recorded accuracy on real data."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from nas import api, zoo
from tests.nas.conftest import tiny_config


@pytest.fixture(scope="module")
def published(tmp_path_factory: pytest.TempPathFactory):
    """A tiny trained supernet published into a temporary zoo folder as ``tiny``."""
    root = tmp_path_factory.mktemp("zoo")
    cfg = tiny_config(root / "run", train={"epochs": 1})
    splits, space = data = api.data_and_space(cfg)
    supernet = api.train(cfg, progress=False, data=data)
    check = {"subnet": "reference", "bits": "W8A8", "test_images": 128, "bn_recalibration_samples": 256}
    check["accuracy"] = zoo.measure_check(supernet, space, splits, check)
    zoo_dir = root / "zoo"
    zoo_dir.mkdir()
    record = zoo.publish("tiny", api.paths(cfg).checkpoint, cfg, description="a tiny test supernet",
                         accuracy=[{"subnet": "largest", "bits": "W8A8", "final_exit_accuracy": 0.5}],
                         check=check, zoo_dir=zoo_dir)
    return cfg, zoo_dir, record


@pytest.fixture
def tiny_zoo(published, monkeypatch):
    cfg, zoo_dir, record = published
    monkeypatch.setattr(zoo, "ZOO_DIR", zoo_dir)
    return cfg, zoo_dir, record


def test_published_entry_loads_with_its_weights(tiny_zoo):
    cfg, zoo_dir, record = tiny_zoo
    assert zoo.names() == ["tiny"]
    assert record.bytes <= zoo.MAX_FILE_BYTES and len(record.sha256) == 64
    assert record.config["space"] == cfg.to_dict()["space"] and record.config["train"]["epochs"] == 1
    weights = torch.load(zoo_dir / record.file, weights_only=True)
    assert "optimizer" not in weights  # weights only
    net = zoo.load_supernet("tiny")
    trained = torch.load(api.paths(cfg).checkpoint, weights_only=True)["state_dict"]
    for name, value in net.state_dict().items():
        assert torch.equal(value, trained[name]), name
    assert zoo.config("tiny").space == cfg.space


def test_a_loaded_entry_reproduces_its_recorded_check(tiny_zoo):
    cfg, _, record = tiny_zoo
    splits, space = api.data_and_space(cfg)
    assert zoo.measure_check(zoo.load_supernet("tiny", space), space, splits, record.check) == record.check["accuracy"]


def test_unknown_name_lists_the_zoo(tiny_zoo):
    with pytest.raises(zoo.ZooError, match=r"'nope'.*\['tiny'\]"):
        zoo.entry("nope")


def test_a_changed_weights_file_is_refused_by_its_hash(tiny_zoo, tmp_path):
    _, zoo_dir, record = tiny_zoo
    copy = tmp_path / "zoo"
    copy.mkdir()
    (copy / "tiny.json").write_text((zoo_dir / "tiny.json").read_text())
    data = bytearray((zoo_dir / record.file).read_bytes())
    data[-100] ^= 0xFF
    (copy / record.file).write_bytes(bytes(data))
    with pytest.raises(zoo.ZooError, match=r"tiny.pt: sha256: expected"):
        zoo.load_supernet("tiny", zoo_dir=copy)


def test_a_space_mismatch_is_refused(tiny_zoo):
    from search_spaces import create_space

    other = create_space("mobilenetv2_cifar", width_mult=0.5)
    with pytest.raises(zoo.ZooError, match="space: this supernet was trained for"):
        zoo.load_supernet("tiny", other)


def test_nas_search_starts_from_a_zoo_supernet_without_training(tiny_zoo, tmp_path, capsys):
    from nas.cli import main

    _, zoo_dir, record = tiny_zoo
    run = tmp_path / "run"
    rc = main(["search", "--supernet", "tiny", "--run-dir", str(run), "--set", "search.n_trials=2",
               "--set", "search.population_size=2", "--set", "cost.workers=1", "--set", "search.trial_plots=false",
               "--set", "search.study_name=zoo"])
    assert rc == 0
    assert zoo.file_sha256(run / "supernet.pt") == record.sha256  # the zoo weights, installed, not trained
    assert not (run / "train_log.jsonl").exists()
    assert "supernet: zoo 'tiny'" in capsys.readouterr().out
    # the same run folder again resumes; a folder with another supernet is refused
    other = tmp_path / "other"
    other.mkdir()
    torch.save({"x": 1}, other / "supernet.pt")
    assert main(["search", "--supernet", "tiny", "--run-dir", str(other), "--set", "search.n_trials=1"]) == 2


@pytest.mark.parametrize("name", zoo.names())
def test_shipped_supernet_reproduces_its_recorded_accuracy_on_real_data(name: str):
    """Rebuild the recorded check (a subnet's accuracy on a slice of the real test split) from the
    shipped file: inherited weights, batch-norm re-estimated as recorded."""
    record = zoo.entry(name)
    cfg = zoo.config(name)
    if cfg.data.root and not Path(cfg.data.root).expanduser().exists():
        pytest.skip(f"{cfg.data.root}: the dataset is not installed (apt-get install dataset-fashion-mnist)")
    splits, space = api.data_and_space(cfg)
    supernet = zoo.load_supernet(name, space)
    accuracy = zoo.measure_check(supernet, space, splits, record.check)
    assert accuracy == pytest.approx(record.check["accuracy"], abs=0.003), json.dumps(record.check)
