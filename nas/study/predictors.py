"""Predictors of a candidate's accuracy and exit behaviour from its genotype (Once-for-All style).

Trained on really evaluated candidates, they answer in microseconds what the evaluator answers in
seconds. A genotype is encoded as the search space's own parameters (``space.encode``: one column
per ``name=value``, so any registered space works without hand-made features). Two models:

- :class:`RidgePredictor`: ridge regression, closed form, with leave-one-out errors; given a grid of
  strengths (e.g. :data:`RIDGE_GRID`) it picks each target's by its leave-one-out error;
- :class:`EnsemblePredictor`: an ensemble of small MLPs (torch), whose spread is the uncertainty.

Targets are a matrix (candidates x outputs), e.g. accuracy and each exit's share of samples.
:func:`kendall_tau` scores a predictor's ranking on held-out candidates.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch


class OneHot:
    """One column per ``name=value`` seen in ``params`` (unseen values encode as all zeros)."""

    def __init__(self, params: Sequence[Mapping[str, Any]]) -> None:
        self.columns = sorted({f"{k}={v!r}" for p in params for k, v in p.items()})
        self.index = {c: i for i, c in enumerate(self.columns)}

    def __call__(self, params: Mapping[str, Any]) -> np.ndarray:
        f = np.zeros(len(self.columns))
        for k, v in params.items():
            i = self.index.get(f"{k}={v!r}")
            if i is not None:
                f[i] = 1.0
        return f

    def matrix(self, params: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """(len(params), columns) features."""
        return np.stack([self(p) for p in params]) if params else np.zeros((0, len(self.columns)))


RIDGE_GRID = tuple(float(10.0**k) for k in np.arange(-2.0, 4.01, 0.5))  # 0.01 .. 10000, half decades


def ridge_strengths(setting: float | str) -> float | tuple[float, ...]:
    """A config's ridge setting as :class:`RidgePredictor` takes it: a strength, or ``"loo"``: :data:`RIDGE_GRID`."""
    return RIDGE_GRID if setting == "loo" else float(setting)


class RidgePredictor:
    """Ridge regression of every target column on one-hot parameters.

    ``ridge``: one strength for every target, or several, of which each target column takes the one
    with the least leave-one-out error (closed form, from the leverages). A target the parameters do
    not explain then gets a strong penalty and predicts close to its mean instead of overfitting.
    ``self.ridge`` holds the strength of each column, ``self.loo_std`` its leave-one-out error
    (root mean square, target units)."""

    def __init__(self, params: Sequence[Mapping[str, Any]], targets: np.ndarray,
                 ridge: float | Sequence[float] = 1.0) -> None:
        self.encode = OneHot(params)
        x, y = self.encode.matrix(params), np.asarray(targets, dtype=float).reshape(len(params), -1)
        self.mean = y.mean(0)
        u, s, vt = np.linalg.svd(x, full_matrices=False)  # x = u diag(s) vt
        uy = u.T @ (y - self.mean)
        strengths = [float(ridge)] if isinstance(ridge, (int, float)) else [float(a) for a in ridge]
        if not strengths or min(strengths) <= 0:
            raise ValueError(f"ridge strengths must be positive, got {ridge!r}")
        best = np.full(y.shape[1], np.inf)
        self.ridge = np.full(y.shape[1], strengths[0])  # kept where no error is finite
        for a in strengths:
            shrink = s**2 / (s**2 + a)
            hat = (u**2) @ shrink  # leverages, for leave-one-out residuals
            loo = (y - self.mean - u @ (shrink[:, None] * uy)) / np.clip(1.0 - hat, 1e-6, None)[:, None]
            mse = (loo**2).mean(0)
            better = mse < best
            best[better], self.ridge[better] = mse[better], a
        self.loo_std = np.sqrt(best)  # per target column
        self.weights = vt.T @ ((s / (s**2 + self.ridge[:, None])).T * uy)

    def predict(self, params: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """(len(params), targets) predictions."""
        return self.mean + self.encode.matrix(params) @ self.weights


class EnsemblePredictor:
    """``members`` MLPs (one hidden layer of ``hidden`` units) trained full-batch with Adam on
    standardised targets, each from its own seed; predictions are their mean, uncertainty their
    standard deviation."""

    def __init__(self, params: Sequence[Mapping[str, Any]], targets: np.ndarray, members: int = 5,
                 hidden: int = 64, epochs: int = 400, weight_decay: float = 1e-3, seed: int = 0) -> None:
        self.encode = OneHot(params)
        x = torch.as_tensor(self.encode.matrix(params), dtype=torch.float32)
        y = torch.as_tensor(np.asarray(targets, dtype=float).reshape(len(params), -1), dtype=torch.float32)
        self.mean, self.std = y.mean(0), y.std(0).clamp_min(1e-6)
        z = (y - self.mean) / self.std
        self.nets = []
        for m in range(members):
            gen = torch.Generator().manual_seed(seed + m)
            net = torch.nn.Sequential(torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(),
                                      torch.nn.Linear(hidden, y.shape[1]))
            for p in net.parameters():
                torch.nn.init.normal_(p, std=0.1, generator=gen)
            opt = torch.optim.Adam(net.parameters(), lr=1e-2, weight_decay=weight_decay)
            for _ in range(epochs):
                opt.zero_grad()
                torch.nn.functional.mse_loss(net(x), z).backward()
                opt.step()
            self.nets.append(net.eval())

    @torch.no_grad()
    def predict_with_std(self, params: Sequence[Mapping[str, Any]]) -> tuple[np.ndarray, np.ndarray]:
        """(mean, standard deviation over members), each (len(params), targets), in target units."""
        x = torch.as_tensor(self.encode.matrix(params), dtype=torch.float32)
        out = torch.stack([net(x) * self.std + self.mean for net in self.nets])
        return out.mean(0).numpy().astype(float), out.std(0).numpy().astype(float)

    def predict(self, params: Sequence[Mapping[str, Any]]) -> np.ndarray:
        return self.predict_with_std(params)[0]


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    """Kendall's tau-b rank correlation of two equally long sequences (ties counted as in tau-b)."""
    x, y = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(x) != len(y) or len(x) < 2:
        raise ValueError(f"kendall_tau needs two sequences of equal length >= 2, got {len(x)} and {len(y)}")
    iu = np.triu_indices(len(x), 1)
    dx, dy = np.sign(x[:, None] - x[None, :])[iu], np.sign(y[:, None] - y[None, :])[iu]
    denom = np.sqrt(np.count_nonzero(dx) * np.count_nonzero(dy))
    return float((dx * dy).sum() / denom) if denom else 0.0
