from __future__ import annotations

import random

import pytest
import torch

import search_spaces as ss
from search_spaces.modules.early_exit import exit_taken


@pytest.fixture(scope="module")
def space():
    return ss.create_space("mobilenetv2_cifar", width_mult=0.25)


def test_supernet_runs_every_genotype_with_shared_weights(space):
    net = space.build_supernet().eval()
    x = torch.randn(4, 3, 32, 32)
    rng = random.Random(0)
    for _ in range(3):
        g = space.sample(rng)
        sub = net.subnet(g)
        outs = sub(x)
        assert len(outs) == g.num_exits and all(o.shape == (4, 10) for o in outs)
        # shared modules: the subnet's stem weight is the supernet's tensor
        assert sub.stem[0].weight is net.stem[0].weight
    all_heads = net(x)
    assert len(all_heads) == (10 + 1) * 2


def test_bits_change_the_output(space):
    net = space.build_supernet().eval()
    x = torch.randn(2, 3, 32, 32)
    net.train()
    net.subnet(space.uniform(bits=8))(x)  # initialise activation ranges
    net.eval()
    out8 = net.subnet(space.uniform(bits=8))(x)[-1]
    out2 = net.subnet(space.uniform(bits=2))(x)[-1]
    out32 = net.subnet(space.uniform(bits=32))(x)[-1]
    assert (out8 - out32).abs().max() < (out2 - out32).abs().max()


def test_early_exit_inference_matches_the_exit_rule(space):
    torch.manual_seed(0)
    net = space.build_supernet()
    g = space.uniform(exits=(1, 4, 7), bits=8, threshold=0.11)
    sub = net.subnet(g)
    x = torch.randn(64, 3, 32, 32)
    sub.train()
    sub(x)
    sub.eval()
    with torch.no_grad():
        outs = sub(x)
        logits, idx = sub.early_exit(x)
    taken = torch.stack([exit_taken(o, g.threshold) for o in outs[:-1]] + [torch.ones(64, dtype=torch.bool)])
    first = taken.int().argmax(0)
    assert torch.equal(idx, first)
    for i in range(len(outs)):
        sel = idx == i
        if sel.any():
            assert torch.allclose(logits[sel], outs[i][sel], atol=1e-5)
    _, idx_all_final = sub.early_exit(x, threshold=1.01)
    assert (idx_all_final == 3).all()
    _, idx_first = sub.early_exit(x, threshold=0.0)
    assert (idx_first == 0).all()
