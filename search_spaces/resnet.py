"""A second space that proves the machinery generic: a CIFAR ResNet with skippable blocks.

Structure in ``specs/resnet_cifar.yaml`` (ResNet-20 shape by default): three groups of basic blocks,
an exit after each of the first two groups (A, B) and the final exit K. Searched: which exits are
mounted and their depth, which identity-shortcut blocks are skipped (``backbone`` = one skip flag
per block), per-layer weight/activation bits and the threshold.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import networkx as nx

from search_spaces.base import Choose, SearchSpace, SpaceOptions
from search_spaces.genotype import FLOAT_BITS, Genotype, GenotypeError, HeadKey
from search_spaces.graph import LayerSpec, add_exit_branch, add_layer, assign_output_bits, scale_channels
from search_spaces.registry import register_space
from search_spaces.specs import load_spec

if TYPE_CHECKING:
    from search_spaces.modules.early_exit import Supernet

SPEC = load_spec("resnet_cifar")


@dataclass(frozen=True)
class ResNetOptions(SpaceOptions):
    """Settings of the ResNet space: the shared ones (:class:`SpaceOptions`) and whether blocks may
    be skipped."""

    skippable: bool = True


@register_space
class ResNetSpace(SearchSpace):
    """CIFAR ResNet early-exit space (exits after groups, skippable blocks, bits, threshold)."""

    name = "resnet_cifar"
    Options = ResNetOptions
    options: ResNetOptions

    # --- geometry -------------------------------------------------------------------------------
    def blocks(self) -> list[tuple[int, int, int, int, str | None]]:
        """Per block: (group, in channels, out channels, stride, exit label after it or None)."""
        w = self.options.width_mult
        cin = scale_channels(SPEC.stem.channels, w)
        out = []
        for g, (group, count) in enumerate(zip(SPEC.blocks, SPEC.groups)):
            cout = scale_channels(group.channels, w)
            for b in range(count):
                out.append((g, cin, cout, group.stride if b == 0 else 1, group.exit if b == count - 1 else None))
                cin = cout
        return out

    def block_hw(self) -> list[int]:
        """Spatial size at each block's output."""
        hw, out = self.options.input_size, []
        for _g, _cin, _cout, s, _e in self.blocks():
            hw //= s
            out.append(hw)
        return out

    @property
    def final_block(self) -> int:
        return len(self.blocks()) - 1

    @property
    def exit_points(self) -> tuple[int, ...]:
        """Blocks after which an early exit can be mounted (the ends of all groups but the last)."""
        return tuple(i for i, b in enumerate(self.blocks()) if b[4] is not None and i != self.final_block)

    def skippable_block(self, i: int) -> bool:
        _g, cin, cout, s, _e = self.blocks()[i]
        return self.options.skippable and s == 1 and cin == cout

    def exit_label(self, block: int) -> str:
        label = self.blocks()[block][4]
        if label is None:
            raise ValueError(f"no exit after block {block}")
        return label

    def backbone_layer_names(self) -> list[str]:
        names = ["stem"]
        for i, (_g, cin, cout, s, _e) in enumerate(self.blocks()):
            names += [f"b{i}.conv1", f"b{i}.conv2"] + ([f"b{i}.shortcut"] if s != 1 or cin != cout else [])
        return names

    # --- genotypes ------------------------------------------------------------------------------
    def decode(self, choose: Choose) -> Genotype:
        o = self.options
        skips = tuple(int(bool(choose(f"skip_b{i}", (False, True)))) if self.skippable_block(i) else 0
                      for i in range(len(self.blocks())))
        return self._decode_exits_and_bits(choose, self.exit_points, self.final_block, self.exit_label,
                                           skips if o.skippable else ())

    def _encoding(self, genotype: Genotype) -> dict[str, Any]:
        out = self._exit_and_bits_encoding(genotype, self.exit_points, self.final_block, self.exit_label)
        out |= {f"skip_b{i}": bool(s) for i, s in enumerate(genotype.backbone)}
        return out

    def uniform(self, exits: Sequence[int] = (), depth: int = 1, bits: int = 8, threshold: float = 0.9,
                skip: bool = False) -> Genotype:
        """Uniform bits; ``skip`` skips every skippable block."""
        n, k = len(self.backbone_layer_names()), len(exits) + 1
        skips = tuple(int(skip and self.skippable_block(i)) for i in range(len(self.blocks())))
        g = Genotype(tuple(sorted(exits)), (depth,) * k, (bits,) * n, (bits,) * n, (bits,) * k, (bits,) * k,
                     threshold, skips if self.options.skippable else ())
        self.validate(g)
        return g

    def extreme(self, largest: bool) -> Genotype:
        quantised = [b for b in self.options.bits_choices if b < FLOAT_BITS] or [FLOAT_BITS]
        depth = (max if largest else min)(self.options.branch_depths)
        return self.uniform(self.exit_points, depth, max(quantised) if largest else min(quantised),
                            max(self.options.thresholds), skip=not largest)

    def validate(self, genotype: Genotype) -> None:
        n = len(self.backbone_layer_names())
        if len(genotype.weight_bits) != n:
            raise GenotypeError(f"weight_bits: expected {n} values for {self.name}, got {len(genotype.weight_bits)}")
        bad = [e for e in genotype.exits if e not in self.exit_points]
        if bad:
            raise GenotypeError(f"exits: expected blocks from {list(self.exit_points)}, got {bad}")
        if not set(genotype.branch_depths) <= {1, 2}:
            raise GenotypeError(f"branch_depths: expected 1 or 2, got {list(genotype.branch_depths)}")
        if genotype.backbone:
            if len(genotype.backbone) != len(self.blocks()):
                raise GenotypeError(f"backbone: expected one skip flag per block ({len(self.blocks())}), got "
                                    f"{len(genotype.backbone)}")
            bad = [i for i, s in enumerate(genotype.backbone) if s and not self.skippable_block(i)]
            if bad:
                raise GenotypeError(f"backbone: blocks {bad} cannot be skipped (their shortcut is not an identity)")

    def static_genotype(self, genotype: Genotype) -> Genotype:
        return Genotype((), genotype.branch_depths[-1:], genotype.weight_bits, genotype.act_bits,
                        genotype.exit_weight_bits[-1:], genotype.exit_act_bits[-1:], genotype.threshold,
                        genotype.backbone)

    def exit_labels(self, genotype: Genotype) -> list[str]:
        return [self.exit_label(m) for m in (*genotype.exits, self.final_block)]

    def head_label(self, key: str) -> str:
        return self.exit_label(HeadKey.parse(key).mount)

    def covering_genotypes(self) -> list[Genotype]:
        b = self.options.bits_choices[0]
        return [self.uniform(self.exit_points, d, b) for d in self.options.branch_depths]

    # --- modules --------------------------------------------------------------------------------
    def build_supernet(self) -> Supernet:
        from search_spaces.modules.blocks import BasicBlock, ConvBNAct
        from search_spaces.modules.early_exit import ExitHead
        from search_spaces.modules.supernets import ResNetSupernet

        o = self.options
        stem_out = scale_channels(SPEC.stem.channels, o.width_mult)
        stem = ConvBNAct(o.in_channels, stem_out, SPEC.stem.kernel, SPEC.stem.stride, bits_choices=o.bits_choices,
                         act_signed=True)
        # the input image: asymmetric levels (zero point), fitted to its range
        stem.conv.act.range_init = stem.conv.act.zero_point = True
        blocks = [BasicBlock(cin, cout, s, o.bits_choices) for _g, cin, cout, s, _e in self.blocks()]
        hw = self.block_hw()
        heads = {HeadKey(m, d).name: ExitHead(self.blocks()[m][2], hw[m], o.num_classes, d, SPEC.pool_to,
                                              o.bits_choices)
                 for m in (*self.exit_points, self.final_block) for d in o.branch_depths}
        return ResNetSupernet(stem, blocks, heads)

    # --- layer graph ----------------------------------------------------------------------------
    def layer_graph(self, genotype: Genotype) -> nx.DiGraph:
        self.validate(genotype)
        o = self.options
        mounts = [*genotype.exits, self.final_block]
        labels = self.exit_labels(genotype)
        graph = nx.DiGraph(exit_labels=labels, exit_outputs=[], input_shape=(o.in_channels, o.input_size, o.input_size))
        bits = dict(zip(self.backbone_layer_names(), zip(genotype.weight_bits, genotype.act_bits)))
        skips = genotype.backbone or (0,) * len(self.blocks())

        def conv(name: str, cin: int, cout: int, k: int, s: int, hw: int, stage: int, pred: str | None) -> str:
            wb, ab = bits[name]
            spec = LayerSpec(name, "conv", cin, cout, (hw, hw), (hw // s, hw // s), (k, k), (s, s), (k // 2, k // 2),
                             1, wb, ab, ab, stage)
            return add_layer(graph, spec, *([pred] if pred else []))

        hw = o.input_size
        prev = conv("stem", o.in_channels, self.blocks()[0][1], SPEC.stem.kernel, SPEC.stem.stride, hw, 0, None)
        for i, (_g, cin, cout, s, _e) in enumerate(self.blocks()):
            stage = next(k for k, m in enumerate(mounts) if m >= i)
            if not skips[i]:
                a = conv(f"b{i}.conv1", cin, cout, 3, s, hw, stage, prev)
                b = conv(f"b{i}.conv2", cout, cout, 3, 1, hw // s, stage, a)
                sc = conv(f"b{i}.shortcut", cin, cout, 1, s, hw, stage, prev) if s != 1 or cin != cout else prev
                out_hw = hw // s
                prev = add_layer(graph, LayerSpec(f"b{i}.add", "add", cout, cout, (out_hw, out_hw), (out_hw, out_hw),
                                                   stage=stage), b, sc)
            hw //= s
            if i in mounts:
                prev_exit = self._exit_branch(graph, genotype, mounts.index(i), i, prev, cout, hw)
                graph.graph["exit_outputs"].append(prev_exit)
        assign_output_bits(graph)
        return graph

    def _exit_branch(self, graph: nx.DiGraph, genotype: Genotype, e: int, block: int, src: str, c: int, hw: int) -> str:
        return add_exit_branch(graph, src, label=self.exit_label(block), stage=e, channels=c, hw=hw,
                               pool_to=SPEC.pool_to, depth=genotype.branch_depths[e],
                               num_classes=self.options.num_classes, w_bits=genotype.exit_weight_bits[e],
                               a_bits=genotype.exit_act_bits[e])
