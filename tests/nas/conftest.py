"""A tiny run (small data, small supernet, few trials) shared by the nas tests."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from nas.config import RunConfig, default_config


def tiny_config(run_dir: Path, **sections: Any) -> RunConfig:
    base: dict[str, Any] = {
        "run_dir": str(run_dir),
        "data": {"name": "synthetic", "n_train": 1024, "n_val": 256, "n_test": 256},
        "space": {"name": "mobilenetv2_cifar", "options": {"width_mult": 0.25, "bits_choices": [8],
                                                          "exit_points": [1, 3, 5, 8], "thresholds": [0.2, 0.3, 0.4]}},
        "train": {"epochs": 3, "batch_size": 64, "augment": False, "sandwich": False, "random_subnets": 1},
        "search": {"n_trials": 6, "population_size": 4, "study_name": "tiny", "eval_batch_size": 256,
                   "bn_recalibration_samples": 256},
        "cost": {"accelerator": "edge_tpu_quad", "workers": 1},
    }
    for key, value in sections.items():
        base[key] = {**base.get(key, {}), **value} if isinstance(value, dict) else value
    return default_config(**base)


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory: pytest.TempPathFactory):
    """(config, supernet, study) of a tiny trained and searched run."""
    from nas import api

    # scored bit for bit as exported (the export tests compare a reload with its trial exactly); the
    # folded inference the other runs score with is compared with this path in study/test_evaluator.py
    cfg = tiny_config(tmp_path_factory.mktemp("tiny-run"), search={"folded_inference": False})
    data = api.data_and_space(cfg)
    supernet = api.train(cfg, progress=False, data=data)
    study = api.search(cfg, supernet, progress=False, data=data)
    return cfg, supernet, study, data
