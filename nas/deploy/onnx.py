"""ONNX export of an early-exit network: every exit's logits, fake quantisation as explicit ops.

The graph computes all exits for every input (ONNX has no data-dependent early exit); the exit rule
travels as metadata. Metadata (``model.metadata_props``): ``eenas.layer_bits`` (JSON: layer ->
"W<w>A<a>"), ``eenas.exit_labels``, ``eenas.threshold``, ``eenas.space`` and ``eenas.genotype``.
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass
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
        torch.onnx.export(wrapper, (torch.zeros(1, *input_shape),), str(path), dynamo=False, opset_version=17,
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


@dataclass(frozen=True)
class ExitAgreement:
    """How closely one exit of an ONNX export reproduces the PyTorch network (logit units)."""

    exit: str
    max_abs_diff: float
    mean_abs_diff: float
    max_abs_logit: float
    argmax_agreement: float  # share of images with the same predicted class


def exit_agreement(net: EarlyExitNet, path: str | Path, images: torch.Tensor, exit_labels: list[str],
                   chunk: int = 100) -> list[ExitAgreement]:
    """Run the export at ``path`` with ONNX's reference evaluator on ``images`` (``chunk`` at a time: its
    convolutions take gigabytes for a batch of 1000) and compare every exit with ``net``'s logits."""
    import numpy as np
    import onnx
    from onnx.reference import ReferenceEvaluator

    evaluator = ReferenceEvaluator(onnx.load(str(path)))
    parts = [evaluator.run(None, {"input": images[i: i + chunk].numpy()}) for i in range(0, len(images), chunk)]
    with torch.no_grad():
        want = [w.numpy() for w in net.eval()(images)]
    rows = []
    for label, got, w in zip(exit_labels, (np.concatenate(p) for p in zip(*parts)), want):
        diff = np.abs(got - w)
        rows.append(ExitAgreement(label, float(diff.max()), float(diff.mean()), float(np.abs(w).max()),
                                  float((got.argmax(1) == w.argmax(1)).mean())))
    return rows
