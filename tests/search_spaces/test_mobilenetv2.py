from __future__ import annotations

import random
import re

import pytest
import torch
from torch import nn

import search_spaces as ss
from search_spaces.graph import scale_channels
from search_spaces.mobilenetv2 import BLOCKS
from search_spaces.modules.quant import QConv2d, QLinear

# Cumulative backbone MACs after the stem and each block, from the reference notes (millions).
REFERENCE_CUMULATIVE_MMACS = [0.885, 1.70, 6.52, 14.93, 24.51, 38.86, 48.74, 62.21, 82.76, 118.29, 140.15, 162.82,
                              195.33]


@pytest.fixture(scope="module")
def space():
    return ss.create_space("mobilenetv2_cifar")


def cumulative_backbone_macs(graph):
    per_block: dict[int, int] = {}
    for spec in ss.specs(graph):
        if spec.branch:
            continue
        m = re.match(r"b(\d+)\.", spec.name)
        block = int(m.group(1)) if m else -1
        per_block[block] = per_block.get(block, 0) + spec.macs
    out, total = [], 0
    for block in sorted(per_block):
        total += per_block[block]
        out.append(total)
    return out


def test_full_width_backbone_macs_match_reference_table(space):
    graph = space.layer_graph(space.uniform(exits=(), bits=8))
    cumulative = cumulative_backbone_macs(graph)
    assert len(cumulative) == 13
    for got, want in zip(cumulative, REFERENCE_CUMULATIVE_MMACS):
        assert got / 1e6 == pytest.approx(want, abs=0.006)
    assert cumulative[-1] == 195_325_952  # 195.3 M MACs


def test_exit_branch_macs(space):
    g = space.uniform(exits=(3,), depth=2, bits=8)
    graph = space.layer_graph(g)
    # block 3: 32 channels at 32x32 -> maxpool 8x8 -> 512 features -> FC 512->256 -> FC 256->10
    assert graph.nodes["exit_D.pool"]["spec"].kernel == (8, 8)
    assert graph.nodes["exit_D.fc1"]["spec"].macs == 512 * 256
    assert graph.nodes["exit_D.fc2"]["spec"].macs == 256 * 10
    assert graph.graph["exit_labels"] == ["D", "K"]
    assert graph.graph["exit_outputs"] == ["exit_D.fc2", "exit_K.fc2"]
    # the final exit K after block 11: 320 channels at 8x8 -> pool 2x2 -> 5120 features
    assert graph.nodes["exit_K.fc1"]["spec"].in_channels == 5120


def test_stages_partition_the_network(space):
    g = space.uniform(exits=(1, 5, 8), bits=8)
    graph = space.layer_graph(g)
    stage_of = {s.name: s.stage for s in ss.specs(graph)}
    assert stage_of["stem"] == 0 and stage_of["b1.project"] == 0 and stage_of["exit_B.fc1"] == 0
    assert stage_of["b2.expand"] == 1 and stage_of["b5.project"] == 1 and stage_of["exit_F.fc1"] == 1
    assert stage_of["b9.dw"] == 3 and stage_of["exit_K.fc1"] == 3
    assert sum(ss.stage_macs(graph)) == ss.total_macs(graph)


def test_output_bits_follow_the_consumers(space):
    n = len(space.backbone_layer_names())
    wb = tuple([8] * n)
    ab = tuple(4 if i % 2 else 8 for i in range(n))
    g = ss.Genotype((0,), (1, 1), wb, ab, (8, 8), (2, 8), 0.8)
    graph = space.layer_graph(g)
    names = space.backbone_layer_names()
    a_of = dict(zip(names, ab))
    for name in names[:-1]:
        spec = graph.nodes[name]["spec"]
        consumers = [graph.nodes[s]["spec"] for s in graph.successors(name)]
        want = max(c.o_bits if c.op == "add" else c.a_bits for c in consumers)
        assert spec.o_bits == want
        assert spec.a_bits == a_of[name]
    # block 0 output feeds block 1 (a=8 for b1.expand) and exit A's pool at 2 bits
    assert graph.nodes["exit_A.pool"]["spec"].a_bits == 2
    assert graph.nodes["b0.project"]["spec"].o_bits == max(2, a_of["b1.expand"])


