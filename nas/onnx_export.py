"""ONNX export of an early-exit network: every exit's logits, fake quantisation as explicit ops.

The graph computes all exits for every input (ONNX has no data-dependent early exit); the exit rule
travels as metadata. Metadata (``model.metadata_props``): ``eenas.layer_bits`` (JSON: layer ->
"W<w>A<a>"), ``eenas.exit_labels``, ``eenas.threshold``, ``eenas.space`` and ``eenas.genotype``.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import torch

from search_spaces import EarlyExitNet
from search_spaces.modules.lsq import exportable


class _AllExits(torch.nn.Module):
    def __init__(self, net: EarlyExitNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.net(x))


def export_onnx(net: EarlyExitNet, path: str | Path, input_shape: tuple[int, int, int], metadata: dict[str, Any],
                exit_labels: list[str]) -> Path:
    """Write ``net`` as ONNX (opset 17, dynamic batch) with ``metadata`` (JSON-encoded values)."""
    import onnx

    path = Path(path)
    was_training = net.training
    wrapper = _AllExits(net).eval()  # the exporter restores the wrapper's mode afterwards: eval, not train
    outputs = [f"exit_{label}" for label in exit_labels]
    with torch.no_grad(), exportable(), warnings.catch_warnings():
        # the legacy exporter handles this graph; tracer warnings concern Python-side constants (bits)
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(wrapper, torch.zeros(1, *input_shape), str(path), dynamo=False, opset_version=17,
                          input_names=["input"], output_names=outputs,
                          dynamic_axes={"input": {0: "batch"}, **{o: {0: "batch"} for o in outputs}})
    net.train(was_training)
    model = onnx.load(str(path))
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = f"eenas.{key}", value if isinstance(value, str) else json.dumps(value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path
