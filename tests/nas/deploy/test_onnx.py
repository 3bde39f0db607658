"""The ONNX export: the network it was given is left as it was, and on the real zoo supernet every
exit agrees with PyTorch within the tolerance documented in the README (``benchmarks/onnx_fidelity.py``)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from nas import api, zoo
from nas.deploy.onnx import exit_agreement, export_onnx
from nas.study.evaluator import candidate_network
from nas.supernet.training import at_bits
from tests.nas.conftest import tiny_config

# the README's tolerance, with the margin over what benchmarks/onnx_fidelity.py measured on 1000 images
MAX_ABS_LOGIT_DIFF = 1.0
MIN_ARGMAX_AGREEMENT = 0.99


@pytest.mark.parametrize("training", [False, True])
def test_export_leaves_the_network_in_its_mode_and_unchanged(tmp_path: Path, training: bool):
    splits, space = api.data_and_space(tiny_config(tmp_path))
    genotype = space.uniform(exits=tuple(space.options.exit_points))
    net = candidate_network(space.build_supernet(), genotype, splits.train.images[:64]).train(training)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    export_onnx(net, tmp_path / "model.onnx", splits.image_shape, {}, space.exit_labels(genotype))
    assert {m.training for m in net.modules()} == {training}
    assert all(torch.equal(v, state[k]) for k, v in net.state_dict().items())


def zoo_network(bits: int):
    name = zoo.names()[0]
    cfg = zoo.config(name)
    if cfg.data.root and not Path(cfg.data.root).expanduser().exists():
        pytest.skip(f"{cfg.data.root}: the dataset is not installed (apt-get install dataset-fashion-mnist)")
    splits, space = api.data_and_space(cfg)
    genotype = at_bits(space.uniform(exits=tuple(space.options.exit_points)), bits)
    net = candidate_network(zoo.load_supernet(name, space), genotype,
                            splits.train.images[: cfg.search.bn_recalibration_samples])
    return net, splits, space.exit_labels(genotype)


def test_every_exit_of_a_zoo_network_agrees_with_pytorch(tmp_path: Path):
    """The reference backbone with every exit at W8A8 (the benchmark also covers W4A4 and mixed bits)."""
    net, splits, labels = zoo_network(8)
    path = export_onnx(net, tmp_path / "model.onnx", splits.image_shape, {}, labels)
    images = splits.test.images[:64]
    rows = exit_agreement(net, path, images, labels)
    assert [r.exit for r in rows] == labels
    # the README's share of images whose class may flip, in whole images of this sample (1 % of 64: one image)
    may_flip = math.ceil((1 - MIN_ARGMAX_AGREEMENT) * len(images))
    for r in rows:
        assert r.max_abs_diff <= MAX_ABS_LOGIT_DIFF, f"exit {r.exit}: max |logit diff| {r.max_abs_diff:.4f}"
        flipped = round((1 - r.argmax_agreement) * len(images))
        assert flipped <= may_flip, f"exit {r.exit}: argmax agreement {r.argmax_agreement:.4f}"
    assert rows[0].max_abs_diff < 1e-4  # the shallowest exit: equal to float precision
