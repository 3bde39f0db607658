"""Layer graphs: the hardware-facing description of a candidate network.

A layer graph is a ``networkx.DiGraph`` whose nodes are layer names with one attribute, ``spec``
(a :class:`LayerSpec`), and whose edges are data dependencies. Graph-level attributes:

- ``exit_labels``: label of each exit in order (early exits, then the final one);
- ``exit_outputs``: name of the last layer of each exit branch (its logits);
- ``input_shape``: (channels, height, width) of the network input.

``hwmodel`` reads only these attributes (duck-typed), so it does not import this package.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Literal

import networkx as nx

OpType = Literal["conv", "fc", "maxpool", "add"]


@dataclass(frozen=True)
class LayerSpec:
    """One layer as a cost model sees it.

    Shapes are per sample (batch 1). ``kernel``, ``stride`` and ``padding`` are (y, x) pairs;
    padding is symmetric. Bit-widths: ``w_bits`` weights, ``a_bits`` input activations,
    ``o_bits`` the stored output (32 = float).
    ``stage`` is the index of the exit stage the layer belongs to (0 = up to the first exit);
    ``branch`` is True for exit-classifier layers.
    """

    name: str
    op: OpType
    in_channels: int
    out_channels: int
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    kernel: tuple[int, int] = (1, 1)
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    groups: int = 1
    w_bits: int = 8
    a_bits: int = 8
    o_bits: int = 8
    stage: int = 0
    branch: bool = False

    @property
    def macs(self) -> int:
        """Multiply-accumulates per sample (0 for pooling and element-wise add)."""
        oh, ow = self.out_hw
        if self.op == "conv":
            kh, kw = self.kernel
            return oh * ow * self.out_channels * (self.in_channels // self.groups) * kh * kw
        if self.op == "fc":
            return self.in_channels * self.out_channels
        return 0

    @property
    def ops(self) -> int:
        """Elementary operations per sample: MACs, comparisons (max-pool) or additions (add)."""
        oh, ow = self.out_hw
        if self.op == "maxpool":
            kh, kw = self.kernel
            return oh * ow * self.out_channels * kh * kw
        if self.op == "add":
            return oh * ow * self.out_channels
        return self.macs

    @property
    def params(self) -> int:
        """Weights (no biases, no batch-norm) of the layer."""
        if self.op == "conv":
            kh, kw = self.kernel
            return self.out_channels * (self.in_channels // self.groups) * kh * kw
        if self.op == "fc":
            return self.in_channels * self.out_channels
        return 0

    @property
    def depthwise(self) -> bool:
        """True for a depthwise convolution (one input channel per group)."""
        return self.op == "conv" and self.groups > 1 and self.groups == self.in_channels

    def with_bits(self, w_bits: int, a_bits: int, o_bits: int) -> LayerSpec:
        """Copy with other bit-widths."""
        return replace(self, w_bits=w_bits, a_bits=a_bits, o_bits=o_bits)


def specs(graph: nx.DiGraph) -> list[LayerSpec]:
    """Layer specs of a graph in topological order (stable for equal graphs)."""
    return [graph.nodes[n]["spec"] for n in nx.lexicographical_topological_sort(graph)]


def total_macs(graph: nx.DiGraph, *, branch: bool | None = None) -> int:
    """MACs per sample over the graph; ``branch`` filters exit-branch (True) or backbone (False)."""
    return sum(s.macs for s in specs(graph) if branch is None or s.branch == branch)


def stage_macs(graph: nx.DiGraph) -> list[int]:
    """MACs per exit stage (backbone segment plus its classifier), in exit order."""
    out = [0] * len(graph.graph["exit_labels"])
    for s in specs(graph):
        out[s.stage] += s.macs
    return out


# --- builders shared by every space's layer_graph ------------------------------------------------
def scale_channels(channels: int, width_mult: float, divisor: int = 8) -> int:
    """Channels at a width multiplier, rounded to a multiple of ``divisor`` (exact at 1.0)."""
    if width_mult == 1.0:
        return channels
    value = channels * width_mult
    scaled = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return scaled + divisor if scaled < 0.9 * value else scaled


def add_layer(graph: nx.DiGraph, spec: LayerSpec, *preds: str) -> str:
    """Add ``spec`` as a node fed by ``preds``; return its name."""
    graph.add_node(spec.name, spec=spec)
    for p in preds:
        graph.add_edge(p, spec.name)
    return spec.name


def add_exit_branch(graph: nx.DiGraph, src: str, *, label: str, stage: int, channels: int, hw: int, pool_to: int,
                    depth: int, num_classes: int, w_bits: int, a_bits: int) -> str:
    """Add an exit branch after ``src`` (a ``channels`` x ``hw`` x ``hw`` feature map): max-pooling to
    ``pool_to`` x ``pool_to`` (where larger), then ``depth`` FC layers (2: through half the features);
    return its logits layer. Layers are named ``exit_<label>.pool`` and ``exit_<label>.fc<j>``."""
    x = src
    if hw > pool_to:
        k = hw // pool_to
        x = add_layer(graph, LayerSpec(f"exit_{label}.pool", "maxpool", channels, channels, (hw, hw),
                                       (pool_to, pool_to), (k, k), (k, k), w_bits=a_bits, a_bits=a_bits,
                                       o_bits=a_bits, stage=stage, branch=True), x)
    features = channels * pool_to * pool_to
    widths = [features, num_classes] if depth == 1 else [features, features // 2, num_classes]
    for j, (fin, fout) in enumerate(zip(widths, widths[1:]), start=1):
        x = add_layer(graph, LayerSpec(f"exit_{label}.fc{j}", "fc", fin, fout, (1, 1), (1, 1), w_bits=w_bits,
                                       a_bits=a_bits, o_bits=a_bits, stage=stage, branch=True), x)
    return x


def assign_output_bits(graph: nx.DiGraph) -> None:
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
