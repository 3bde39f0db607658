"""Computation nodes: layers split into tiles of output rows, and the dependencies between tiles.

A tile computes output rows [row0, row0 + rows) of one layer. Convolutions read the input rows
their receptive field covers (kernel, stride, padding; edge tiles keep their share of the padding),
max-pooling reads ``kernel`` rows per output row, element-wise adds read the same rows of both
inputs, and FC layers (exit classifiers) are one tile that reads every row of their input. A tile
depends on the producer tiles whose output rows overlap the rows it reads; the amount of data on
each dependency is those rows' bits. ``tile_rows=None`` makes one tile per layer.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from hwmodel.workload import LayerLike, zigzag_layer


@dataclass(frozen=True)
class Dependency:
    """Tile ``src`` feeds tile ``dst`` with ``bits`` of its output."""

    src: int
    dst: int
    bits: int


@dataclass
class Tile:
    """Output rows [row0, row0 + rows) of a layer; ``in_row0``/``in_rows`` are the input rows read."""

    index: int
    layer: str
    spec: LayerLike
    row0: int
    rows: int
    in_row0: int
    in_rows: int
    pad_top: int
    pad_bottom: int
    order: int  # topological index of the layer
    preds: list[Dependency] = field(default_factory=list)
    succs: list[Dependency] = field(default_factory=list)

    @property
    def name(self) -> str:
        return f"{self.layer}[{self.row0}:{self.row0 + self.rows}]"

    @property
    def fraction(self) -> float:
        """Share of the layer's work in this tile."""
        return self.rows / max(1, self.spec.out_hw[0])

    @property
    def out_bits(self) -> int:
        """Bits of the tile's output (stored at the layer's output precision)."""
        return self.rows * self.spec.out_hw[1] * self.spec.out_channels * self.spec.o_bits

    @property
    def in_bits(self) -> int:
        """Bits of the input rows the tile reads (both inputs of an add)."""
        inputs = 2 if self.spec.op == "add" else 1
        if self.spec.op == "fc":
            return self.spec.in_channels * self.spec.a_bits
        return inputs * self.in_rows * self.spec.in_hw[1] * self.spec.in_channels * self.spec.a_bits

    @property
    def weight_bits(self) -> int:
        return getattr(self.spec, "params", 0) * self.spec.w_bits

    @property
    def macs(self) -> float:
        return self.spec.macs * self.fraction

    @property
    def ops(self) -> float:
        return self.spec.ops * self.fraction

    @property
    def edge_padding(self) -> tuple[int, int]:
        """The tile's padding rows (fewer first): a tile and its mirror image (the same rows read
        bottom-up, padding above and below swapped) are the same workload, so the first and the
        last tile of a layer share one ZigZag job."""
        return (min(self.pad_top, self.pad_bottom), max(self.pad_top, self.pad_bottom))

    def shape_key(self) -> tuple[Any, ...]:
        """Equal keys = equal ZigZag workloads (interior tiles share one cost, mirror-image edge tiles
        another)."""
        s = self.spec
        return (s.op, s.in_channels, s.out_channels, s.in_hw, s.out_hw, s.kernel, s.stride, s.padding, s.groups,
                s.w_bits, s.a_bits, s.o_bits, self.rows, self.in_rows, self.edge_padding)

    def zigzag(self) -> dict[str, Any]:
        """ZigZag workload dict of this tile (its output rows, the input rows they read)."""
        layer = zigzag_layer(self.spec)
        if self.spec.op != "fc" and (self.rows, self.in_rows) != (self.spec.out_hw[0], self.spec.in_hw[0]):
            sizes = dict(zip(layer["loop_dims"], layer["loop_sizes"]))
            sizes["OY"] = self.rows
            layer["loop_sizes"] = [sizes[d] for d in layer["loop_dims"]]
            if "pr_loop_sizes" in layer:  # conv and pooling: input rows and the padding at the tile's edges
                layer["pr_loop_sizes"] = [layer["pr_loop_sizes"][0], self.in_rows]
                layer["padding"] = [layer["padding"][0], list(self.edge_padding)]
        return layer


def _input_rows(spec: LayerLike, row0: int, rows: int) -> tuple[int, int, int, int]:
    """(first input row, input rows, padding rows above, padding rows below) read by output rows."""
    in_h = spec.in_hw[0]
    if spec.op == "fc":
        return 0, in_h, 0, 0
    if spec.op == "add":
        return row0, rows, 0, 0
    k, s = spec.kernel[0], spec.stride[0]
    pad = spec.padding[0] if spec.op == "conv" else 0
    first = row0 * s - pad
    last = (row0 + rows - 1) * s - pad + k  # exclusive
    lo, hi = max(0, first), min(in_h, last)
    return lo, hi - lo, max(0, -first), max(0, last - in_h)


def build_tiles(graph: nx.DiGraph, tile_rows: int | None, max_weight_bits: int | None = None) -> list[Tile]:
    """Tiles of every layer of a layer graph, linked by their data dependencies.

    A layer whose weights exceed ``max_weight_bits`` stays one tile: each tile needs all of a
    layer's weights, so splitting a layer whose weights cannot stay on chip would re-stream them
    from off-chip memory for every tile.
    """
    if tile_rows is not None and tile_rows < 1:
        raise ValueError(f"tile_rows: expected a positive integer or None, got {tile_rows}")
    tiles: list[Tile] = []
    by_layer: dict[str, list[Tile]] = {}
    for order, name in enumerate(nx.lexicographical_topological_sort(graph)):
        spec = graph.nodes[name]["spec"]
        out_h = spec.out_hw[0]
        too_big = max_weight_bits is not None and spec.params * spec.w_bits > max_weight_bits
        step = out_h if tile_rows is None or spec.op == "fc" or too_big else min(tile_rows, out_h)
        layer_tiles = []
        for row0 in range(0, out_h, step):
            rows = min(step, out_h - row0)
            in_row0, in_rows, pad_top, pad_bottom = _input_rows(spec, row0, rows)
            tile = Tile(len(tiles), name, spec, row0, rows, in_row0, in_rows, pad_top, pad_bottom, order)
            tiles.append(tile)
            layer_tiles.append(tile)
        by_layer[name] = layer_tiles
        for producer in graph.predecessors(name):
            src_spec = graph.nodes[producer]["spec"]
            row_bits = src_spec.out_hw[1] * src_spec.out_channels * src_spec.o_bits
            for dst in layer_tiles:
                lo, hi = (0, src_spec.out_hw[0]) if spec.op == "fc" else (dst.in_row0, dst.in_row0 + dst.in_rows)
                for src in by_layer[producer]:
                    overlap = min(hi, src.row0 + src.rows) - max(lo, src.row0)
                    if overlap > 0:
                        dep = Dependency(src.index, dst.index, overlap * row_bits)
                        dst.preds.append(dep)
                        src.succs.append(dep)
    return tiles
