"""The one policy step: shadow grading on sessions neither model trained on, promotion and fallback by the whole
forecast (intervals, not points alone), the training cadence, and inputs that are never changed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecaster.models.lstm import LSTMForecaster
from forecaster.policy import PolicySettings
from forecaster.step import PolicyState, Version, bytes_loader, fingerprint, moved_to, policy_step, shadow_forecasts

H = 3


@pytest.fixture(scope="module")
def fitted(long_prices, tiny_preset):
    """A champion fitted 15 sessions before the end of ``long_prices`` and a challenger made from it 6 sessions
    before the end (the origin moved, no training: the points of both are the same)."""
    prices = long_prices
    champion = LSTMForecaster(tiny_preset, horizon=H).fit(prices.iloc[:-15])
    challenger = moved_to(champion, prices.iloc[:-6])
    return prices, champion, challenger


def _version(model: LSTMForecaster, *, widen: float = 0.0) -> Version:
    """A stored version of ``model``; ``widen`` is added to its conformal scores (normalised units), which widens
    the intervals of either head (scale-head scores are non-negative ratios; quantile-head CQR scores are signed)."""
    model = moved_to(model, model.recent_)  # a copy
    model.residuals_ = model.residuals_ + widen
    return Version(model, model.origin_, model.origin_, fingerprint(model.preset_, H), bytes_loader(model))


def _step(prices, champion, challenger, **knobs):
    settings = PolicySettings(**({"gate_window": 5} | knobs))
    return policy_step(PolicyState(champion, challenger), prices, preset=champion.model.preset_, horizon=H,
                       settings=settings, live={})  # fmt: skip


@pytest.mark.slow
def test_a_challenger_with_worse_intervals_is_rejected_and_the_champion_keeps_forecasting(fitted):
    prices, champion, challenger = fitted
    old, worse = _version(champion), _version(challenger, widen=2.0)
    result = _step(prices, old, worse)
    assert result.verdict is not None and not result.verdict.promote, result.verdict
    assert result.gate["challenger"]["rmse"] == result.gate["champion"]["rmse"], "points tie: intervals decide"
    assert result.gate["challenger"]["pinball"] > result.gate["champion"]["pinball"]
    assert result.graded is worse and result.forecast_by is old and result.trail()["fallback"]
    assert result.decision is not None and result.state.challenger is not None, "a new challenger is trained at once"


@pytest.mark.slow
def test_a_challenger_with_better_intervals_is_promoted_and_forecasts_today(fitted):
    prices, champion, challenger = fitted
    old, better = _version(champion, widen=2.0), _version(challenger)
    result = _step(prices, old, better, gate_tolerance=0.99)  # a tie on points alone would not promote
    assert result.verdict is not None and result.verdict.promote, result.verdict
    assert result.forecast_by is better and result.state.champion is better
    expected = moved_to(better.model, prices).predict(H)
    pd.testing.assert_frame_equal(result.forecasts, expected)


@pytest.mark.slow
def test_the_gate_grades_only_targets_after_the_challenger_was_made_and_matured_by_today(fitted):
    prices, champion, challenger = fitted
    graded = shadow_forecasts(challenger, prices, challenger.origin_, H)
    assert graded["as_of"].min() == challenger.origin_ and graded["as_of"].max() < prices.index[-1]
    assert graded["target_date"].min() > challenger.origin_ and graded["target_date"].max() == prices.index[-1]
    assert graded["actual"].notna().all() and len(graded) == 6 * H - (1 + 2)


@pytest.mark.slow
def test_a_challenger_in_shadow_is_not_graded_before_its_window_and_nothing_is_trained(fitted):
    prices, champion, challenger = fitted
    old, pending = _version(champion), _version(challenger)
    result = _step(prices, old, pending, gate_window=7)  # it has forecast 6 sessions so far
    assert result.verdict is None and result.decision is None and result.candidate is None
    assert result.state == PolicyState(old, pending) and result.forecast_by is old


@pytest.mark.slow
def test_the_step_never_changes_the_versions_it_is_given(fitted):
    prices, champion, challenger = fitted
    old, new = _version(champion), _version(challenger)
    before = [(v.model.origin_, v.model.residuals_.copy(), [w.copy() for w in v.model.model_.get_weights()])
              for v in (old, new)]  # fmt: skip
    _step(prices, old, new)  # grades, then fine-tunes a new challenger from the champion
    for v, (origin, residuals, weights) in zip((old, new), before, strict=True):
        assert v.model.origin_ == origin and np.array_equal(v.model.residuals_, residuals)
        assert all(np.array_equal(a, b) for a, b in zip(v.model.model_.get_weights(), weights, strict=True))


@pytest.mark.slow
def test_a_rejected_full_retrain_is_not_retried_until_max_age_has_passed_again(fitted):
    prices, champion, _ = fitted
    old = _version(champion)  # its full fit is 15 sessions old
    settings = PolicySettings(max_age=5)
    tried = policy_step(PolicyState(old, None, last_full=prices.index[-3]), prices, preset=old.model.preset_,
                        horizon=H, settings=settings, live={})  # fmt: skip
    assert tried.decision is not None and tried.decision.kind == "finetune"
    assert "a full retrain 2 sessions ago was rejected by the gate (next in 3)" in tried.decision.reason
    fresh = policy_step(PolicyState(old, None), prices, preset=old.model.preset_, horizon=H, settings=settings,
                        live={})  # fmt: skip
    assert fresh.decision is not None and fresh.decision.kind == "full" and "15 sessions old" in fresh.decision.reason
    assert fresh.state.last_full == prices.index[-1] and tried.state.last_full == prices.index[-3]
