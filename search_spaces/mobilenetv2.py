"""The reference space: CIFAR MobileNetV2 with 12 blocks, exits A-J and the final exit K.

Facts from arXiv 2512.04705 (see ``shared/notes/reference-system.md``); the backbone table lives in
``specs/mobilenetv2_cifar.yaml``. With the default options the backbone is the reference's, fixed.
Options extend it (Once-for-All style, weights shared): a depthwise kernel per block
(``kernel_choices``, e.g. 3/5/7, centre-cropped), an expansion ratio per block
(``expansion_choices``, e.g. 3/4/6, leading channels) and skippable residual blocks
(``skippable``, proportional layer skipping). Genotypes then carry ``backbone`` = (kernel,
expansion, skip) per block.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import networkx as nx

from search_spaces.base import Choose, SearchSpace, SpaceOptions
from search_spaces.genotype import FLOAT_BITS, Genotype, GenotypeError, HeadKey
from search_spaces.graph import LayerSpec, add_exit_branch, add_layer, assign_output_bits, scale_channels
from search_spaces.registry import register_space
from search_spaces.specs import load_spec

if TYPE_CHECKING:
    from search_spaces.modules.early_exit import Supernet

SPEC = load_spec("mobilenetv2_cifar")
STEM_CHANNELS = SPEC.stem.channels
# (expansion, out channels, depthwise kernel, stride, residual) per block, from the spec
BLOCKS: tuple[tuple[int, int, int, int, bool], ...] = tuple(
    (b.expansion, b.channels, b.kernel, b.stride, b.stride == 1 and cin == b.channels)
    for b, cin in zip(SPEC.blocks, [SPEC.stem.channels, *(x.channels for x in SPEC.blocks)])
)
EXIT_POINT_LABELS = "".join(b.exit or "" for b in SPEC.blocks[:-1])  # exits after blocks 0..9
FINAL_LABEL = SPEC.blocks[-1].exit or "K"
POOL_OUT = SPEC.pool_to
BlockChoice = tuple[int, int, bool]  # (depthwise kernel, expansion ratio, skipped)


def _nearest(value: int, choices: Sequence[int]) -> int:
    """``value`` if it is one of ``choices``, else the closest choice (the smaller on a tie)."""
    return value if value in choices else min(choices, key=lambda c: (abs(c - value), c))


@dataclass(frozen=True)
class MobileNetV2Options(SpaceOptions):
    """Settings of the reference space: the shared ones (:class:`SpaceOptions`) and which blocks may
    carry an exit (``exit_points``); ``kernel_choices``, ``expansion_choices`` and ``skippable``
    make the backbone searchable (empty / False: fixed); ``kernel_batchnorm`` gives each depthwise
    kernel size its own batch-norm after the depthwise conv (the weights are per kernel size already)."""

    exit_points: tuple[int, ...] = tuple(range(10))
    kernel_choices: tuple[int, ...] = ()
    expansion_choices: tuple[int, ...] = ()
    skippable: bool = False
    kernel_batchnorm: bool = False
    STAGE_OPTIONS: ClassVar[tuple[str, ...]] = ("kernel_batchnorm",)

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.input_size % 8 or self.input_size < 32:
            raise ValueError(f"input_size: expected a multiple of 8 that is >= 32, got {self.input_size}")
        bad = [p for p in self.exit_points if not 0 <= p < len(EXIT_POINT_LABELS)]
        if bad:
            raise ValueError(f"exit_points: expected block indices in 0..{len(EXIT_POINT_LABELS) - 1}, got {bad}")
        if any(k < 1 or k % 2 == 0 for k in self.kernel_choices):
            raise ValueError(f"kernel_choices: expected odd kernel sizes, got {list(self.kernel_choices)}")
        if any(e < 2 for e in self.expansion_choices):
            raise ValueError(f"expansion_choices: expected ratios >= 2, got {list(self.expansion_choices)}")

    @property
    def elastic(self) -> bool:
        return bool(self.kernel_choices or self.expansion_choices or self.skippable)


def exit_label(block: int) -> str:
    """Exit label of a mounting block: A..J for blocks 0..9, K for the last block."""
    return FINAL_LABEL if block == len(BLOCKS) - 1 else EXIT_POINT_LABELS[block]


@register_space
class MobileNetV2Space(SearchSpace):
    """Reference CIFAR MobileNetV2 early-exit space (exits, branch depths, bits, threshold, backbone)."""

    name = "mobilenetv2_cifar"
    Options = MobileNetV2Options
    options: MobileNetV2Options

    @property
    def exit_points(self) -> tuple[int, ...]:
        return tuple(self.options.exit_points)

    # --- per-block choices ------------------------------------------------------------------------
    def kernels(self, block: int) -> tuple[int, ...]:
        return tuple(self.options.kernel_choices) or (BLOCKS[block][2],)

    def expansions(self, block: int) -> tuple[int, ...]:
        ref = BLOCKS[block][0]
        return (1,) if ref == 1 else (tuple(self.options.expansion_choices) or (ref,))

    def skippable(self, block: int) -> bool:
        return self.options.skippable and BLOCKS[block][4]

    def reference_choices(self) -> list[BlockChoice]:
        return [(k, t, False) for t, _c, k, _s, _r in BLOCKS]

    def block_choices(self, genotype: Genotype) -> list[BlockChoice]:
        """(kernel, expansion, skipped) of every block."""
        if not genotype.backbone:
            return self.reference_choices()
        b = genotype.backbone
        return [(b[3 * i], b[3 * i + 1], bool(b[3 * i + 2])) for i in range(len(BLOCKS))]

    def _backbone(self, choices: Sequence[BlockChoice]) -> tuple[int, ...]:
        return tuple(v for k, e, s in choices for v in (k, e, int(s))) if self.options.elastic else ()

    # --- geometry -------------------------------------------------------------------------------
    def _plan(self, choices: Sequence[BlockChoice] | None = None
              ) -> list[tuple[str, int, int, int, int, int, int, bool]]:
        """Per backbone conv layer: (name, cin, cout, kernel, stride, groups, in_hw, relu); skipped
        blocks are left out. Without ``choices``: the largest layers (every potential layer)."""
        w = self.options.width_mult
        hw = self.options.input_size
        cin = scale_channels(STEM_CHANNELS, w)
        plan = [("stem", self.options.in_channels, cin, SPEC.stem.kernel, SPEC.stem.stride, 1, hw, True)]
        for i, (_t, c, _k, s, _res) in enumerate(BLOCKS):
            cout = scale_channels(c, w)
            if choices is None:
                k, t, skip = max(self.kernels(i)), max(self.expansions(i)), False
            else:
                k, t, skip = choices[i]
            if not skip:
                hidden = cin * t
                if t != 1:
                    plan.append((f"b{i}.expand", cin, hidden, 1, 1, 1, hw, True))
                plan.append((f"b{i}.dw", hidden, hidden, k, s, hidden, hw, True))
                plan.append((f"b{i}.project", hidden, cout, 1, 1, 1, hw // s, False))
            hw //= s
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
        choices: list[BlockChoice] = []
        for i in range(len(BLOCKS)):
            ks, es = self.kernels(i), self.expansions(i)
            k = int(choose(f"kernel_b{i}", ks)) if len(ks) > 1 else ks[0]
            e = int(choose(f"expand_b{i}", es)) if len(es) > 1 else es[0]
            skip = bool(choose(f"skip_b{i}", (False, True))) if self.skippable(i) else False
            choices.append((k, e, skip))
        return self._decode_exits_and_bits(choose, o.exit_points, self.final_block, exit_label,
                                           self._backbone(choices))

    def _encoding(self, genotype: Genotype) -> dict[str, Any]:
        out = self._exit_and_bits_encoding(genotype, self.options.exit_points, self.final_block, exit_label)
        for i, (k, e, skip) in enumerate(self.block_choices(genotype)):
            out |= {f"kernel_b{i}": k, f"expand_b{i}": e, f"skip_b{i}": skip}
        return out

    def uniform(self, exits: Sequence[int] = (), depth: int = 1, bits: int = 8, classifier_bits: int | None = None,
                threshold: float = 0.9, kernel: int | None = None, expansion: int | None = None,
                skip: bool = False) -> Genotype:
        """A genotype with uniform bits (the reference's setting) and, in an elastic space, the same
        kernel / expansion / skip in every block where that choice exists (default: the reference's,
        or the nearest choice the space offers)."""
        n = len(self.backbone_layer_names())
        cb = bits if classifier_bits is None else classifier_bits
        k = len(exits) + 1
        choices = []
        for i, (kk, ee, _s) in enumerate(self.reference_choices()):
            kk = kernel if kernel is not None and kernel in self.kernels(i) else _nearest(kk, self.kernels(i))
            ee = (expansion if expansion is not None and expansion in self.expansions(i)
                  else _nearest(ee, self.expansions(i)))
            choices.append((kk, ee, skip and self.skippable(i)))
        g = Genotype(tuple(sorted(exits)), (depth,) * k, (bits,) * n, (bits,) * n, (cb,) * k, (cb,) * k, threshold,
                     self._backbone(choices))
        self.validate(g)
        return g

    def extreme(self, largest: bool) -> Genotype:
        """The largest (widest kernels and expansions, nothing skipped, highest bits) or smallest
        genotype of the space (the sandwich rule's bounds); every exit mounted, deepest branches."""
        quantised = [b for b in self.options.bits_choices if b < FLOAT_BITS] or [FLOAT_BITS]
        bits = max(quantised) if largest else min(quantised)
        pick = max if largest else min
        choices = [(pick(self.kernels(i)), pick(self.expansions(i)), not largest and self.skippable(i))
                   for i in range(len(BLOCKS))]
        n = len(self.backbone_layer_names())
        k = len(self.options.exit_points) + 1
        depth = pick(self.options.branch_depths)
        return Genotype(tuple(self.options.exit_points), (depth,) * k, (bits,) * n, (bits,) * n, (bits,) * k,
                        (bits,) * k, max(self.options.thresholds), self._backbone(choices))

    def baselines(self) -> dict[str, Genotype]:
        """The static network and the reference paper's four-exit network (exits D, F, I + K), at the
        highest quantised bits, depth-1 branches, reference backbone."""
        quantised = [b for b in self.options.bits_choices if b < FLOAT_BITS] or [FLOAT_BITS]
        bits, depth = max(quantised), min(self.options.branch_depths)
        out = {"static": self.uniform(exits=(), depth=depth, bits=bits, threshold=max(self.options.thresholds))}
        dfi = tuple(p for p in (3, 5, 8) if p in self.options.exit_points)
        if len(dfi) == 3:
            out["reference_dfik"] = self.uniform(exits=dfi, depth=depth, bits=bits, threshold=self.options.thresholds[
                len(self.options.thresholds) // 2])
        return out

    def validate(self, genotype: Genotype) -> None:
        n = len(self.backbone_layer_names())
        if len(genotype.weight_bits) != n:
            raise GenotypeError(f"weight_bits: expected {n} values for {self.name}, got {len(genotype.weight_bits)}")
        bad = [e for e in genotype.exits if e not in range(len(EXIT_POINT_LABELS))]
        if bad:
            raise GenotypeError(f"exits: expected block indices in 0..{len(EXIT_POINT_LABELS) - 1}, got {bad}")
        if not set(genotype.branch_depths) <= {1, 2}:
            raise GenotypeError(f"branch_depths: expected 1 or 2, got {list(genotype.branch_depths)}")
        bits = {*genotype.weight_bits, *genotype.act_bits, *genotype.exit_weight_bits, *genotype.exit_act_bits}
        if not all(2 <= b <= 16 or b == FLOAT_BITS for b in bits):
            raise GenotypeError(f"bits: expected values in 2..16 or 32, got {sorted(bits)}")
        if genotype.backbone:
            if len(genotype.backbone) != 3 * len(BLOCKS):
                raise GenotypeError(f"backbone: expected {3 * len(BLOCKS)} values (kernel, expansion, skip per "
                                    f"block), got {len(genotype.backbone)}")
            for i, (k, e, s) in enumerate(self.block_choices(genotype)):
                if k not in self.kernels(i) or e not in self.expansions(i) or (s and not self.skippable(i)):
                    raise GenotypeError(f"backbone: block {i} choice (kernel {k}, expansion {e}, skip {s}) is not in "
                                        f"this space (kernels {self.kernels(i)}, expansions {self.expansions(i)}, "
                                        f"skippable {self.skippable(i)})")
        elif self.options.elastic:
            raise GenotypeError("backbone: expected per-block choices for this elastic space")

    def static_genotype(self, genotype: Genotype) -> Genotype:
        return Genotype(
            exits=(),
            branch_depths=genotype.branch_depths[-1:],
            weight_bits=genotype.weight_bits,
            act_bits=genotype.act_bits,
            exit_weight_bits=genotype.exit_weight_bits[-1:],
            exit_act_bits=genotype.exit_act_bits[-1:],
            threshold=genotype.threshold,
            backbone=genotype.backbone,
        )

    def exit_labels(self, genotype: Genotype) -> list[str]:
        return [exit_label(m) for m in (*genotype.exits, self.final_block)]

    def head_label(self, key: str) -> str:
        """Exit label of a supernet head key (:class:`HeadKey` name)."""
        return exit_label(HeadKey.parse(key).mount)

    def covering_genotypes(self) -> list[Genotype]:
        b = self.options.bits_choices[0]
        kernels = self.options.kernel_choices or (None,)
        expansions = self.options.expansion_choices or (None,)
        return [self.uniform(exits=self.options.exit_points, depth=d, bits=b, kernel=k, expansion=e)
                for d, k, e in itertools.product(self.options.branch_depths, kernels, expansions)]

    # --- modules --------------------------------------------------------------------------------
    def build_supernet(self) -> Supernet:
        from search_spaces.modules.blocks import ConvBNAct, InvertedResidual
        from search_spaces.modules.early_exit import ExitHead
        from search_spaces.modules.supernets import MobileNetV2Supernet

        o = self.options
        bits = o.bits_choices
        stem_out = scale_channels(STEM_CHANNELS, o.width_mult)
        stem = ConvBNAct(o.in_channels, stem_out, SPEC.stem.kernel, SPEC.stem.stride, bits_choices=bits,
                         act_signed=True)
        # the input image: asymmetric levels (zero point), fitted to its range
        stem.conv.act.range_init = stem.conv.act.zero_point = True
        blocks = []
        cin = stem_out
        for i, ((_t, _c, _k, s, res), (cout, _hw)) in enumerate(zip(BLOCKS, self.block_outputs())):
            blocks.append(InvertedResidual(cin, cout, self.expansions(i), self.kernels(i), s, res, bits,
                                           o.kernel_batchnorm))
            cin = cout
        outs = self.block_outputs()
        heads = {
            HeadKey(m, d).name: ExitHead(outs[m][0], outs[m][1], o.num_classes, d, POOL_OUT, bits)
            for m in (*o.exit_points, self.final_block)
            for d in o.branch_depths
        }
        return MobileNetV2Supernet(self.block_choices, stem, blocks, heads)

    # --- layer graph ----------------------------------------------------------------------------
    def layer_graph(self, genotype: Genotype) -> nx.DiGraph:
        self.validate(genotype)
        o = self.options
        choices = self.block_choices(genotype)
        mounts = [*genotype.exits, self.final_block]
        stage_of_block = [next(s for s, m in enumerate(mounts) if m >= b) for b in range(len(BLOCKS))]
        labels = self.exit_labels(genotype)
        graph = nx.DiGraph(exit_labels=labels, exit_outputs=[], input_shape=(o.in_channels, o.input_size, o.input_size))
        bits = dict(zip(self.backbone_layer_names(), zip(genotype.weight_bits, genotype.act_bits)))
        plan = {p[0]: p for p in self._plan(choices)}

        def conv(name: str, stage: int, pred: str | None) -> str:
            _n, cin, cout, k, s, g, hw, _relu = plan[name]
            wb, ab = bits[name]
            spec = LayerSpec(name, "conv", cin, cout, (hw, hw), (hw // s, hw // s), (k, k), (s, s), (k // 2, k // 2),
                             g, wb, ab, ab, stage)
            return add_layer(graph, spec, *([pred] if pred else []))

        prev = conv("stem", 0, None)
        outs = self.block_outputs()
        for i, (t, _c, _k, _s, res) in enumerate(BLOCKS):
            st = stage_of_block[i]
            _kk, _e, skipped = choices[i]
            if not skipped:
                block_in = prev
                x = conv(f"b{i}.expand", st, prev) if t != 1 else prev
                x = conv(f"b{i}.dw", st, x)
                x = conv(f"b{i}.project", st, x)
                if res:
                    c, hw = outs[i]
                    x = add_layer(graph, LayerSpec(f"b{i}.add", "add", c, c, (hw, hw), (hw, hw), stage=st), block_in, x)
                prev = x
            if i in mounts:
                e = mounts.index(i)
                graph.graph["exit_outputs"].append(self._exit_branch(graph, genotype, e, i, prev))
        assign_output_bits(graph)
        return graph

    def _exit_branch(self, graph: nx.DiGraph, genotype: Genotype, e: int, block: int, src: str) -> str:
        """Add exit ``e``'s branch (pool + FC layers) after ``src``; return its logits layer."""
        c, hw = self.block_outputs()[block]
        return add_exit_branch(graph, src, label=exit_label(block), stage=e, channels=c, hw=hw, pool_to=POOL_OUT,
                               depth=genotype.branch_depths[e], num_classes=self.options.num_classes,
                               w_bits=genotype.exit_weight_bits[e], a_bits=genotype.exit_act_bits[e])
