"""Exit calibration: exit ratios, per-exit accuracy and top-1 of a candidate at a threshold.

The exit rule is the reference's: a sample leaves at the first exit whose top softmax probability
is >= epsilon; the final exit takes whatever remains. Top-1 = sum_i r_i * acc_i exactly.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import torch

from nas.data import Split
from search_spaces import EarlyExitNet
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
def exit_outputs(net: EarlyExitNet, split: Split, batch_size: int = 500) -> ExitOutputs:
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


def exit_stats(outputs: ExitOutputs, threshold: float) -> ExitStats:
    """Ratios, per-exit accuracy and top-1 at ``threshold`` (same rule as :meth:`EarlyExitNet.early_exit`)."""
    n_exits, n = outputs.predictions.shape
    taken = torch.stack([exit_taken(lg, threshold) for lg in outputs.logits[:-1]] + [torch.ones(n, dtype=torch.bool)])
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
        threshold=float(threshold),
        ratios=tuple(ratios),
        exit_accuracy=tuple(accs),
        accuracy=right / n,  # = sum_i r_i acc_i, computed exactly so that equal accuracies compare equal
        exit_accuracy_all=tuple(float(c.float().mean()) for c in correct),
        samples=n,
    )


@torch.no_grad()
def early_exit_stats(net: EarlyExitNet, split: Split, threshold: float | None = None, batch_size: int = 500) -> ExitStats:
    """The same figures measured with real early-exit inference (samples leave at their exit)."""
    net.eval()
    thr = net.threshold if threshold is None else threshold
    exits, correct = [], []
    for x, y in split.batches(batch_size):
        logits, idx = net.early_exit(x, thr)
        exits.append(idx)
        correct.append(logits.argmax(1) == y)
    idx, ok = torch.cat(exits), torch.cat(correct)
    n, k = len(idx), len(net.heads)
    counts = [int((idx == i).sum()) for i in range(k)]
    hits = [int(ok[idx == i].sum()) for i in range(k)]
    accs = [h / c if c else 0.0 for h, c in zip(hits, counts)]
    return ExitStats(float(thr), tuple(c / n for c in counts), tuple(accs), sum(hits) / n, (), n)
