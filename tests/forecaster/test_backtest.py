"""Walk-forward: every model sees only data up to each origin, all models share the origins, scores are honest."""

import math

import pandas as pd
import pytest

from forecaster.errors import ConfigError, NotEnoughDataError
from forecaster.evaluation import metrics
from forecaster.evaluation.backtest import forecast_origins, run_backtest, walk_forward
from forecaster.models.baselines import Drift, Naive
from forecaster.models.lstm import LSTMForecaster


class Spy(Naive):
    """A naive model that records the last date of every frame it is given."""

    name = "spy"

    def __init__(self) -> None:
        super().__init__(calibration=20)
        self.seen: list[tuple[str, pd.Timestamp]] = []

    def fit(self, prices):
        self.seen.append(("fit", prices.index[-1]))
        return super().fit(prices)

    def update(self, prices):
        self.seen.append(("update", prices.index[-1]))
        return super().fit(prices)


def test_origins_are_the_sessions_before_each_target_in_range(long_prices):
    origins = forecast_origins(long_prices, "2019-06-03", "2019-06-07")
    targets = long_prices.index[long_prices.index.get_indexer(origins) + 1]
    assert list(targets.strftime("%Y-%m-%d")) == ["2019-06-03", "2019-06-04", "2019-06-05", "2019-06-06", "2019-06-07"]


def test_each_origin_sees_only_rows_up_to_itself_and_refits_on_schedule(long_prices):
    spy = Spy()
    origins = forecast_origins(long_prices, "2019-06-03", "2019-06-28")
    frame = walk_forward(spy, long_prices, origins, horizon=2, refit_every=5)
    assert [d for _, d in spy.seen] == list(origins)
    assert [k for k, _ in spy.seen][:6] == ["fit", "update", "update", "update", "update", "fit"]
    assert (frame["target_date"] > frame["as_of"]).all()
    assert (
        frame.loc[frame["horizon"] == 1, "actual"].tolist()
        == long_prices["close"].loc["2019-06-03":"2019-06-28"].tolist()
    )


def test_summary_puts_every_model_beside_naive_on_the_same_targets(long_prices, tiny_preset):
    result = run_backtest(
        [LSTMForecaster(tiny_preset, horizon=2), Naive(), Drift()], long_prices, "2020-06-01", "2020-06-30",
        horizon=2, refit_every=10,
    )  # fmt: skip
    s = result.summary
    n = s["n_forecasts"]
    assert n == len(long_prices.loc["2020-06-01":"2020-06-30"])
    for name in ("lstm", "naive", "drift"):
        assert s[name]["n"] == n
        assert {"rmse", "mae", "mape", "r2", "mase", "directional_accuracy", "u2", "coverage80"} <= set(s[name])
    assert s["naive"]["u2"] == pytest.approx(1.0)
    assert s["naive"]["call_share"] == 0.0 and s["naive"]["directional_accuracy"] == 0.0, "naive never makes a call"
    assert math.isnan(s["naive"]["dm_stat"]), "naive against itself: nothing to test"
    for name in ("lstm", "drift"):  # a p-value where the model departs from naive; NaN where it never does
        rows = result.forecasts[(result.forecasts["model"] == name) & (result.forecasts["horizon"] == 1)]
        departs = bool((rows["point"] != rows["naive"]).any())
        p_value = s[name]["dm_pvalue"]
        assert (0 <= p_value <= 1) if departs else math.isnan(p_value), (name, departs, p_value)
    for name in ("lstm", "naive", "drift"):
        for key in ("winkler80", "winkler95", "pinball", "coverage80_calm", "coverage80_mid", "coverage80_wild"):
            assert math.isfinite(s[name][key]), (name, key)
    assert s["lstm"]["u2"] == pytest.approx(s["lstm"]["rmse"] / s["naive"]["rmse"])
    assert set(s["by_horizon"]["lstm"]) == {1, 2}
    origins = result.forecasts.groupby("model")["as_of"].apply(lambda x: tuple(sorted(set(x))))
    assert origins.nunique() == 1


def test_start_after_end_is_rejected(long_prices):
    with pytest.raises(ConfigError, match="start 2020-06-30 is after end 2020-06-01"):
        forecast_origins(long_prices, "2020-06-30", "2020-06-01")


def test_range_outside_the_data_is_rejected(long_prices):
    with pytest.raises(NotEnoughDataError, match="no forecast origins"):
        forecast_origins(long_prices, "2030-01-01", "2030-02-01")


def test_summary_terciles_use_the_volatility_known_at_each_origin(long_prices):
    result = run_backtest([Naive()], long_prices, "2020-06-01", "2020-07-31", horizon=2)
    h2 = result.forecasts.query("horizon == 2 and target_date <= '2020-07-31'")  # the scored targets
    close = long_prices["close"]
    vol = [abs(close.loc[:d].apply("log").diff().tail(20)).mean() for d in h2["as_of"]]
    by_hand = metrics.coverage_by_tercile(h2["actual"], h2["lo80"], h2["hi80"], vol)
    got = result.summary["by_horizon"]["naive"][2]
    assert [got[f"coverage80_{t}"] for t in metrics.TERCILES] == pytest.approx(by_hand)
