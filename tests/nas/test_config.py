from __future__ import annotations

import pytest

from hwmodel import SchemaError
from nas.config import CONFIGS_DIR, load_config


def test_shipped_configs_load():
    cfg = load_config(CONFIGS_DIR / "quickstart.yaml")
    assert cfg.search.n_trials >= 20 and cfg.data.name == "synthetic"
    assert cfg.space_options().width_mult < 1.0


@pytest.mark.parametrize("path", sorted(CONFIGS_DIR.glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_builds_its_space_and_baselines(path):
    from hwmodel import load_system
    from search_spaces import create_space

    cfg = load_config(path)
    space = create_space(cfg.space.name, cfg.space_options())
    assert set(cfg.search.enqueue) <= set(space.baselines())
    load_system(cfg.cost.accelerator)
    g = space.sample(__import__("random").Random(0))
    space.validate(g)


def test_reference_configs_share_their_settings_across_datasets():
    fm, c10 = (load_config(CONFIGS_DIR / "reference_fashion_mnist.yaml"),
               load_config(CONFIGS_DIR / "reference_cifar10.yaml"))
    for section in ("space", "train", "search", "cost", "constraints"):
        assert getattr(fm, section) == getattr(c10, section), section
    assert (fm.data.name, c10.data.name) == ("fashion_mnist", "cifar10")
    assert fm.cost.schedule.mode == "layer_by_layer" and fm.space_options().bits_choices == (8,)


def test_unknown_key_names_file_and_key(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text("search:\n  n_trails: 5\n")
    with pytest.raises(SchemaError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "search.n_trails" in str(err.value)
    assert "n_trials" in str(err.value)  # lists what was expected


@pytest.mark.parametrize("text, key", [
    ("train:\n  epochs: three\n", "train.epochs"),
    ("space:\n  options:\n    width_mul: 0.5\n", "space.options.width_mul"),
    ("space:\n  options:\n    bits_choices: [1]\n", "space.options"),
    ("space:\n  name: resnet_nope\n", "space.name"),
    ("cost:\n  zigzag:\n    optimize: speed\n", "cost.zigzag.optimize"),
    ("cost:\n  optimize: EDP\n", "cost.optimize"),
    ("data:\n  name: imagenet\n", "data.name"),
    ("search: [1, 2]\n", "search"),
    ("search:\n  val_samples: 0\n", "search"),
])
def test_bad_values_name_the_key(tmp_path, text, key):
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    with pytest.raises(SchemaError) as err:
        load_config(path)
    assert str(path) in str(err.value) and key in str(err.value)


def test_overrides_and_save_round_trip(tmp_path):
    cfg = load_config(CONFIGS_DIR / "quickstart.yaml", {"search.n_trials": 7, "run_dir": str(tmp_path / "r")})
    assert cfg.search.n_trials == 7
    cfg.save(tmp_path / "saved.yaml")
    again = load_config(tmp_path / "saved.yaml")
    assert again.to_dict() == cfg.to_dict()


def test_dataset_mismatch_is_reported(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("space:\n  options:\n    num_classes: 7\n")
    cfg = load_config(path)
    with pytest.raises(SchemaError, match="space.options.num_classes"):
        cfg.space_options(num_classes=10)


# --- property tests: generated malformed configs give one SchemaError, quickly ----------------------

import tempfile  # noqa: E402
from pathlib import Path  # noqa: E402

import yaml  # noqa: E402
from hypothesis import HealthCheck, given, settings  # noqa: E402

from tests.fuzz import bounded, mutations, yaml_texts  # noqa: E402

SHIPPED = yaml.safe_load((CONFIGS_DIR / "fashion_mnist_supernet.yaml").read_text())
FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _load_or_schema_error(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "config.yaml"
        path.write_text(text, encoding="utf-8", errors="surrogateescape")
        with bounded():
            try:
                load_config(path)
            except SchemaError as exc:
                assert str(exc).startswith(f"{path}: ")


@FUZZ
@given(mutations(SHIPPED))
def test_fuzzed_config_loads_or_gives_one_schema_error(data):
    _load_or_schema_error(yaml.safe_dump(data, allow_unicode=True))


@FUZZ
@given(yaml_texts)
def test_fuzzed_config_text_loads_or_gives_one_schema_error(text):
    _load_or_schema_error(text)


def test_loading_a_config_loads_neither_torch_nor_optuna():
    """``nas`` resolves its names on first use, the search spaces load their torch modules only to build
    a supernet, and the objectives a config may name are plain data: reading and checking a config
    (space options, fixed parameters, baselines) needs none of the heavy machinery."""
    import subprocess
    import sys

    code = ("import sys, nas, nas.config; "
            "nas.config.load_config(nas.config.CONFIGS_DIR / 'fashion_mnist_supernet.yaml'); "
            "print(sorted(m for m in ('optuna', 'zigzag', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_package_names_resolve_lazily():
    import nas
    from nas import api, config

    assert nas.search is api.search and nas.load_config is config.load_config
    assert nas.train is api.train and nas.export is api.export  # not shadowed by a subpackage
    assert nas.__all__ == sorted(nas._HOME)
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        nas.nope  # noqa: B018
