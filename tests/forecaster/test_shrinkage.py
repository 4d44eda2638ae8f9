"""Never worse than naive by design: the shrinkage toward the last close is 0 unless validation skill is significant."""

from __future__ import annotations

import numpy as np

from forecaster.models.lstm import _shrinkage


def _slice(skill: float, seed: int = 0, n: int = 180) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Prices of a validation slice whose realised log return is ``skill * predicted + noise``."""
    rng = np.random.default_rng(seed)
    last = np.full((n, 1), 100.0)
    predicted = rng.normal(0.0, 0.01, (n, 2))
    realised = skill * predicted + rng.normal(0.0, 0.03, (n, 2))
    return last * np.exp(predicted), last * np.exp(realised), last[:, 0]


def test_noise_with_a_lucky_positive_fit_is_shrunk_to_naive() -> None:
    for seed in range(20):
        points, actual, last = _slice(skill=0.0, seed=seed)
        predicted, realised = np.log(points / 100.0), np.log(actual / 100.0)
        beta = (predicted * realised).sum(axis=0) / (predicted**2).sum(axis=0)
        if (beta > 0).all():  # least squares alone would keep part of the noise forecast
            assert _shrinkage(points, actual, last).tolist() == [0.0, 0.0]
            return
    raise AssertionError("no seed gave a positive least-squares factor")


def test_genuine_skill_keeps_its_least_squares_factor() -> None:
    points, actual, last = _slice(skill=1.0, n=2000)
    shrink = _shrinkage(points, actual, last)
    assert (shrink > 0.7).all() and (shrink <= 1.0).all()


def test_the_skill_test_is_the_one_diebold_mariano_of_the_metrics(monkeypatch) -> None:
    """One DM implementation: a statistic of -2 from metrics.diebold_mariano keeps the factor, 0 drops it."""
    from forecaster.evaluation import metrics

    points, actual, last = _slice(skill=1.0, n=400)
    calls = []

    def fake(y_true, y_pred, y_naive, *, horizon=1):
        calls.append(horizon)
        return (-2.0 if horizon == 1 else 0.0), 0.05

    monkeypatch.setattr(metrics, "diebold_mariano", fake)
    shrink = _shrinkage(points, actual, last)
    assert calls == [1, 2] and shrink[0] > 0.7 and shrink[1] == 0.0
