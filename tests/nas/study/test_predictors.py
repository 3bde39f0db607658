"""Genotype-level predictors and their rank metric."""

from __future__ import annotations

import random

import numpy as np
import pytest

from nas.study.predictors import (
    FEATURES,
    RIDGE_GRID,
    EnsemblePredictor,
    OneHot,
    RidgePredictor,
    ValueShares,
    kendall_tau,
    parameter_group,
)


def test_kendall_tau_on_known_rankings():
    assert kendall_tau([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert kendall_tau([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert kendall_tau([1, 2, 3, 4], [1, 3, 2, 4]) == pytest.approx(4 / 6)  # one discordant pair of six
    with pytest.raises(ValueError, match="equal length"):
        kendall_tau([1, 2], [1])


def test_one_hot_columns_and_unseen_values():
    enc = OneHot([{"k": 3, "e": 6}, {"k": 5, "e": 6}])
    assert enc.columns == ["e=6", "k=3", "k=5"]
    assert enc({"k": 5, "e": 4}).tolist() == [0.0, 0.0, 1.0]  # e=4 was never seen


def additive_data(n: int, seed: int) -> tuple[list[dict], np.ndarray, np.ndarray]:
    """(params, noisy targets, noiseless targets) of an additive function of the parameters."""
    rng = random.Random(seed)
    params = [{"a": rng.randrange(4), "b": rng.randrange(4), "c": rng.choice("xyz")} for _ in range(n)]
    effect = {"x": 0.0, "y": 0.5, "z": -0.5}
    y = np.array([[p["a"] * 0.1 + (p["b"] == 2) * 0.3 + effect[p["c"]], -p["a"] * 0.2] for p in params])
    return params, y + np.random.default_rng(seed).normal(0, 0.01, y.shape), y


@pytest.mark.parametrize("model", [lambda p, y: RidgePredictor(p, y, ridge=1e-3),
                                   lambda p, y: EnsemblePredictor(p, y, members=3, epochs=300)])
def test_predictors_rank_held_out_candidates(model):
    params, y, truth = additive_data(120, seed=1)
    fitted = model(params[:80], y[:80])
    pred = fitted.predict(params[80:])
    assert pred.shape == (40, 2)
    for col in range(2):
        assert kendall_tau(pred[:, col], truth[80:, col]) > 0.85  # tied truths cap tau-b below 1
        assert np.abs(pred[:, col] - truth[80:, col]).mean() < 0.05


def test_ensemble_uncertainty_and_ridge_leave_one_out_error():
    params, y, _truth = additive_data(60, seed=2)
    mean, std = EnsemblePredictor(params, y, members=3, epochs=200).predict_with_std(params[:5])
    assert mean.shape == std.shape == (5, 2) and (std >= 0).all() and std.max() > 0
    ridge = RidgePredictor(params, y, ridge=1e-3)
    assert ridge.loo_std.shape == (2,) and (ridge.loo_std < 0.05).all()


def test_ridge_grid_picks_each_targets_strength_by_leave_one_out_error():
    params, y, truth = additive_data(120, seed=3)
    noise = np.random.default_rng(3).normal(0, 0.1, (120, 1))  # a target the parameters do not explain
    targets = np.hstack([y[:, :1], noise])
    grid = RidgePredictor(params[:80], targets[:80], ridge=RIDGE_GRID)
    assert grid.ridge[0] < 1.0 and grid.ridge[1] == max(RIDGE_GRID)
    for a, column in zip(grid.ridge, range(2)):  # each column's error is the one its strength alone gives
        alone = RidgePredictor(params[:80], targets[:80, column], ridge=float(a))
        assert grid.loo_std[column] == pytest.approx(alone.loo_std[0])
    pred = grid.predict(params[80:])
    assert kendall_tau(pred[:, 0], truth[80:, 0]) > 0.85
    fixed = RidgePredictor(params[:80], targets[:80], ridge=1e-3).predict(params[80:])
    assert pred[:, 1].std() < 0.2 * fixed[:, 1].std()  # the noise column stays near its mean instead of fitting
    with pytest.raises(ValueError, match="positive"):
        RidgePredictor(params, y, ridge=[0.0, 1.0])


def test_value_shares_count_like_parameters():
    assert [parameter_group(n) for n in ("wbits_b3.dw", "wbits_stem", "kernel_b3", "exit_D")] == [
        "wbits.dw", "wbits", "kernel", "exit"]
    params = [{"wbits_b0.dw": 4, "wbits_b1.dw": 8, "wbits_b2.dw": 4, "wbits_stem": 8, "exit_A": True, "exit_B": False}]
    enc = ValueShares(params)
    assert enc.columns == ["exit=False", "exit=True", "wbits.dw=4", "wbits.dw=8", "wbits=8"]
    assert enc(params[0]) == pytest.approx([0.5, 0.5, 2 / 3, 1 / 3, 1.0])
    assert enc({"wbits_b0.dw": 2, "wbits_stem": 8}) == pytest.approx([0, 0, 0, 0, 1.0])  # 2 bits never seen


def counting_data(n: int, seed: int) -> tuple[list[dict], np.ndarray]:
    """(params, targets): column 0 counts the 4-bit layers (whichever they are), column 1 follows one
    layer's value alone."""
    rng = random.Random(seed)
    params = [{f"bits_l{i}": rng.choice((4, 8)) for i in range(12)} for _ in range(n)]
    y = np.array([[sum(v == 4 for v in p.values()) * -0.5, (p["bits_l3"] == 4) * 1.0] for p in params])
    return params, y + np.random.default_rng(seed).normal(0, 0.05, y.shape)


def test_each_target_takes_the_encoding_that_explains_it():
    params, y = counting_data(60, seed=4)
    both = RidgePredictor(params[:30], y[:30], ridge=RIDGE_GRID, features=tuple(FEATURES))
    assert both.features == ["shares", "one-hot"]  # a count, and one layer's own value
    for column, name in enumerate(both.features):  # each column predicts what its encoding alone predicts
        alone = RidgePredictor(params[:30], y[:30, column], ridge=float(both.ridge[column]), features=name)
        assert both.loo_std[column] == pytest.approx(alone.loo_std[0])
        assert both.predict(params[30:])[:, column] == pytest.approx(alone.predict(params[30:])[:, 0])
    one_hot = RidgePredictor(params[:30], y[:30], ridge=RIDGE_GRID)
    assert both.loo_std[0] < 0.8 * one_hot.loo_std[0]  # 2 share columns fit 30 candidates better than 24 one-hot
    with pytest.raises(ValueError, match="features: expected names from"):
        RidgePredictor(params, y, features="bits")