def test_width_multiplier_scales_channels():
    assert scale_channels(320, 1.0) == 320
    assert scale_channels(32, 0.25) == 8 and scale_channels(320, 0.25) == 80
    small = ss.create_space("mobilenetv2_cifar", width_mult=0.25)
    graph = small.layer_graph(small.uniform(bits=8))
    assert ss.total_macs(graph, branch=False) < 195_325_952 / 10


def test_sample_and_decode_are_consistent():
    space = ss.create_space("mobilenetv2_cifar", width_mult=0.25, bits_choices=(2, 4, 8))
    rng = random.Random(0)
    genotypes = [space.sample(rng) for _ in range(30)]
    for g in genotypes:
        space.validate(g)
        assert set(g.weight_bits) <= {2, 4, 8}
        assert g.threshold in space.options.thresholds
    assert len(set(genotypes)) == 30
    asked = []

    def choose(name, options):
        asked.append(name)
        return list(options)[-1]

    g = space.decode(choose)
    assert g.exits == tuple(range(10)) and len(asked) == len(set(asked))
    assert "threshold" in asked and "wbits_b11.project" in asked


def test_uniform_bits_mode_uses_one_pair_for_backbone_and_one_for_classifiers():
    space = ss.create_space("mobilenetv2_cifar", per_layer_bits=False, bits_choices=(4, 8))
    g = space.sample(random.Random(3))
    assert len(set(g.weight_bits)) == 1 and len(set(g.act_bits)) == 1
    assert len(set(zip(g.exit_weight_bits, g.exit_act_bits))) == 1


def test_invalid_options_are_rejected():
    with pytest.raises(ValueError, match="bits_choices"):
        ss.create_space("mobilenetv2_cifar", bits_choices=(1,))
    with pytest.raises(ValueError, match="exit_points"):
        ss.create_space("mobilenetv2_cifar", exit_points=(10,))
    with pytest.raises(KeyError, match="registered"):
        ss.create_space("no_such_space")


def count_macs(net: nn.Module, x: torch.Tensor) -> int:
    """MACs of every quantised conv / linear layer, counted with forward hooks during a real forward pass."""
    total = 0

    def hook(module, _inputs, output):
        nonlocal total
        if isinstance(module, QConv2d):
            per_output = (1 if module.depthwise else module.in_channels) * module.active_kernel ** 2
            total += output[0].numel() * per_output
        else:
            total += output[0].numel() * module.in_features

    handles = [m.register_forward_hook(hook) for m in net.modules() if isinstance(m, (QConv2d, QLinear))]
    with torch.no_grad():
        net(x)
    for h in handles:
        h.remove()
    return total


SPACES = {
    "reference": dict(width_mult=0.25),
    "reference full width": dict(width_mult=1.0),
    "elastic": dict(width_mult=0.25, kernel_choices=(3, 5, 7), expansion_choices=(3, 4, 6), skippable=True,
                    bits_choices=(2, 4, 8)),
}


@pytest.mark.parametrize("label", list(SPACES))
def test_module_macs_and_params_equal_the_layer_graph(label):
    space = ss.create_space("mobilenetv2_cifar", **SPACES[label])
    rng = random.Random(7)
    for _ in range(3 if label == "reference full width" else 12):
        g = space.sample(rng)
        net = space.build_network(g).eval()
        graph = space.layer_graph(g)
        assert count_macs(net, torch.randn(1, 3, 32, 32)) == ss.total_macs(graph)
        weights = sum(m.weight.numel() for m in net.modules() if isinstance(m, (QConv2d, QLinear)))
        assert weights == sum(s.params for s in ss.specs(graph))


def test_elastic_choices_and_reference_defaults():
    elastic = ss.create_space("mobilenetv2_cifar", kernel_choices=(3, 5, 7), expansion_choices=(3, 4, 6),
                              skippable=True)
    asked = []
    g = elastic.decode(lambda name, options: (asked.append(name), list(options)[0])[1])
    assert "kernel_b0" in asked and "expand_b0" not in asked and "expand_b1" in asked
    assert "skip_b2" in asked and "skip_b1" not in asked  # block 1 changes channels: not skippable
    assert len(g.backbone) == 36
    largest, smallest = elastic.extreme(True), elastic.extreme(False)
    assert ss.total_macs(elastic.layer_graph(largest)) > ss.total_macs(elastic.layer_graph(smallest))
    assert elastic.block_choices(smallest)[2] == (3, 3, True)
    ref = ss.create_space("mobilenetv2_cifar")
    assert ref.sample(random.Random(0)).backbone == ()
    with pytest.raises(ss.GenotypeError, match="backbone"):
        elastic.validate(ref.uniform())


