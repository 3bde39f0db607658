"""Clean ONNX of a static layer graph, for the Stream cross-check (``benchmarks/stream_crosscheck.py``).

Written node by node with ``onnx.helper`` from the layer graph: Conv (groups, strides, pads), Add,
MaxPool, Flatten and Gemm, INT8 tensors, zero weights as raw initializers, shapes inferred, no
Constant, Relu, BatchNormalization or quantisation nodes (the layer graph costs none of them: activations
are fused into their convolutions). Stream 2.1.1's parser rejects Constant nodes and keeps only the
first graph output, so the graph must have exactly one exit.
"""

from __future__ import annotations

from pathlib import Path

import networkx as nx
import onnx
from onnx import TensorProto, helper

ELEM = {8: TensorProto.INT8, 16: TensorProto.INT16, 32: TensorProto.INT32}


def _elem(bits: int) -> int:
    if bits not in ELEM:
        raise ValueError(f"Stream reads INT8/INT16/INT32 tensors only, got a {bits}-bit operand")
    return ELEM[bits]


def _weight(name: str, bits: int, shape: list[int]) -> onnx.TensorProto:
    """A zero-filled initializer (values do not matter to a cost model)."""
    size = 1
    for d in shape:
        size *= d
    return helper.make_tensor(name, _elem(bits), shape, b"\0" * (size * bits // 8), raw=True)


def layer_graph_onnx(graph: nx.DiGraph, name: str) -> onnx.ModelProto:
    """The layer graph as a shape-inferred ONNX model with one output (the single exit's logits)."""
    if len(graph.graph["exit_outputs"]) != 1:
        raise ValueError(f"{name}: expected a static network (one exit), got exits {graph.graph['exit_labels']}")
    c, h, w = graph.graph["input_shape"]
    order = list(nx.lexicographical_topological_sort(graph))
    first = graph.nodes[order[0]]["spec"]
    inputs = [helper.make_tensor_value_info("input", _elem(first.a_bits), [1, c, h, w])]
    nodes: list[onnx.NodeProto] = []
    inits: list[onnx.TensorProto] = []
    out_of: dict[str, str] = {}
    for layer in order:
        spec = graph.nodes[layer]["spec"]
        preds = [out_of[p] for p in graph.predecessors(layer)] or ["input"]
        out = f"{layer}.out"
        if spec.op == "conv":
            weight = f"{layer}.weight"
            kh, kw = spec.kernel
            inits.append(_weight(weight, spec.w_bits, [spec.out_channels, spec.in_channels // spec.groups, kh, kw]))
            py, px = spec.padding
            nodes.append(helper.make_node("Conv", [preds[0], weight], [out], name=layer, kernel_shape=[kh, kw],
                                          strides=list(spec.stride), pads=[py, px, py, px], group=spec.groups))
        elif spec.op == "add":
            if len(preds) != 2:
                raise ValueError(f"{name}: add {layer} has {len(preds)} inputs, expected 2")
            nodes.append(helper.make_node("Add", preds, [out], name=layer))
        elif spec.op == "maxpool":
            nodes.append(helper.make_node("MaxPool", preds, [out], name=layer, kernel_shape=list(spec.kernel),
                                          strides=list(spec.stride)))
        elif spec.op == "fc":
            src = preds[0]
            producer = graph.nodes[next(iter(graph.predecessors(layer)))]["spec"]
            if producer.op != "fc":
                flat = f"{layer}.flat"
                nodes.append(helper.make_node("Flatten", [src], [flat], name=f"{layer}.flatten", axis=1))
                src = flat
            weight = f"{layer}.weight"
            inits.append(_weight(weight, spec.w_bits, [spec.in_channels, spec.out_channels]))
            nodes.append(helper.make_node("Gemm", [src, weight], [out], name=layer))
        else:
            raise ValueError(f"{name}: layer {layer} has op {spec.op!r}, not one Stream's parser is given here")
        out_of[layer] = out
    last = graph.graph["exit_outputs"][0]
    spec = graph.nodes[last]["spec"]
    outputs = [helper.make_tensor_value_info(out_of[last], _elem(spec.o_bits), [1, spec.out_channels])]
    model = helper.make_model(helper.make_graph(nodes, name, inputs, outputs, inits),
                              opset_imports=[helper.make_opsetid("", 17)], producer_name="eenas")
    model = onnx.shape_inference.infer_shapes(model)
    if any(n.op_type == "Constant" for n in model.graph.node):
        raise AssertionError(f"{name}: Constant nodes in the exported graph")
    return model


def write_onnx(graph: nx.DiGraph, name: str, path: Path) -> Path:
    """Write :func:`layer_graph_onnx` to ``path``; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(layer_graph_onnx(graph, name), str(path))
    return path
