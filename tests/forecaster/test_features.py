"""Features and targets: backward-looking only, targets checked by hand, windows aligned to origins."""

import numpy as np
import pytest

from forecaster.data.sources import generate_prices
from forecaster.errors import ConfigError, NotEnoughDataError
from forecaster.models.features import WindowedData, compute_features, compute_targets, windows


def test_log_return_targets_match_hand_computation():
    prices = generate_prices(seed=1, n=30)
    close = prices["close"].to_numpy()
    targets = compute_targets(prices["close"], horizon=3, target="log_return")
    for t in range(len(close) - 3):
        for h in (1, 2, 3):
            assert targets[t, h - 1] == pytest.approx(np.log(close[t + h] / close[t]))
    assert np.isnan(targets[-1]).all() and np.isnan(targets[-3, 2])


def test_features_at_t_do_not_change_when_the_future_changes():
    prices = generate_prices(seed=2, n=300)
    names = ("log_return", "log_range", "vol_20", "sma_ratio_10", "sharpe_252", "volume_change")
    base = compute_features(prices, names)
    altered = prices.copy()
    altered.iloc[280:] *= 3.0
    again = compute_features(altered, names)
    np.testing.assert_array_equal(base.iloc[:280].to_numpy(), again.iloc[:280].to_numpy())


def test_windows_end_on_their_origin_row():
    values = np.arange(20, dtype=float).reshape(10, 2)
    w = windows(values, 4)
    assert w.shape == (7, 4, 2)
    np.testing.assert_array_equal(w[0, -1], values[3])
    np.testing.assert_array_equal(w[-1, -1], values[-1])


def test_windowed_data_counts_labelled_samples():
    prices = generate_prices(seed=3, n=100)
    data = WindowedData.build(prices, ("log_return",), window=10, horizon=5, target="log_return")
    assert data.n_origins == 100 - 1 - 10 + 1
    assert data.labelled() == data.n_origins - 5


def test_too_few_rows_for_the_window_says_how_many_are_needed():
    prices = generate_prices(seed=3, n=12)
    with pytest.raises(NotEnoughDataError, match="12 rows of prices but window 20"):
        WindowedData.build(prices, ("log_return",), window=20, horizon=1, target="log_return")


def test_unknown_feature_is_rejected():
    with pytest.raises(ConfigError, match="unknown feature"):
        compute_features(generate_prices(n=10), ("bogus",))