def test_space_config_round_trip():
    space = ss.create_space("mobilenetv2_cifar", width_mult=0.5, bits_choices=(2, 8))
    again = ss.space_from_config(space.config)
    assert again.options == space.options
    assert len(BLOCKS) == 12


def test_fixed_params_pin_the_reference_backbone_and_uniform_bits():
    space = ss.create_space("mobilenetv2_cifar", width_mult=0.25, kernel_choices=(3, 5, 7), expansion_choices=(3, 4, 6),
                            skippable=True, bits_choices=(4, 8))
    params = space.parameters()
    fixed = space.fixed_params({"backbone": "reference", "bits": 8, "exit_D": True})
    pinned = {n for n in params if n.startswith(("kernel_", "expand_", "skip_", "wbits_", "abits_"))}
    assert set(fixed) == pinned | {"exit_D"}
    assert {v for n, v in fixed.items() if n.startswith(("wbits_", "abits_"))} == {8}

    def choose(name, options):
        return fixed.get(name, list(options)[-1])

    g = space.decode(choose)
    assert space.block_choices(g) == space.reference_choices()
    assert set(g.weight_bits) | set(g.act_bits) | set(g.exit_weight_bits) | set(g.exit_act_bits) == {8}
    assert 3 in g.exits  # exit D (block 3) pinned on


@pytest.mark.parametrize(("fixed", "message"), [
    ({"backbone": "largest"}, "backbone: expected 'reference'"),
    ({"bits": 2}, r"bits: expected one of \[4, 8\]"),
    ({"kernel_b99": 3}, "kernel_b99: not a parameter"),
    ({"kernel_b1": 4}, r"kernel_b1: expected one of \[3, 5, 7\]"),
])
def test_fixed_params_reject_what_the_space_cannot_pin(fixed, message):
    space = ss.create_space("mobilenetv2_cifar", width_mult=0.25, kernel_choices=(3, 5, 7), bits_choices=(4, 8))
    with pytest.raises(ValueError, match=message):
        space.fixed_params(fixed)


def test_a_space_without_the_reference_kernels_uses_the_nearest_ones_for_its_baselines():
    sp = ss.create_space("mobilenetv2_cifar", width_mult=0.25, kernel_choices=(3, 5), expansion_choices=(4,))
    choices = sp.block_choices(sp.uniform())
    assert {k for k, _e, _s in choices} <= {3, 5} and {e for _k, e, _s in choices[1:]} == {4}
    assert [k for k, _e, _s in choices] == [k if k < 7 else 5 for k, _e, _s in sp.reference_choices()]
    assert set(sp.named_baselines(["static", "reference_dfik"])) == {"static", "reference_dfik"}


def test_per_kernel_batchnorm_extracts_exactly_and_loads_a_shared_batchnorm_checkpoint():
    """kernel_batchnorm: each smaller depthwise kernel size has its own batch-norm; a state dict with one
    shared batch-norm loads into it as the same network, and extraction equals the supernet."""
    opts = dict(width_mult=0.25, kernel_choices=(3, 5, 7), expansion_choices=(3, 6), skippable=True,
                bits_choices=(4, 8), exit_points=(2, 5))
    shared = ss.create_space("mobilenetv2_cifar", **opts).build_supernet().eval()
    kbn_space = ss.create_space("mobilenetv2_cifar", **opts, kernel_batchnorm=True)
    kbn = kbn_space.build_supernet()
    kbn.load_state_dict(shared.state_dict())
    kbn.eval()
    torch.manual_seed(0)
    x = torch.randn(4, 3, 32, 32)
    rng = random.Random(0)
    genotypes = [kbn_space.sample(rng) for _ in range(4)]
    with torch.no_grad():
        for g in genotypes:
            assert all(torch.equal(a, b) for a, b in zip(shared.subnet(g)(x), kbn.subnet(g)(x)))
        for name, p in kbn.named_parameters():  # the kernel-3 batch-norms now differ from the shared one
            if ".bn_small.3." in name:
                p.add_(0.5)
        ref3 = kbn_space.uniform(exits=(2, 5), kernel=3)
        assert not torch.equal(shared.subnet(ref3)(x)[-1], kbn.subnet(ref3)(x)[-1])
        for g in [ref3, *genotypes]:
            assert all(torch.equal(a, b) for a, b in zip(kbn.subnet(g)(x), kbn.extract(g).eval()(x)))
