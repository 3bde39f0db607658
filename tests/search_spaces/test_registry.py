"""Every registered space, with its searchable options on, passes the same checks (timm style)."""

from __future__ import annotations

import json
import random

import pytest
import torch

import search_spaces as ss
from search_spaces.modules.quant import QConv2d, QLinear
from tests.search_spaces.test_mobilenetv2 import count_macs

SEARCHABLE = {
    "mobilenetv2_cifar": dict(width_mult=0.25, kernel_choices=(3, 5, 7), expansion_choices=(3, 4, 6),
                              skippable=True, bits_choices=(2, 4, 8, 32)),
    "resnet_cifar": dict(width_mult=0.5, bits_choices=(2, 4, 8, 32)),
}


def test_every_registered_space_is_covered():
    assert set(ss.list_spaces()) == set(SEARCHABLE)


@pytest.fixture(scope="module", params=sorted(SEARCHABLE))
def space(request):
    return ss.create_space(request.param, **SEARCHABLE[request.param])


def test_genotypes_round_trip_and_validate(space):
    rng = random.Random(0)
    for _ in range(20):
        g = space.sample(rng)
        space.validate(g)
        assert ss.Genotype.from_json(json.dumps(json.loads(g.to_json()))) == g
        static = space.static_genotype(g)
        assert static.exits == () and space.exit_labels(static)[-1] == space.exit_labels(g)[-1]
    again = ss.space_from_config(space.config)
    assert again.options == space.options


def test_subnet_macs_params_and_outputs(space):
    torch.manual_seed(0)
    net = space.build_supernet()
    rng = random.Random(1)
    genotypes = [space.sample(rng) for _ in range(10)] + [space.extreme(True), space.extreme(False)]
    net.train()
    for g in genotypes:
        net.configure(g)
        net(torch.randn(4, 3, 32, 32))
    net.eval()
    x = torch.randn(3, 3, 32, 32)
    for g in genotypes:
        sub = net.extract(g).eval()
        graph = space.layer_graph(g)
        assert count_macs(sub, torch.randn(1, 3, 32, 32)) == ss.total_macs(graph)
        assert sum(m.weight.numel() for m in sub.modules() if isinstance(m, (QConv2d, QLinear))) == \
            sum(s.params for s in ss.specs(graph))
        with torch.no_grad():
            assert all(torch.equal(a, b) for a, b in zip(net.subnet(g)(x), sub(x)))
    sizes = [ss.total_macs(space.layer_graph(g)) for g in (space.extreme(True), space.extreme(False))]
    assert sizes[0] > sizes[1]


def test_layer_specs_cover_every_sampled_layer(space):
    every = {(s.op, s.in_channels, s.out_channels, s.in_hw, s.kernel, s.stride, s.groups, s.w_bits, s.a_bits)
             for s in space.all_layer_specs()}
    rng = random.Random(2)
    for _ in range(10):
        for s in ss.specs(space.layer_graph(space.sample(rng))):  # pooling and adds included
            assert (s.op, s.in_channels, s.out_channels, s.in_hw, s.kernel, s.stride, s.groups, s.w_bits,
                    s.a_bits) in every


def test_encode_is_the_inverse_of_decode(space):
    rng = random.Random(3)
    for g in [space.sample(rng) for _ in range(10)] + [space.extreme(True), space.extreme(False)]:
        params = space.encode(g)
        assert space.decode(lambda name, options, p=params: p[name]) == g


def test_same_space_fills_options_left_out_with_their_defaults():
    """A checkpoint written before an option existed matches the space at that option's default."""
    space = ss.create_space("mobilenetv2_cifar", **SEARCHABLE["mobilenetv2_cifar"])
    older = {"name": space.name, "options": dict(space.config["options"])}
    del older["options"]["kernel_batchnorm"]
    assert ss.same_space(older, space.config)
    switched = ss.create_space("mobilenetv2_cifar", **SEARCHABLE["mobilenetv2_cifar"], kernel_batchnorm=True)
    assert not ss.same_space(older, switched.config)
    assert ss.same_space(older, switched.config, ignore=("kernel_batchnorm",))
    assert not ss.same_space(older, ss.create_space("mobilenetv2_cifar", width_mult=0.5).config)
    assert not ss.same_space(older, {"name": "no_such_space"})
