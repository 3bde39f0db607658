"""The quickstart when no trial is feasible: it says so and exports nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from nas.quickstart import QUICKSTART_CONFIG, quickstart
from tests.test_packaging import TINY_QUICKSTART

TINY = {key: yaml.safe_load(value) for key, value in (pair.split("=", 1) for pair in TINY_QUICKSTART)}


def test_no_feasible_trial_exports_nothing_and_says_so(tmp_path, capsys):
    # also with the other constraints off  # no network costs a billionth of its static one
    impossible = {"constraints.normalized_edp_max": 1e-9}
    result = quickstart(QUICKSTART_CONFIG, overrides={"run_dir": str(tmp_path / "run"), **TINY, **impossible},
                        progress=False)
    out = capsys.readouterr().out
    assert result["trial"] is None and result["export"] is None
    assert "No trial met the exit-overhead constraints" in out and "normalized_edp_max <= 1e-09" in out
    assert "exported trial" not in out and not (tmp_path / "run" / "exports").exists()


def test_nas_run_wires_the_whole_pipeline_once_and_exports_the_chosen_trial(tmp_path, capsys):
    from nas.cli import main

    args = [arg for pair in TINY_QUICKSTART for arg in ("--set", pair)]
    assert main(["run", "--config", "configs/quickstart.yaml", "--set", f"run_dir={tmp_path / 'run'}", *args]) == 0
    out = capsys.readouterr().out
    exported = out.split("exported: ", 1)[1].strip()
    assert (tmp_path / "run" / "pareto.json").is_file() and (tmp_path / "run" / "supernet.pt").is_file()
    assert exported.startswith(str(tmp_path / "run" / "exports")) and (tmp_path / "run" / "exports").is_dir()


def test_run_announces_each_step_with_what_the_earlier_ones_made(tmp_path):
    from nas import api
    from nas.config import load_config

    seen = []

    def record(step, out):
        seen.append((step, out.splits is not None, out.supernet is not None, out.study is not None,
                     out.report_table is not None))

    cfg = load_config("configs/quickstart.yaml", {"run_dir": str(tmp_path / "run"), **TINY})
    out = api.run(cfg, progress=False, before_step=record)
    assert [s[0] for s in seen] == list(api.STEPS)
    assert seen == [("data", False, False, False, False), ("train", True, False, False, False),
                    ("search", True, True, False, False), ("report", True, True, True, False),
                    ("export", True, True, True, True)]
    assert out.export is not None and out.export.is_dir()


def test_the_quickstart_takes_fashion_mnist_where_installed_else_the_synthetic_data(tmp_path, monkeypatch):
    from nas import quickstart as qs

    missing = tmp_path / "fashion-mnist"
    fake = tmp_path / "quickstart_fashion_mnist.yaml"
    fake.write_text(qs.FASHION_MNIST_CONFIG.read_text().replace("/usr/share/datasets/fashion-mnist", str(missing)))
    monkeypatch.setattr(qs, "FASHION_MNIST_CONFIG", fake)
    path, why = qs.choose_config()
    assert path == qs.QUICKSTART_CONFIG and "not found" in why and "apt-get install dataset-fashion-mnist" in why
    missing.mkdir()
    path, why = qs.choose_config()
    assert path == fake and "zoo supernet" in why


def test_a_zoo_supernet_in_the_config_is_installed_instead_of_training(tmp_path):
    from nas import api, zoo
    from nas.config import load_config
    from nas.quickstart import FASHION_MNIST_CONFIG

    cfg = load_config(FASHION_MNIST_CONFIG, {"run_dir": str(tmp_path / "run")})
    root = Path(cfg.data.root)
    if not root.is_dir():
        pytest.skip(f"{root}: the dataset is not installed (apt-get install dataset-fashion-mnist)")
    net = api.train(cfg, progress=False)
    assert zoo.file_sha256(tmp_path / "run" / "supernet.pt") == zoo.entry(cfg.train.zoo).sha256
    assert not (tmp_path / "run" / "train_log.jsonl").exists() and not net.training  # nothing trained


def test_the_fashion_mnist_quickstart_shows_a_feasible_front_and_exports_from_it(tmp_path, capsys):
    """End to end on a tiny setting of the real-data quickstart: the zoo supernet, the reference's
    D, F, I + K network enqueued, 3 trials on 300 validation images."""
    from nas.quickstart import FASHION_MNIST_CONFIG

    root = Path(yaml.safe_load(FASHION_MNIST_CONFIG.read_text())["data"]["root"])
    if not root.is_dir():
        pytest.skip(f"{root}: the dataset is not installed (apt-get install dataset-fashion-mnist)")
    tiny = {"run_dir": str(tmp_path / "run"), "search.n_trials": 3, "search.population_size": 2,
            "search.val_samples": 300, "search.bn_recalibration_samples": 200, "search.trial_plots": False,
            "data.limit_test": 300, "cost.workers": 1}
    result = quickstart(FASHION_MNIST_CONFIG, overrides=tiny, progress=False)
    out = capsys.readouterr().out
    assert "supernet: zoo fmnist_mbv2_w025" in out and "pinned: backbone reference, bits 8" in out
    assert result["trial"] is not None and result["recorded"]["feasible"], out
    assert result["recorded"]["reduction_factor"] > 1.0 and "exported trial" in out
    # the exits' accuracy cost is shown against the exported network's own static network
    recorded = result["recorded"]
    assert result["static_accuracy"] == recorded["exit_accuracy_all_samples"][-1]
    assert f"its static network (validation): accuracy {result['static_accuracy']:.4f}" in out
