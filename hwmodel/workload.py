"""From layer specs (duck-typed, see ``search_spaces.graph.LayerSpec``) to ZigZag layer dicts.

A spec needs: ``name, op, in_channels, out_channels, in_hw, out_hw, kernel, stride, padding,
groups, w_bits, a_bits, o_bits``. Convolutions (dense, grouped, depthwise) and FC layers go to
ZigZag on compute cores; an FC layer is a 1x1 convolution on a 1x1 map. Partial sums are kept at
``min(32, 2 * max(w_bits, a_bits))`` bits, the reference's "2p" rule.

Max-pooling and element-wise adds go to ZigZag on the pooling and SIMD cores when the system
describes them, in the form Stream gives them: pooling is ``O[k][oy][ox] += W[fy][fx] * I[k][iy][ix]``
with a 0-bit ``W`` (the window, no data: a dummy operand that costs nothing), an add is
``O[k][oy][ox] = I[k][oy][ox] + W[k][oy][ox]`` with the second input as ``W``.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Protocol

from hwmodel.zigzag_core import Kind

CONV_EQUATION = "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]"
COMPUTE_OPS = ("conv", "fc")


class LayerLike(Protocol):
    """What the cost model reads from a layer (``search_spaces.graph.LayerSpec`` fits)."""

    name: str
    op: str
    in_channels: int
    out_channels: int
    in_hw: tuple[int, int]
    out_hw: tuple[int, int]
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: tuple[int, int]
    groups: int
    w_bits: int
    a_bits: int
    o_bits: int
    stage: int
    branch: bool

    @property
    def macs(self) -> int: ...

    @property
    def ops(self) -> int: ...


def psum_bits(spec: LayerLike) -> int:
    """Partial-sum precision (bits) of a layer."""
    return min(32, 2 * max(spec.w_bits, spec.a_bits))


def kind(spec: LayerLike) -> Kind:
    """Which mapping entry a compute layer uses: ``fc``, ``depthwise`` or ``default``."""
    if spec.op == "fc":
        return "fc"
    if spec.groups > 1 and spec.groups == spec.in_channels and spec.out_channels == spec.in_channels:
        return "depthwise"
    return "default"


def zigzag_layer(spec: LayerLike) -> dict[str, Any]:
    """The ZigZag workload dict of a layer (layer id 0): conv and FC with constant weights, max-pooling
    and element-wise add in the pooling / SIMD core form (see the module docstring)."""
    if spec.op == "maxpool":
        return _pooling_layer(spec)
    if spec.op == "add":
        return _add_layer(spec)
    if spec.op not in COMPUTE_OPS:
        raise ValueError(f"{spec.name}: ZigZag costs conv, fc, maxpool and add layers, not {spec.op!r}")
    g = spec.groups
    if spec.op == "fc":
        (oy, ox), (iy, ix), (fy, fx), (sy, sx), (py, px) = (1, 1), (1, 1), (1, 1), (1, 1), (0, 0)
    else:
        (oy, ox), (iy, ix) = spec.out_hw, spec.in_hw
        (fy, fx), (sy, sx), (py, px) = spec.kernel, spec.stride, spec.padding
    return {
        "id": 0,
        "name": kind(spec),
        "operator_type": "Conv",
        "equation": CONV_EQUATION,
        "loop_dims": ["B", "K", "G", "OX", "OY", "C", "FX", "FY"],
        "loop_sizes": [1, spec.out_channels // g, g, ox, oy, spec.in_channels // g, fx, fy],
        "dimension_relations": [f"ix={sx}*ox+1*fx", f"iy={sy}*oy+1*fy"],
        "operand_precision": {"W": spec.w_bits, "I": spec.a_bits, "O": psum_bits(spec), "O_final": spec.o_bits},
        "operand_source": {"W": 0, "I": 0},
        "pr_loop_dims": ["IX", "IY"],
        "pr_loop_sizes": [ix, iy],
        "padding": [[px, px], [py, py]],
    }


def _pooling_layer(spec: LayerLike) -> dict[str, Any]:
    (oy, ox), (iy, ix), (fy, fx), (sy, sx) = spec.out_hw, spec.in_hw, spec.kernel, spec.stride
    return {
        "id": 0,
        "name": "default",
        "operator_type": "Pooling",
        "equation": "O[b][k][oy][ox]+=W[fy][fx]*I[b][k][iy][ix]",
        "loop_dims": ["B", "K", "OX", "OY", "FX", "FY"],
        "loop_sizes": [1, spec.out_channels, ox, oy, fx, fy],
        "dimension_relations": [f"ix={sx}*ox+1*fx", f"iy={sy}*oy+1*fy"],
        "operand_precision": {"W": 0, "I": spec.a_bits, "O": spec.o_bits, "O_final": spec.o_bits},
        "operand_source": {"W": 0, "I": 0},
        "pr_loop_dims": ["IX", "IY"],
        "pr_loop_sizes": [ix, iy],
        "padding": [[0, 0], [0, 0]],
    }


def _add_layer(spec: LayerLike) -> dict[str, Any]:
    oy, ox = spec.out_hw
    return {
        "id": 0,
        "name": "default",
        "operator_type": "Add",
        "equation": "O[b][k][oy][ox]+=I[b][k][oy][ox]+W[b][k][oy][ox]",
        "loop_dims": ["B", "K", "OX", "OY"],
        "loop_sizes": [1, spec.out_channels, ox, oy],
        "operand_precision": {"W": spec.a_bits, "I": spec.a_bits, "O": spec.o_bits, "O_final": spec.o_bits},
        "operand_source": {"W": 0, "I": 0},
    }


def signature(payload: Any) -> str:
    """Stable hash of any JSON-ready payload (cache keys)."""
    return hashlib.sha256(json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()).hexdigest()
