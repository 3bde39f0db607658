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
