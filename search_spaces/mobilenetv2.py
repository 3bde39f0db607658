"""The reference space: CIFAR MobileNetV2 with 12 blocks, exits A-J and the final exit K.

Facts from arXiv 2512.04705 (see ``shared/notes/reference-system.md``): 32x32 input, 3x3 stem to 32
channels, 12 inverted-residual blocks, no final 1x1 conv; 195.3 M MACs at width 1.0. An exit can
be mounted after blocks 0..9 (A..J); K after block 11 is always present.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import networkx as nx

from search_spaces.base import Choose, SearchSpace
from search_spaces.genotype import FLOAT_BITS, Genotype, GenotypeError
from search_spaces.graph import LayerSpec
from search_spaces.modules.blocks import ConvBNAct, InvertedResidual
from search_spaces.modules.early_exit import ExitHead, Supernet
from search_spaces.registry import register_space

STEM_CHANNELS = 32
# (expansion, out channels, depthwise kernel, stride, residual) per block, from the reference table.
BLOCKS: tuple[tuple[int, int, int, int, bool], ...] = (
    (1, 16, 3, 1, False),
    (6, 24, 3, 1, False),
    (6, 24, 3, 1, True),
    (6, 32, 3, 1, False),
    (6, 32, 3, 1, True),
    (6, 64, 3, 2, False),
    (6, 64, 3, 1, True),
    (6, 96, 7, 1, False),
    (6, 96, 7, 1, True),
    (6, 160, 7, 2, False),
    (6, 160, 7, 1, True),
    (6, 320, 7, 1, False),
)
EXIT_POINT_LABELS = "ABCDEFGHIJ"  # exits after blocks 0..9
FINAL_LABEL = "K"
POOL_OUT = 4  # exit branches max-pool to 4x4


def scale_channels(channels: int, width_mult: float, divisor: int = 8) -> int:
    """Channels at a width multiplier, rounded to a multiple of ``divisor`` (exact at 1.0)."""
    if width_mult == 1.0:
        return channels
    value = channels * width_mult
    scaled = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return scaled + divisor if scaled < 0.9 * value else scaled


@dataclass(frozen=True)
class MobileNetV2Options:
    """Settings of the reference space.

    ``width_mult`` scales every channel count; ``bits_choices`` are the bit-widths searched
    (32 = float); with ``per_layer_bits`` False one (weight, activation) pair is chosen for the
    backbone and one for all classifiers (the reference's uniform precision).
    """

    width_mult: float = 1.0
    num_classes: int = 10
    in_channels: int = 3
    input_size: int = 32
    bits_choices: tuple[int, ...] = (4, 8)
    per_layer_bits: bool = True
    exit_points: tuple[int, ...] = tuple(range(10))
    branch_depths: tuple[int, ...] = (1, 2)
    thresholds: tuple[float, ...] = (0.7, 0.75, 0.8, 0.85, 0.9, 0.95)

    def __post_init__(self) -> None:
        if not 0.0 < self.width_mult <= 4.0:
            raise ValueError(f"width_mult: expected a number in (0, 4], got {self.width_mult}")
        if self.input_size % 8 or self.input_size < 32:
            raise ValueError(f"input_size: expected a multiple of 8 that is >= 32, got {self.input_size}")
        bad = [b for b in self.bits_choices if not (2 <= b <= 16 or b == FLOAT_BITS)]
        if not self.bits_choices or bad:
            raise ValueError(f"bits_choices: expected values in 2..16 or 32, got {list(self.bits_choices)}")
        bad = [p for p in self.exit_points if not 0 <= p < len(EXIT_POINT_LABELS)]
        if bad:
            raise ValueError(f"exit_points: expected block indices in 0..9, got {bad}")
        if not set(self.branch_depths) <= {1, 2} or not self.branch_depths:
            raise ValueError(f"branch_depths: expected a subset of [1, 2], got {list(self.branch_depths)}")
        if not self.thresholds or not all(0.0 < t <= 1.0 for t in self.thresholds):
            raise ValueError(f"thresholds: expected values in (0, 1], got {list(self.thresholds)}")


def exit_label(block: int) -> str:
    """Exit label of a mounting block: A..J for blocks 0..9, K for the last block."""
    return FINAL_LABEL if block == len(BLOCKS) - 1 else EXIT_POINT_LABELS[block]


@register_space
class MobileNetV2Space(SearchSpace):
    """Reference CIFAR MobileNetV2 early-exit space (exits, branch depths, bits, threshold)."""

    name = "mobilenetv2_cifar"
    Options = MobileNetV2Options
    options: MobileNetV2Options

    # --- geometry -------------------------------------------------------------------------------
    def _plan(self) -> list[tuple[str, int, int, int, int, int, int, bool]]:
        """Per backbone conv layer: (name, cin, cout, kernel, stride, groups, in_hw, relu)."""
        w = self.options.width_mult
        hw = self.options.input_size
        cin = scale_channels(STEM_CHANNELS, w)
        plan = [("stem", self.options.in_channels, cin, 3, 1, 1, hw, True)]
        for i, (t, c, k, s, _res) in enumerate(BLOCKS):
            cout = scale_channels(c, w)
            hidden = cin * t
            if t != 1:
                plan.append((f"b{i}.expand", cin, hidden, 1, 1, 1, hw, True))
            plan.append((f"b{i}.dw", hidden, hidden, k, s, hidden, hw, True))
            hw //= s
            plan.append((f"b{i}.project", hidden, cout, 1, 1, 1, hw, False))
            cin = cout
        return plan

    def block_outputs(self) -> list[tuple[int, int]]:
        """(channels, spatial size) at the output of every block."""
        w = self.options.width_mult
        hw = self.options.input_size
        out = []
        for _t, c, _k, s, _res in BLOCKS:
            hw //= s
            out.append((scale_channels(c, w), hw))
        return out

    def backbone_layer_names(self) -> list[str]:
        return [p[0] for p in self._plan()]

    @property
    def final_block(self) -> int:
        return len(BLOCKS) - 1

    # --- genotypes ------------------------------------------------------------------------------
    def decode(self, choose: Choose) -> Genotype:
        o = self.options
        exits = tuple(p for p in o.exit_points if choose(f"exit_{exit_label(p)}", (False, True)))
        mounts = [*o.exit_points, self.final_block]
        depth_of = {m: int(choose(f"depth_{exit_label(m)}", o.branch_depths)) for m in mounts}
        names = self.backbone_layer_names()
        if o.per_layer_bits:
            wb = tuple(int(choose(f"wbits_{n}", o.bits_choices)) for n in names)
            ab = tuple(int(choose(f"abits_{n}", o.bits_choices)) for n in names)
            ebits = {
                m: (int(choose(f"wbits_exit_{exit_label(m)}", o.bits_choices)),
                    int(choose(f"abits_exit_{exit_label(m)}", o.bits_choices)))
                for m in mounts
            }
        else:
            pb_w, pb_a = int(choose("wbits_backbone", o.bits_choices)), int(choose("abits_backbone", o.bits_choices))
            pc = (int(choose("wbits_exits", o.bits_choices)), int(choose("abits_exits", o.bits_choices)))
            wb, ab = (pb_w,) * len(names), (pb_a,) * len(names)
            ebits = {m: pc for m in mounts}
        used = [*exits, self.final_block]
        return Genotype(
            exits=exits,
            branch_depths=tuple(depth_of[m] for m in used),
            weight_bits=wb,
            act_bits=ab,
            exit_weight_bits=tuple(ebits[m][0] for m in used),
            exit_act_bits=tuple(ebits[m][1] for m in used),
            threshold=float(choose("threshold", o.thresholds)),
        )

    def uniform(self, exits: Sequence[int] = (), depth: int = 1, bits: int = 8, classifier_bits: int | None = None,
                threshold: float = 0.9) -> Genotype:
        """A genotype with uniform bits (the reference's setting): handy for baselines and tests."""
        n = len(self.backbone_layer_names())
        cb = bits if classifier_bits is None else classifier_bits
        k = len(exits) + 1
        g = Genotype(tuple(sorted(exits)), (depth,) * k, (bits,) * n, (bits,) * n, (cb,) * k, (cb,) * k, threshold)
        self.validate(g)
        return g

    def validate(self, genotype: Genotype) -> None:
        n = len(self.backbone_layer_names())
        if len(genotype.weight_bits) != n:
            raise GenotypeError(f"weight_bits: expected {n} values for {self.name}, got {len(genotype.weight_bits)}")
        bad = [e for e in genotype.exits if e not in range(len(EXIT_POINT_LABELS))]
        if bad:
            raise GenotypeError(f"exits: expected block indices in 0..9, got {bad}")
        if not set(genotype.branch_depths) <= {1, 2}:
            raise GenotypeError(f"branch_depths: expected 1 or 2, got {list(genotype.branch_depths)}")
        bits = {*genotype.weight_bits, *genotype.act_bits, *genotype.exit_weight_bits, *genotype.exit_act_bits}
        if not all(2 <= b <= 16 or b == FLOAT_BITS for b in bits):
            raise GenotypeError(f"bits: expected values in 2..16 or 32, got {sorted(bits)}")

    def static_genotype(self, genotype: Genotype) -> Genotype:
        return Genotype(
            exits=(),
            branch_depths=genotype.branch_depths[-1:],
            weight_bits=genotype.weight_bits,
            act_bits=genotype.act_bits,
            exit_weight_bits=genotype.exit_weight_bits[-1:],
            exit_act_bits=genotype.exit_act_bits[-1:],
            threshold=genotype.threshold,
        )

    def covering_genotypes(self) -> list[Genotype]:
        b = self.options.bits_choices[0]
        return [self.uniform(exits=self.options.exit_points, depth=d, bits=b) for d in self.options.branch_depths]

    def exit_labels(self, genotype: Genotype) -> list[str]:
        return [exit_label(m) for m in (*genotype.exits, self.final_block)]

    # --- modules --------------------------------------------------------------------------------
    def build_supernet(self) -> Supernet:
        o = self.options
        plan = self._plan()
        stem = ConvBNAct(o.in_channels, plan[0][2], 3)
        blocks = []
        cin = plan[0][2]
        for (t, _c, k, s, res), (cout, _hw) in zip(BLOCKS, self.block_outputs()):
            blocks.append(InvertedResidual(cin, cout, t, k, s, res))
            cin = cout
        outs = self.block_outputs()
        heads = {
            f"{m}_{d}": ExitHead(outs[m][0], outs[m][1], o.num_classes, d, POOL_OUT)
            for m in (*o.exit_points, self.final_block)
            for d in o.branch_depths
        }
        return Supernet(stem, blocks, heads)

    # --- layer graph ----------------------------------------------------------------------------
    def layer_graph(self, genotype: Genotype) -> nx.DiGraph:
        self.validate(genotype)
        o = self.options
        mounts = [*genotype.exits, self.final_block]
        stage_of_block = [next(s for s, m in enumerate(mounts) if m >= b) for b in range(len(BLOCKS))]
        labels = self.exit_labels(genotype)
        graph = nx.DiGraph(exit_labels=labels, exit_outputs=[], input_shape=(o.in_channels, o.input_size, o.input_size))
        bits = dict(zip(self.backbone_layer_names(), zip(genotype.weight_bits, genotype.act_bits)))

        plan = {p[0]: p for p in self._plan()}

        def conv(name: str, stage: int, pred: str | None) -> str:
            _n, cin, cout, k, s, g, hw, _relu = plan[name]
            wb, ab = bits[name]
            spec = LayerSpec(name, "conv", cin, cout, (hw, hw), (hw // s, hw // s), (k, k), (s, s), (k // 2, k // 2),
                             g, wb, ab, ab, stage)
            return _add_layer(graph, spec, *([pred] if pred else []))

        prev = conv("stem", 0, None)
        outs = self.block_outputs()
        for i, (t, _c, _k, _s, res) in enumerate(BLOCKS):
            st = stage_of_block[i]
            block_in = prev
            x = conv(f"b{i}.expand", st, prev) if t != 1 else prev
            x = conv(f"b{i}.dw", st, x)
            x = conv(f"b{i}.project", st, x)
            if res:
                c, hw = outs[i]
                x = _add_layer(graph, LayerSpec(f"b{i}.add", "add", c, c, (hw, hw), (hw, hw), stage=st), block_in, x)
            prev = x
            if i in mounts:
                e = mounts.index(i)
                graph.graph["exit_outputs"].append(self._exit_branch(graph, genotype, e, i, x))
        _assign_output_bits(graph)
        return graph

    def _exit_branch(self, graph: nx.DiGraph, genotype: Genotype, e: int, block: int, src: str) -> str:
        """Add exit ``e``'s branch (pool + FC layers) after ``src``; return its logits layer."""
        c, hw = self.block_outputs()[block]
        wb, ab = genotype.exit_weight_bits[e], genotype.exit_act_bits[e]
        label = exit_label(block)
        x = src
        if hw > POOL_OUT:
            k = hw // POOL_OUT
            x = _add_layer(graph, LayerSpec(f"exit_{label}.pool", "maxpool", c, c, (hw, hw), (POOL_OUT, POOL_OUT), (k, k), (k, k),
                              w_bits=ab, a_bits=ab, o_bits=ab, stage=e, branch=True), x)
        features = c * POOL_OUT * POOL_OUT
        widths = [features, self.options.num_classes] if genotype.branch_depths[e] == 1 else \
            [features, features // 2, self.options.num_classes]
        for j, (fin, fout) in enumerate(zip(widths, widths[1:]), start=1):
            x = _add_layer(graph, LayerSpec(f"exit_{label}.fc{j}", "fc", fin, fout, (1, 1), (1, 1), w_bits=wb, a_bits=ab, o_bits=ab,
                              stage=e, branch=True), x)
        return x


def _add_layer(graph: nx.DiGraph, spec: LayerSpec, *preds: str) -> str:
    """Add ``spec`` as a node fed by ``preds``; return its name."""
    graph.add_node(spec.name, spec=spec)
    for p in preds:
        graph.add_edge(p, spec.name)
    return spec.name


def _assign_output_bits(graph: nx.DiGraph) -> None:
    """Stored-output precision of each layer = the widest input precision among its consumers.

    Element-wise adds pass precision through: their input and output precision is that of their
    own consumers. Exit logits keep their branch's activation precision.
    """
    for name in reversed(list(nx.topological_sort(graph))):
        spec: LayerSpec = graph.nodes[name]["spec"]
        consumers = [graph.nodes[s]["spec"] for s in graph.successors(name)]
        if not consumers:
            continue
        o_bits = max(c.o_bits if c.op == "add" else c.a_bits for c in consumers)
        if spec.op == "add":
            spec = spec.with_bits(o_bits, o_bits, o_bits)
        else:
            spec = spec.with_bits(spec.w_bits, spec.a_bits, o_bits)
        graph.nodes[name]["spec"] = spec
