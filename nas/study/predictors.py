"""Predictors of a candidate's accuracy and exit behaviour from its genotype (Once-for-All style).

Trained on really evaluated candidates, they answer in microseconds what the evaluator answers in
seconds. A genotype is described by the search space's own parameters (``space.encode``), so any
registered space works without hand-made features. Two encodings (:data:`FEATURES`):

- ``one-hot`` (:class:`OneHot`): one column per ``name=value``: where each choice is made;
- ``shares`` (:class:`ValueShares`): for each group of like parameters (:func:`parameter_group`: every
  depthwise layer's weight bits, every block's kernel, every exit switch ...) the share of its
  members taking each value: how many 4-bit layers of each kind, how many exits. Far fewer columns,
  so a few dozen candidates fit them: what accuracy follows on random candidates.

Two models:

- :class:`RidgePredictor`: ridge regression, closed form, with leave-one-out errors; given a grid of
  strengths (e.g. :data:`RIDGE_GRID`) or several encodings, it picks each target's by its
  leave-one-out error;
- :class:`EnsemblePredictor`: an ensemble of small MLPs (torch), whose spread is the uncertainty.

Targets are a matrix (candidates x outputs), e.g. accuracy and each exit's share of samples.
:func:`kendall_tau` scores a predictor's ranking on held-out candidates.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch


class _ValueColumns:
    """One column per ``group=value`` seen in ``params``, a parameter's group given by :meth:`group`
    (unseen values and groups encode as zeros)."""

    def __init__(self, params: Sequence[Mapping[str, Any]]) -> None:
        self.columns = sorted({f"{self.group(k)}={v!r}" for p in params for k, v in p.items()})
        self.index = {c: i for i, c in enumerate(self.columns)}

    @staticmethod
    def group(name: str) -> str:
        return name

    def __call__(self, params: Mapping[str, Any]) -> np.ndarray:
        raise NotImplementedError

    def matrix(self, params: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """(len(params), columns) features."""
        return np.stack([self(p) for p in params]) if params else np.zeros((0, len(self.columns)))


class OneHot(_ValueColumns):
    """One column per ``name=value`` seen in ``params`` (unseen values encode as all zeros)."""

    def __call__(self, params: Mapping[str, Any]) -> np.ndarray:
        f = np.zeros(len(self.columns))
        for k, v in params.items():
            i = self.index.get(f"{k}={v!r}")
            if i is not None:
                f[i] = 1.0
        return f


def parameter_group(name: str) -> str:
    """The group of like parameters a parameter belongs to: its kind (the name up to the first ``_``) and,
    where the name has one, its layer role (after the last ``.``): ``wbits_b3.dw`` -> ``wbits.dw``,
    ``kernel_b3`` -> ``kernel``, ``exit_D`` -> ``exit``."""
    kind = name.split("_", 1)[0]
    return f"{kind}.{name.rsplit('.', 1)[1]}" if "." in name else kind


class ValueShares(_ValueColumns):
    """For each :func:`parameter_group` and value seen in ``params``, the share (0..1) of the group's
    parameters that take the value (unseen values and groups encode as zeros)."""

    group = staticmethod(parameter_group)

    def __call__(self, params: Mapping[str, Any]) -> np.ndarray:
        f = np.zeros(len(self.columns))
        groups = [self.group(k) for k in params]
        sizes = Counter(groups)
        for group, v in zip(groups, params.values()):
            i = self.index.get(f"{group}={v!r}")
            if i is not None:
                f[i] += 1.0 / sizes[group]
        return f


# the encodings a predictor may use, by name
FEATURES: dict[str, type[_ValueColumns]] = {"one-hot": OneHot, "shares": ValueShares}

RIDGE_GRID = tuple(float(10.0**k) for k in np.arange(-2.0, 4.01, 0.5))  # 0.01 .. 10000, half decades


def ridge_strengths(setting: float | str) -> float | tuple[float, ...]:
    """A config's ridge setting as :class:`RidgePredictor` takes it: a strength, or ``"loo"``: :data:`RIDGE_GRID`."""
    return RIDGE_GRID if setting == "loo" else float(setting)


class RidgePredictor:
    """Ridge regression of every target column on encoded parameters.

    ``ridge``: one strength for every target, or several; ``features``: one encoding of
    :data:`FEATURES` or several. With several, each target column takes the encoding and strength with
    the least leave-one-out error (closed form, from the leverages): a target the parameters do not
    explain gets a strong penalty and predicts close to its mean instead of overfitting, and a target
    that follows counts (accuracy: how many 4-bit layers) takes ``shares``. ``self.ridge`` and
    ``self.features`` hold each column's choice, ``self.loo_std`` its leave-one-out error (root mean
    square, target units), ``self.loo_predictions`` each training candidate's prediction by the model
    fit without it (candidates x targets)."""

    def __init__(self, params: Sequence[Mapping[str, Any]], targets: np.ndarray,
                 ridge: float | Sequence[float] = 1.0, features: str | Sequence[str] = "one-hot") -> None:
        strengths = [float(ridge)] if isinstance(ridge, (int, float)) else [float(a) for a in ridge]
        if not strengths or min(strengths) <= 0:
            raise ValueError(f"ridge strengths must be positive, got {ridge!r}")
        names = [features] if isinstance(features, str) else list(features)
        unknown = [n for n in names if n not in FEATURES]
        if unknown or not names:
            raise ValueError(f"features: expected names from {sorted(FEATURES)}, got {names}")
        y = np.asarray(targets, dtype=float).reshape(len(params), -1)
        self.mean = y.mean(0)
        best = np.full(y.shape[1], np.inf)
        self.ridge = np.full(y.shape[1], strengths[0])
        self.features = [names[0]] * y.shape[1]
        self._fits: dict[str, tuple[_ValueColumns, np.ndarray]] = {}
        self.loo_predictions = np.tile(self.mean, (len(params), 1))
        first = True  # the first fit is kept where no error is finite
        for name in names:
            encode = FEATURES[name](params)
            u, s, vt = np.linalg.svd(encode.matrix(params), full_matrices=False)  # x = u diag(s) vt
            uy = u.T @ (y - self.mean)
            weights = np.zeros((vt.shape[1], y.shape[1]))
            for a in strengths:
                shrink = s**2 / (s**2 + a)
                hat = (u**2) @ shrink  # leverages, for leave-one-out residuals
                loo = (y - self.mean - u @ (shrink[:, None] * uy)) / np.clip(1.0 - hat, 1e-6, None)[:, None]
                mse = (loo**2).mean(0)
                better, first = (mse < best) | first, False
                if better.any():
                    best[better], self.ridge[better] = mse[better], a
                    self.loo_predictions[:, better] = (y - loo)[:, better]
                    weights[:, better] = vt.T @ ((s / (s**2 + a))[:, None] * uy[:, better])
                    for _, chosen_before in self._fits.values():  # these columns leave an earlier encoding
                        chosen_before[:, better] = 0.0
                    self.features = [name if b else f for f, b in zip(self.features, better)]
            self._fits[name] = (encode, weights)
        self.loo_std = np.sqrt(best)  # per target column

    def predict(self, params: Sequence[Mapping[str, Any]]) -> np.ndarray:
        """(len(params), targets) predictions."""
        return self.mean + sum(encode.matrix(params) @ w for encode, w in self._fits.values())


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
