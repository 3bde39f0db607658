from __future__ import annotations

import random

import pytest
import torch

import search_spaces as ss
from search_spaces.modules.early_exit import exit_taken


@pytest.fixture(scope="module")
def space():
    return ss.create_space("mobilenetv2_cifar", width_mult=0.25, bits_choices=(2, 4, 8),
                           kernel_choices=(3, 5, 7), expansion_choices=(3, 4, 6), skippable=True)


def warmed(space, net, genotypes):
    """Initialise steps and statistics for every bit-width the genotypes use."""
    net.train()
    for g in genotypes:
        net.configure(g)
        net(torch.randn(8, 3, 32, 32))
    return net.eval()


def test_extracted_network_equals_the_supernet_bit_for_bit(space):
    torch.manual_seed(0)
    net = space.build_supernet()
    rng = random.Random(0)
    genotypes = [space.sample(rng) for _ in range(4)]
    warmed(space, net, genotypes)
    x = torch.randn(6, 3, 32, 32)
    for g in genotypes:
        with torch.no_grad():
            shared = net.subnet(g)(x)
            extracted = net.extract(g).eval()
            static = extracted(x)
        assert all(torch.equal(a, b) for a, b in zip(shared, static))
        skipped = sum(isinstance(b, torch.nn.Identity) for b in extracted.blocks)
        assert skipped == sum(c[2] for c in space.block_choices(g))


def test_supernet_computes_every_head(space):
    net = space.build_supernet()
    out = net(torch.randn(2, 3, 32, 32))
    assert len(out) == (10 + 1) * 2 and all(o.shape == (2, 10) for o in out.values())


def test_bits_change_the_output():
    space = ss.create_space("mobilenetv2_cifar", width_mult=0.25, bits_choices=(2, 8, 32))
    net = warmed(space, space.build_supernet(), [space.uniform(bits=b) for b in (2, 8)])
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        out = {b: net.subnet(space.uniform(bits=b))(x)[-1] for b in (2, 8, 32)}
    assert (out[8] - out[32]).abs().max() < (out[2] - out[32]).abs().max()


def test_early_exit_inference_matches_the_exit_rule(space):
    torch.manual_seed(0)
    net = space.build_supernet()
    g = space.uniform(exits=(1, 4, 7), bits=8, threshold=0.11)
    warmed(space, net, [g])
    sub = net.extract(g).eval()
    x = torch.randn(64, 3, 32, 32)
    with torch.no_grad():
        outs = sub(x)
        logits, idx = sub.early_exit(x)
    taken = torch.stack([exit_taken(o, g.threshold) for o in outs[:-1]] + [torch.ones(64, dtype=torch.bool)])
    assert torch.equal(idx, taken.int().argmax(0))
    for i in range(len(outs)):
        sel = idx == i
        if sel.any():
            assert torch.allclose(logits[sel], outs[i][sel], atol=1e-5)
    assert (sub.early_exit(x, threshold=1.01)[1] == 3).all()
    assert (sub.early_exit(x, threshold=0.0)[1] == 0).all()
    sub.thresholds = [1.01, 0.0, 1.01]  # per-exit thresholds: everyone leaves at the second exit
    assert (sub.early_exit(x)[1] == 1).all()
