"""The report's numbers from frames: each checked against a hand loop or a hand-made case."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from forecaster.data.sources import generate_prices
from forecaster.evaluation import report_tables as rt


def _outcomes(n: int = 70, horizon: int = 2, seed: int = 0) -> pd.DataFrame:
    prices = generate_prices(seed=seed, n=n + horizon + 1, start="2024-01-02")
    close, dates = prices["close"].to_numpy(), prices.index
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        for h in range(1, horizon + 1):
            point, sd = close[i] * np.exp(rng.normal(0, 0.01)), 0.015 * close[i] * np.sqrt(h)
            rows.append({"as_of": dates[i], "target_date": dates[i + h], "horizon": h, "point": point,
                         "naive": close[i], "actual": close[i + h], "lo80": point - 1.28 * sd,
                         "hi80": point + 1.28 * sd, "lo95": point - 1.96 * sd, "hi95": point + 1.96 * sd})  # fmt: skip
    return pd.DataFrame(rows)


def test_skill_window_matches_hand_loop_over_last_20_horizon_1():
    frame = _outcomes()
    w = rt.skill_window(frame, 20)
    h1 = frame[frame["horizon"] == 1].sort_values("target_date").tail(20)
    sq = sq_naive = ab = hits = calls = in80 = in95 = winkler80 = 0.0
    for r in h1.itertuples():
        sq += (r.actual - r.point) ** 2
        sq_naive += (r.actual - r.naive) ** 2
        ab += abs(r.actual - r.point)
        calls += r.point != r.naive
        hits += (r.point - r.naive) * (r.actual - r.naive) > 0
        in80 += r.lo80 <= r.actual <= r.hi80
        in95 += r.lo95 <= r.actual <= r.hi95
        winkler80 += r.hi80 - r.lo80 + 10 * (max(r.lo80 - r.actual, 0) + max(r.actual - r.hi80, 0))
    assert w["n"] == 20 and w["horizon"] == 1
    assert w["model"]["rmse"] == pytest.approx(math.sqrt(sq / 20))
    assert w["naive"]["rmse"] == pytest.approx(math.sqrt(sq_naive / 20))
    assert w["model"]["mae"] == pytest.approx(ab / 20)
    assert w["model"]["u2"] == pytest.approx(math.sqrt(sq / sq_naive))
    assert w["model"]["directional_accuracy"] == pytest.approx(hits / 20)
    assert w["model"]["call_accuracy"] == pytest.approx(hits / calls)
    assert w["model"]["call_share"] == pytest.approx(calls / 20)
    assert (w["model"]["coverage80"], w["model"]["coverage95"]) == pytest.approx((in80 / 20, in95 / 20))
    assert w["model"]["winkler80"] == pytest.approx(winkler80 / 20)
    assert w["naive"]["u2"] == 1.0 and math.isnan(w["naive"]["directional_accuracy"])
    assert math.isnan(w["naive"]["winkler80"]) and math.isnan(w["model"]["coverage80_calm"]), "no prices given"
    assert w["last_target"] == h1["target_date"].max().strftime("%Y-%m-%d")


def test_skill_window_counts_a_forecast_equal_to_the_last_close_as_no_call():
    frame = _outcomes()
    h1 = frame[frame["horizon"] == 1].sort_values("target_date").tail(20).index
    frame.loc[h1[:5], "point"] = frame.loc[h1[:5], "naive"]
    w = rt.skill_window(frame, 20)["model"]
    assert w["call_share"] == pytest.approx(15 / 20)
    assert w["directional_accuracy"] == pytest.approx(w["call_accuracy"] * 15 / 20)


def test_skill_window_splits_coverage_by_the_volatility_known_at_each_origin():
    prices = generate_prices(seed=0, n=73, start="2024-01-02")
    frame = _outcomes()
    w = rt.skill_window(frame, 40, prices=prices)  # every origin has 20 returns before it
    h1 = frame[frame["horizon"] == 1].sort_values("target_date").tail(40)
    logs = np.log(prices["close"].to_numpy())
    position = {d: i for i, d in enumerate(prices.index)}
    vol = [np.mean(np.abs(np.diff(logs[position[d] - 20 : position[d] + 1]))) for d in h1["as_of"]]
    cut = np.quantile(vol, [1 / 3, 2 / 3])
    for k, name in enumerate(("calm", "mid", "wild")):
        inside = [r.lo80 <= r.actual <= r.hi80 for r, v in zip(h1.itertuples(), vol, strict=True)
                  if int(v > cut[0]) + int(v > cut[1]) == k]  # fmt: skip
        assert w["model"][f"coverage80_{name}"] == pytest.approx(sum(inside) / len(inside))


def test_skill_window_ignores_unmatured_rows_and_counts_what_there_is():
    frame = _outcomes(n=8)
    frame.loc[frame.index[-4:], "actual"] = np.nan
    w = rt.skill_window(frame, 20)
    assert w["n"] == 6 and w["sessions"] == 20


def test_skill_window_with_nothing_matured_is_all_nan():
    w = rt.skill_window(pd.DataFrame(), 20)
    assert w["n"] == 0 and w["first_target"] is None
    assert all(math.isnan(v) for v in w["model"].values())
    assert "No forecast has matured yet" in rt.verdict(w)


@pytest.mark.parametrize(("bias", "expected"), [(0.0, "it beats"), (5.0, "does NOT beat")])
def test_verdict_says_whether_the_model_beats_naive(bias, expected):
    frame = _outcomes()
    if bias:
        frame["point"] = frame["naive"] + bias
    else:
        frame["point"] = frame["actual"] * 0.5 + frame["naive"] * 0.5
    assert expected in rt.verdict(rt.skill_window(frame, 20))


def test_coverage_by_horizon_counts_each_horizon():
    frame = _outcomes(n=30, horizon=3)
    rows = rt.coverage_by_horizon(frame)
    assert [r["horizon"] for r in rows] == [1, 2, 3] and all(r["n"] == 30 for r in rows)
    h3 = frame[frame["horizon"] == 3]
    assert rows[2]["coverage95"] == pytest.approx(np.mean((h3["lo95"] <= h3["actual"]) & (h3["actual"] <= h3["hi95"])))
    miss = np.clip(h3["lo95"] - h3["actual"], 0, None) + np.clip(h3["actual"] - h3["hi95"], 0, None)
    assert rows[2]["winkler95"] == pytest.approx(np.mean(h3["hi95"] - h3["lo95"] + 40 * miss))


def test_coverage_rows_carry_the_kupiec_and_christoffersen_tests_with_a_traffic_light():
    from forecaster.evaluation import metrics

    frame = _outcomes(n=30, horizon=3)
    rows = rt.coverage_by_horizon(frame)
    for h, row in zip((1, 2, 3), rows, strict=True):
        rows_h = frame[frame["horizon"] == h].sort_values("as_of").iloc[::h]  # every h-th origin: no overlap
        misses = metrics.interval_misses(rows_h["actual"], rows_h["lo80"], rows_h["hi80"])
        assert row["pof_p80"] == pytest.approx(metrics.kupiec_pof(misses, alpha=0.2)[1])
        cc_p = metrics.christoffersen(misses, alpha=0.2)[3]
        assert row["cc_p80"] == pytest.approx(cc_p)
        assert row["light80"] == metrics.TRAFFIC[int(metrics.traffic_light(cc_p))]


def test_forecast_rows_carry_change_from_last_close():
    frame = pd.DataFrame({"as_of": pd.Timestamp("2024-12-20"), "horizon": [2, 1],
                          "target_date": pd.to_datetime(["2024-12-24", "2024-12-23"]), "naive": 400.0,
                          "point": [404.0, 410.0], "lo80": 390.0, "hi80": 420.0,
                          "lo95": 380.0, "hi95": 430.0})  # fmt: skip
    rows = rt.forecast_rows(frame)
    assert [r["horizon"] for r in rows] == [1, 2]
    assert rows[0]["target_date"] == "2024-12-23" and rows[0]["change_pct"] == pytest.approx(2.5)
    assert rows[1]["naive"] == 400.0


def test_feed_warnings_name_a_missing_bar_and_repeated_bars():
    prices = generate_prices(seed=0, n=30, start="2024-01-02")
    assert rt.feed_warnings(prices, prices.index[-1]) == []
    late = rt.feed_warnings(prices.iloc[:-2], prices.index[-1])
    assert len(late) == 1 and f"newest stored bar is {prices.index[-3]:%Y-%m-%d}" in late[0]
    frozen = prices.copy()
    frozen.iloc[-3:] = frozen.iloc[-3].to_numpy()
    assert any("last 3 bars are identical" in w for w in rt.feed_warnings(frozen, prices.index[-1]))
    assert "delivered nothing" in rt.feed_warnings(prices.iloc[:0], prices.index[-1])[0]


def test_skill_warnings_flag_drift_with_numbers():
    frame = _outcomes()
    frame["point"] = frame["naive"] + 8.0
    warnings = rt.skill_warnings(rt.skill_table(frame), drift_u2=1.10)
    assert len(warnings) == 1 and warnings[0].startswith("drift: over the last 20 sessions")
    assert "threshold 1.10" in warnings[0]
    assert rt.skill_warnings(rt.skill_table(frame.head(10)), drift_u2=1.10) == [], "too few to judge"


def _covering(frame: pd.DataFrame, horizon: int, level: str, hits: int) -> pd.DataFrame:
    """``frame`` with exactly ``hits`` closes of ``horizon`` inside the ``level`` interval (the rest far outside)."""
    rows = frame.index[frame["horizon"] == horizon]
    frame.loc[rows, f"lo{level}"] = frame.loc[rows, "actual"] - 1.0
    frame.loc[rows, f"hi{level}"] = frame.loc[rows, "actual"] + 1.0
    frame.loc[rows[hits:], f"hi{level}"] = frame.loc[rows[hits:], "actual"] - 0.5
    frame.loc[rows[hits:], f"lo{level}"] = frame.loc[rows[hits:], "actual"] - 0.9
    return frame


def test_coverage_of_4_in_12_at_80_percent_is_a_warning_with_n_and_a_binomial_p():
    frame = _outcomes(n=12, horizon=3)
    for h in (1, 2, 3):  # honest 95% everywhere, honest 80% at h=1 and h=2 (10 of 12), 4 of 12 at h=3
        frame = _covering(frame, h, "95", 12)
        frame = _covering(frame, h, "80", 4 if h == 3 else 10)
    rows = rt.coverage_by_horizon(frame)
    assert [(r["hits80"], r["n"]) for r in rows] == [(10, 12), (10, 12), (4, 12)]
    assert rows[2]["pvalue80"] == pytest.approx(stats.binomtest(4, 12, 0.8).pvalue)
    warnings = rt.coverage_warnings(rows)
    assert warnings == [
        "h=3 80% intervals too narrow: they covered 33% (4 of 12 forecasts), binomial p = 0.00058 against 80%"
    ]


def test_coverage_warnings_use_a_bonferroni_threshold_and_flag_too_wide_intervals():
    frame = _outcomes(n=60, horizon=5)
    for h in range(1, 6):  # 40/60 at 80% on h=1 (p 0.015), 48/60 elsewhere; 57/60 at 95% (p 1)
        frame = _covering(_covering(frame, h, "80", 40 if h == 1 else 48), h, "95", 57)
    assert rt.coverage_warnings(rt.coverage_by_horizon(frame)) == [], "p 0.015 is above 0.05 / 10 tests"
    frame = frame[frame["horizon"] == 1]
    assert len(rt.coverage_warnings(rt.coverage_by_horizon(frame))) == 1, "p 0.015 is below 0.05 / 2 tests"
    frame = _covering(frame, 1, "80", 60)  # 60 of 60 inside an 80% interval: p 2e-6
    (warning,) = rt.coverage_warnings(rt.coverage_by_horizon(frame))
    assert warning.startswith("h=1 80% intervals too wide: they covered 100% (60 of 60 forecasts)")
    assert rt.coverage_warnings(rt.coverage_by_horizon(pd.DataFrame())) == []


def test_skill_window_counts_the_forecasts_behind_each_tercile_coverage():
    prices = generate_prices(seed=0, n=73, start="2024-01-02")
    w = rt.skill_window(_outcomes(), 40, prices=prices)
    assert sum(w["tercile_n"]) == 40 and min(w["tercile_n"]) >= 13
    assert rt.skill_window(_outcomes(), 40)["tercile_n"] is None
