from __future__ import annotations

import json
import shutil

import pytest
import torch

from nas import api
from nas.deploy.network import load_network
from nas.study.study import pareto_trials
from nas.supernet.training import CheckpointError


@pytest.fixture(scope="module")
def exported_once(tiny_run, tmp_path_factory):
    """One export (it re-measures the network, seconds); each test edits its own copy."""
    cfg, supernet, study, data = tiny_run
    return api.export(cfg, study, pareto_trials(study, feasible_only=False)[0],
                      tmp_path_factory.mktemp("export") / "net", supernet=supernet, data=data)


@pytest.fixture()
def exported(exported_once, tmp_path):
    return shutil.copytree(exported_once, tmp_path / "net")


def test_weights_are_plain_tensors_loadable_with_weights_only(exported):
    state = torch.load(exported / "weights.pt", weights_only=True)
    assert all(isinstance(v, torch.Tensor) for v in state.values())


def test_missing_folder_and_files(exported, tmp_path):
    with pytest.raises(CheckpointError, match="expected an export folder"):
        load_network(tmp_path / "nope")
    (exported / "weights.pt").unlink()
    with pytest.raises(CheckpointError, match="weights.pt: expected the exported weights"):
        load_network(exported)


def test_corrupt_weights(exported):
    (exported / "weights.pt").write_bytes(b"not a torch file")
    with pytest.raises(CheckpointError, match="weights.pt"):
        load_network(exported)


def test_weights_of_another_architecture(exported, tmp_path):
    arch = json.loads((exported / "architecture.json").read_text())
    arch["genotype"]["branch_depths"] = [3 - d for d in arch["genotype"]["branch_depths"]]
    (exported / "architecture.json").write_text(json.dumps(arch))
    with pytest.raises(CheckpointError, match="expected weights matching"):
        load_network(exported)


@pytest.mark.parametrize("edit, fragment", [
    (lambda a: a.pop("genotype"), "genotype: expected a key"),
    (lambda a: a.update(format_version=99), "format_version: expected 1"),
    (lambda a: a["space"].update(name="nope"), "expected a buildable architecture"),
    (lambda a: a["genotype"].update(weight_bits=[8]), "expected a buildable architecture"),
])
def test_bad_architecture_file(exported, edit, fragment):
    arch = json.loads((exported / "architecture.json").read_text())
    edit(arch)
    (exported / "architecture.json").write_text(json.dumps(arch))
    with pytest.raises(CheckpointError, match=fragment):
        load_network(exported)


def test_export_is_atomic_and_replaces(tiny_run, exported):
    cfg, supernet, study, data = tiny_run
    first = (exported / "metrics.json").read_text()
    again = api.export(cfg, study, pareto_trials(study, feasible_only=False)[-1], exported, supernet=supernet,
                       data=data)
    assert again == exported and not any(p.name.startswith(".") for p in exported.parent.iterdir())
    assert (exported / "metrics.json").read_text() != first or len(pareto_trials(study, feasible_only=False)) == 1
    shutil.rmtree(exported)
