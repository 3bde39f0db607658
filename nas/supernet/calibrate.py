"""Exit calibration: exit ratios, per-exit accuracy and top-1 of a candidate at a threshold.

The exit rule is the reference's: a sample leaves at the first exit whose top softmax probability
is >= epsilon; the final exit takes whatever remains. Top-1 = sum_i r_i * acc_i exactly.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch

from nas.data import Split
from search_spaces import EarlyExitNet
from search_spaces.modules.batchnorm import reestimate_batchnorm
from search_spaces.modules.early_exit import exit_taken


@dataclass(frozen=True)
class ExitOutputs:
    """Per-exit predictions and confidences of every sample (no exiting), plus labels."""

    predictions: torch.Tensor  # (exits, N) int64
    logits: list[torch.Tensor]  # per exit, (N, classes)
    labels: torch.Tensor

    @property
    def num_exits(self) -> int:
        return int(self.predictions.shape[0])


@dataclass(frozen=True)
class ExitStats:
    """Exit behaviour at one threshold. Ratios and accuracies are fractions in [0, 1]."""

    threshold: float
    ratios: tuple[float, ...]  # r_i, sum 1
    exit_accuracy: tuple[float, ...]  # acc_i on the samples leaving at exit i (0 where none leave)
    accuracy: float  # top-1 = sum_i r_i acc_i
    exit_accuracy_all: tuple[float, ...]  # accuracy of each exit on every sample
    samples: int

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in asdict(self).items()}


@torch.no_grad()
def exit_outputs(net: EarlyExitNet, split: Split, batch_size: int = 100) -> ExitOutputs:
    """Run every exit on every sample of ``split`` (eval mode)."""
    was_training = net.training
    net.eval()
    chunks: list[list[torch.Tensor]] = []
    for x, _y in split.batches(batch_size):
        chunks.append(net(x))
    net.train(was_training)
    logits = [torch.cat([c[i] for c in chunks]) for i in range(len(chunks[0]))]
    predictions = torch.stack([lg.argmax(1) for lg in logits])
    return ExitOutputs(predictions, logits, split.labels)


def exit_stats(outputs: ExitOutputs, threshold: float | Sequence[float]) -> ExitStats:
    """Ratios, per-exit accuracy and top-1 at ``threshold`` (one for every early exit, or a list with
    one per early exit): the rule of :meth:`EarlyExitNet.early_exit`."""
    n_exits, n = outputs.predictions.shape
    thresholds = [float(threshold)] * (n_exits - 1) if isinstance(threshold, (int, float)) else list(threshold)
    taken = torch.stack([exit_taken(lg, t) for lg, t in zip(outputs.logits[:-1], thresholds)]
                        + [torch.ones(n, dtype=torch.bool)])
    first = taken.int().argmax(0)  # index of the first exit taken by each sample
    correct = outputs.predictions == outputs.labels.unsqueeze(0)
    ratios, accs, right = [], [], 0
    for i in range(n_exits):
        leaving = first == i
        count, hits = int(leaving.sum()), int(correct[i][leaving].sum())
        ratios.append(count / n)
        accs.append(hits / count if count else 0.0)
        right += hits
    return ExitStats(
        threshold=float(thresholds[0]) if thresholds and len(set(thresholds)) == 1 else float("nan"),
        ratios=tuple(ratios),
        exit_accuracy=tuple(accs),
        accuracy=right / n,  # = sum_i r_i acc_i, computed exactly so that equal accuracies compare equal
        exit_accuracy_all=tuple(float(c.float().mean()) for c in correct),
        samples=n,
    )


def rule_threshold(outputs: ExitOutputs, grid: Sequence[float], max_accuracy_loss: float) -> float:
    """The lowest threshold of ``grid`` whose top-1 is within ``max_accuracy_loss`` (absolute) of the
    final exit's accuracy on every sample; the highest of the grid if none is."""
    target = float((outputs.predictions[-1] == outputs.labels).float().mean()) - max_accuracy_loss
    for t in sorted(grid):
        if exit_stats(outputs, t).accuracy >= target:
            return float(t)
    return float(max(grid))


def accuracy_target_thresholds(train_accuracy: Sequence[float], target: float, beta1: float = 0.8,
                               beta2: float = 1.1) -> list[float]:
    """The accuracy-target exit rule of the related studies, as per-exit thresholds: at early exit i
    every sample leaves when beta1 * (mean training accuracy of exit i) >= target; otherwise a sample
    leaves when its confidence >= beta2 * target (beta1 = 0.8, beta2 = 1.1 in the study)."""
    return [0.0 if beta1 * acc >= target else min(1.0, beta2 * target) for acc in train_accuracy[:-1]]


@torch.no_grad()
def recalibrate_batchnorm(net: torch.nn.Module, images: torch.Tensor, batch_size: int = 250) -> None:
    """Re-estimate every batch-norm layer's statistics on ``images`` as eval mode sees them
    (:func:`search_spaces.modules.batchnorm.reestimate_batchnorm`: exact, deterministic, whatever
    ``batch_size``, which only bounds memory): statistics accumulated while training many subnets do not
    fit any one of them. An early-exit network's stages are its stem and blocks; its exit heads hold no
    batch norm, and one batch through them gives any exit quantiser never used before its first-use step."""
    batches = list(torch.split(images, batch_size))
    if not batches:
        return
    net.eval()
    if isinstance(net, EarlyExitNet):
        reestimate_batchnorm([net.stem, *net.blocks], batches)
        net(batches[0])
    else:
        reestimate_batchnorm(list(net) if isinstance(net, torch.nn.Sequential) else [net], batches)


@torch.no_grad()
def early_exit_stats(net: EarlyExitNet, split: Split, threshold: float | None = None,
                     batch_size: int = 100) -> ExitStats:
    """The same figures measured with real early-exit inference (samples leave at their exit)."""
    net.eval()
    thr = net.threshold if threshold is None else threshold
    exits, correct = [], []
    for x, y in split.batches(batch_size):
        logits, idx = net.early_exit(x, threshold)
        exits.append(idx)
        correct.append(logits.argmax(1) == y)
    idx, ok = torch.cat(exits), torch.cat(correct)
    n, k = len(idx), len(net.heads)
    counts = [int((idx == i).sum()) for i in range(k)]
    hits = [int(ok[idx == i].sum()) for i in range(k)]
    accs = [h / c if c else 0.0 for h, c in zip(hits, counts)]
    return ExitStats(float(thr), tuple(c / n for c in counts), tuple(accs), sum(hits) / n, (), n)
