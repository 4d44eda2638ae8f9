"""Each metric against a hand loop, plus validation messages and the one scorer, score()."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forecaster.evaluation import metrics

Y = [100.0, 102.0, 101.0, 105.0, 104.0, 108.0]
P = [101.0, 101.5, 103.0, 104.0, 104.5, 106.0]
LAST = [99.0, 100.0, 102.0, 101.0, 105.0, 104.0]


def test_rmse_matches_hand_loop() -> None:
    total = 0.0
    for y, p in zip(Y, P, strict=True):
        total += (y - p) ** 2
    assert metrics.rmse(Y, P) == pytest.approx(math.sqrt(total / len(Y)))


def test_mae_matches_hand_loop() -> None:
    total = 0.0
    for y, p in zip(Y, P, strict=True):
        total += abs(y - p)
    assert metrics.mae(Y, P) == pytest.approx(total / len(Y))


def test_mape_matches_hand_loop_in_percent() -> None:
    total = 0.0
    for y, p in zip(Y, P, strict=True):
        total += abs(y - p) / abs(y)
    assert metrics.mape(Y, P) == pytest.approx(100.0 * total / len(Y))


def test_r2_matches_hand_loop() -> None:
    mean = sum(Y) / len(Y)
    ss_res = ss_tot = 0.0
    for y, p in zip(Y, P, strict=True):
        ss_res += (y - p) ** 2
        ss_tot += (y - mean) ** 2
    assert metrics.r2(Y, P) == pytest.approx(1.0 - ss_res / ss_tot)


def test_naive_scale_matches_hand_loop() -> None:
    train = [10.0, 12.0, 11.0, 15.0]
    total = 0.0
    for i in range(1, len(train)):
        total += abs(train[i] - train[i - 1])
    assert metrics.naive_scale(train) == pytest.approx(total / (len(train) - 1))


def test_mase_with_known_scale() -> None:
    y, p = [10.0, 20.0], [11.0, 17.0]  # MAE = 2
    assert metrics.mase(y, p, scale=4.0) == pytest.approx(0.5)


def test_mase_rejects_non_positive_scale() -> None:
    with pytest.raises(ValueError, match="scale must be a positive finite number, got 0.0"):
        metrics.mase(Y, P, scale=0.0)


def test_theil_u2_matches_hand_loop() -> None:
    num = den = 0.0
    for y, p, n in zip(Y, P, LAST, strict=True):
        num += (y - p) ** 2
        den += (y - n) ** 2
    assert metrics.theil_u2(Y, P, LAST) == pytest.approx(math.sqrt(num / den))


def test_theil_u2_of_naive_against_itself_is_one() -> None:
    assert metrics.theil_u2(Y, LAST, LAST) == 1.0


DIR_Y = [101.0, 99.0, 100.0, 103.0, 97.0, 100.0, 102.0]
DIR_P = [102.0, 101.0, 105.0, 100.0, 99.0, 100.0, 100.0]  # the last two make no call
DIR_LAST = [100.0] * 7  # the third and sixth closes are unchanged


def _hand_hits() -> list[int]:
    hits = []
    for yi, pi, li in zip(DIR_Y, DIR_P, DIR_LAST, strict=True):
        up_up = pi > li and yi > li
        down_down = pi < li and yi < li
        hits.append(int(up_up or down_down))
    return hits


def test_directional_accuracy_matches_hand_loop_counting_no_call_and_no_move_as_misses() -> None:
    hits = _hand_hits()
    assert metrics.directional_accuracy(DIR_Y, DIR_P, DIR_LAST) == pytest.approx(sum(hits) / len(hits))  # 1 of 7


def test_directional_accuracy_counts_flat_prediction_and_unchanged_close_as_misses() -> None:
    assert metrics.directional_accuracy([101.0, 99.0, 100.0], [100.0, 99.5, 101.0], [100.0] * 3) == pytest.approx(1 / 3)


def test_call_share_and_call_accuracy_match_hand_loop() -> None:
    hits, calls = _hand_hits(), [p != last for p, last in zip(DIR_P, DIR_LAST, strict=True)]
    called_hits = [h for h, c in zip(hits, calls, strict=True) if c]
    assert metrics.call_share(DIR_P, DIR_LAST) == pytest.approx(sum(calls) / len(calls))
    assert metrics.call_accuracy(DIR_Y, DIR_P, DIR_LAST) == pytest.approx(sum(called_hits) / len(called_hits))


def test_call_accuracy_is_nan_when_the_model_never_calls() -> None:
    assert math.isnan(metrics.call_accuracy([101.0, 99.0], [100.0, 100.0], [100.0, 100.0]))
    assert metrics.call_share([100.0, 100.0], [100.0, 100.0]) == 0.0


def test_coverage_on_hand_made_case() -> None:
    y = [1.0, 2.0, 3.0, 4.0]
    lo = [0.5, 2.0, 3.5, 0.0]  # inside, on the lower edge, below, inside
    hi = [1.5, 2.5, 4.0, 4.0]  # the last one sits on the upper edge
    assert metrics.coverage(y, lo, hi) == 0.75


def test_interval_width_is_mean_absolute_width() -> None:
    assert metrics.interval_width([1.0, 2.0], [2.0, 5.0]) == 2.0


def test_interval_rejects_crossed_bounds() -> None:
    with pytest.raises(ValueError, match="lo exceeds hi in 1 of 2 intervals"):
        metrics.interval_width([1.0, 3.0], [2.0, 2.5])


def test_metrics_reject_unequal_lengths_naming_them() -> None:
    with pytest.raises(ValueError, match="y_true has 3, y_pred has 2"):
        metrics.rmse([1.0, 2.0, 3.0], [1.0, 2.0])


def test_metrics_reject_empty_input() -> None:
    with pytest.raises(ValueError, match="inputs are empty"):
        metrics.mae([], [])


def test_metrics_reject_non_finite_values() -> None:
    with pytest.raises(ValueError, match="y_pred has 1 non-finite value"):
        metrics.mae([1.0, 2.0], [1.0, np.nan])


def test_winkler_score_matches_hand_loop() -> None:
    y, lo, hi, alpha = [1.0, 2.0, 5.0, 0.0], [0.5, 2.5, 3.0, 1.0], [1.5, 3.0, 4.0, 2.0], 0.2
    total = 0.0
    for yi, li, hi_ in zip(y, lo, hi, strict=True):
        penalty = (li - yi) if yi < li else (yi - hi_) if yi > hi_ else 0.0
        total += (hi_ - li) + 2 / alpha * penalty
    assert metrics.winkler_score(y, lo, hi, alpha=alpha) == pytest.approx(total / len(y))


def test_pinball_loss_matches_hand_loop() -> None:
    y, q, tau = [1.0, 2.0, 5.0], [1.5, 1.0, 5.0], 0.9
    total = 0.0
    for yi, qi in zip(y, q, strict=True):
        total += tau * (yi - qi) if yi >= qi else (1 - tau) * (qi - yi)
    assert metrics.pinball_loss(y, q, tau=tau) == pytest.approx(total / len(y))


def _hand_dm(y: list[float], p: list[float], n: list[float], h: int) -> tuple[float, float]:
    from scipy import stats

    d = [(yi - pi) ** 2 - (yi - ni) ** 2 for yi, pi, ni in zip(y, p, n, strict=True)]
    size = len(d)
    mean = sum(d) / size
    var = 0.0
    for k in range(h):
        gamma = sum((d[t] - mean) * (d[t - k] - mean) for t in range(k, size)) / size
        var += gamma if k == 0 else 2 * gamma
    dm = mean / math.sqrt(var / size)
    stat = dm * math.sqrt((size + 1 - 2 * h + h * (h - 1) / size) / size)
    return stat, 2 * (1 - stats.t.cdf(abs(stat), size - 1))


@pytest.mark.parametrize("h", [1, 3])
def test_diebold_mariano_with_hln_correction_matches_hand_loop(h: int) -> None:
    rng = np.random.default_rng(3)
    y = list(100 + rng.normal(0, 1, 40).cumsum())
    n = [99.0, *y[:-1]]
    p = [ni + 0.3 * (yi - ni) + rng.normal(0, 0.2) for yi, ni in zip(y, n, strict=True)]
    stat, pvalue = metrics.diebold_mariano(y, p, n, horizon=h)
    hand_stat, hand_p = _hand_dm(y, p, n, h)
    assert stat == pytest.approx(hand_stat) and pvalue == pytest.approx(hand_p)
    assert stat < 0, "a model that moves towards the actual beats naive: negative statistic"


def test_diebold_mariano_of_naive_against_itself_is_nan() -> None:
    assert all(math.isnan(v) for v in metrics.diebold_mariano(Y, LAST, LAST))


def test_trailing_volatility_matches_hand_loop() -> None:
    close = pd.Series([100.0, 102.0, 99.0, 101.0, 104.0], index=pd.bdate_range("2024-01-01", periods=5))
    vol = metrics.trailing_volatility(close, window=3)
    logs = [math.log(c) for c in close]
    for i in range(3, 5):
        expected = sum(abs(logs[j] - logs[j - 1]) for j in range(i - 2, i + 1)) / 3
        assert vol.iloc[i] == pytest.approx(expected)
    assert vol.iloc[:3].isna().all()


def test_coverage_by_tercile_matches_hand_loop() -> None:
    vol = [0.1, 0.9, 0.5, 0.2, 0.8, 0.4]  # calm: 0.1, 0.2; mid: 0.4, 0.5; wild: 0.8, 0.9
    y = [1.0, 1.0, 1.0, 5.0, 1.0, 1.0]
    lo, hi = [0.0] * 6, [2.0] * 6
    low, high = np.quantile(vol, [1 / 3, 2 / 3])
    expected = []
    for tercile in range(3):
        inside = [lo[i] <= y[i] <= hi[i] for i in range(6) if int(vol[i] > low) + int(vol[i] > high) == tercile]
        expected.append(sum(inside) / len(inside))
    assert metrics.coverage_by_tercile(y, lo, hi, vol) == pytest.approx(expected)
    assert expected == [0.5, 1.0, 1.0]


def _eval_frame() -> pd.DataFrame:
    y, p, last = np.array(Y), np.array(P), np.array(LAST)
    return pd.DataFrame(
        {
            "horizon": 1,
            "actual": y,
            "point": p,
            "naive": last,
            "lo80": p - 1.0,
            "hi80": p + 1.0,
            "lo95": p - 3.0,
            "hi95": p + 3.0,
        }
    )


def test_score_composes_the_metrics() -> None:
    frame = _eval_frame()
    out = metrics.score(frame, scale=2.0)
    assert list(out) == [*metrics.DEFAULT, "n"]
    assert out["rmse"] == metrics.rmse(Y, P)
    assert out["mase"] == pytest.approx(metrics.mae(Y, P) / 2.0)
    assert out["u2"] == metrics.theil_u2(Y, P, LAST)
    assert out["naive_rmse"] == metrics.rmse(Y, LAST)
    assert out["directional_accuracy"] == metrics.directional_accuracy(Y, P, LAST)
    assert out["coverage80"] == metrics.coverage(Y, frame["lo80"], frame["hi80"])
    assert out["coverage95"] == 1.0
    assert out["winkler80"] == metrics.winkler_score(Y, frame["lo80"], frame["hi80"], alpha=0.2)
    taus = {"lo95": 0.025, "lo80": 0.1, "hi80": 0.9, "hi95": 0.975}
    assert out["pinball"] == pytest.approx(np.mean([metrics.pinball_loss(Y, frame[c], tau=t) for c, t in taus.items()]))
    assert (out["dm_stat"], out["dm_pvalue"]) == metrics.diebold_mariano(Y, P, LAST, horizon=1)
    assert (out["width80"], out["width95"], out["n"]) == (2.0, 6.0, 6)
    assert math.isnan(out["coverage80_calm"]), "no volatility column: no tercile coverage"


def test_score_is_nan_where_a_metric_cannot_be_computed() -> None:
    frame = _eval_frame().assign(point=LAST)  # the naive forecast itself
    out = metrics.score(frame.assign(actual=LAST), metrics=("u2", "mase", "dm_stat", "call_accuracy"))
    assert all(math.isnan(out[k]) for k in ("u2", "mase", "dm_stat", "call_accuracy")) and out["n"] == 6
    empty = metrics.score(frame.iloc[:0], metrics=metrics.LIVE)
    assert empty["n"] == 0 and all(math.isnan(empty[k]) for k in metrics.LIVE)


def test_score_skips_rows_without_an_interval() -> None:
    frame = _eval_frame()
    frame.loc[0, ["lo80", "hi80"]] = np.nan
    out = metrics.score(frame, metrics=("coverage80",))
    assert out["coverage80"] == metrics.coverage(Y[1:], frame["lo80"][1:], frame["hi80"][1:])


def test_score_terciles_use_the_volatility_known_at_as_of() -> None:
    close = pd.Series(100 * np.exp(np.random.default_rng(1).normal(0, 0.02, 60).cumsum()),
                      index=pd.bdate_range("2024-01-01", periods=60))  # fmt: skip
    frame = _eval_frame().assign(as_of=close.index[30:36])
    scored = metrics.with_volatility(frame, close)
    expected = metrics.trailing_volatility(close).iloc[30:36].to_numpy()
    assert np.allclose(scored["volatility"], expected)
    out = metrics.score(scored, metrics=("coverage80_calm", "coverage80_mid", "coverage80_wild"))
    by_hand = metrics.coverage_by_tercile(Y, frame["lo80"], frame["hi80"], expected)
    assert [out[f"coverage80_{t}"] for t in metrics.TERCILES] == pytest.approx(by_hand)


def test_rolling_score_matches_score_on_each_window() -> None:
    frame = _eval_frame()
    rolled = metrics.rolling_score(frame, window=4)
    assert list(rolled.index) == [3, 4, 5]
    for end in (3, 4, 5):
        window = frame.iloc[end - 3 : end + 1]
        assert rolled.loc[end, "u2"] == metrics.theil_u2(window["actual"], window["point"], window["naive"])


@pytest.mark.parametrize("order", ["as_of", "shuffled", "object-column"])
def test_rolling_score_equals_score_of_each_window_with_gaps_and_in_any_order(order: str) -> None:
    """The fast path (NumPy slices, rows in as_of order) and score's own path give score's numbers exactly: an
    unmatured row is skipped, a row without a point or an interval counts only where its columns are known."""
    rng = np.random.default_rng(3)
    n, names = 40, ("rmse", "naive_rmse", "u2", "mae", "coverage80", "width95", "winkler80", "directional_accuracy")
    actual = 100 + rng.normal(0, 2, n).cumsum()
    frame = pd.DataFrame({"as_of": pd.bdate_range("2024-01-02", periods=n), "horizon": 1, "actual": actual,
                          "point": actual + rng.normal(0, 1, n), "naive": actual + rng.normal(0, 1.2, n)})  # fmt: skip
    frame = frame.assign(lo80=frame["point"] - 1.5, hi80=frame["point"] + 1.5, lo95=frame["point"] - 3.0,
                         hi95=frame["point"] + 3.0)  # fmt: skip
    frame.loc[7, "actual"] = np.nan  # not matured: outside every window
    frame.loc[12, "point"] = np.nan  # no point: left out of the point metrics, yet counted in n
    frame.loc[20, ["lo80", "hi80"]] = np.nan  # no 80% band: left out of that coverage only
    if order == "shuffled":
        frame = frame.sample(frac=1.0, random_state=0)
    if order == "object-column":  # as a frame built from records may hold it: pd.NA in an object column
        frame["point"] = frame["point"].astype(object).where(frame["point"].notna(), pd.NA)
    rolled = metrics.rolling_score(frame, window=10, metrics=names)
    matured = frame.loc[frame["actual"].notna()]
    expected = [metrics.score(matured.iloc[end - 10 : end], metrics=names) for end in range(10, len(matured) + 1)]
    assert len(rolled) == len(expected) == len(matured) - 9
    assert rolled.to_dict("records") == expected


def test_rolling_score_refuses_what_score_refuses() -> None:
    frame = _eval_frame()
    with pytest.raises(ValueError, match=r"score takes one horizon, frame has \[1, 2\]"):
        metrics.rolling_score(frame.assign(horizon=[1, 1, 1, 2, 2, 2]), window=2)
    with pytest.raises(ValueError, match=r"score needs column\(s\) \['point'\]"):
        metrics.rolling_score(frame.drop(columns="point"), window=2, metrics=("naive_rmse",))
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['bogus'\]"):
        metrics.rolling_score(frame, window=2, metrics=("rmse", "bogus"))


def test_score_drops_unmatured_rows() -> None:
    frame = _eval_frame()
    frame.loc[5, "actual"] = np.nan
    assert metrics.score(frame, scale=1.0)["n"] == 5


def test_score_names_missing_columns_and_unknown_metrics() -> None:
    with pytest.raises(ValueError, match=r"score needs column\(s\) \['naive'\]; frame has \['horizon', 'actual'"):
        metrics.score(_eval_frame().drop(columns="naive"))
    with pytest.raises(ValueError, match=r"unknown metric\(s\) \['bogus'\]; known: rmse, mae"):
        metrics.score(_eval_frame(), metrics=("rmse", "bogus"))


def test_score_rejects_several_horizons() -> None:
    frame = _eval_frame().assign(horizon=[1, 1, 1, 2, 2, 2])
    with pytest.raises(ValueError, match=r"one horizon, frame has \[1, 2\]"):
        metrics.score(frame, scale=1.0)
    assert set(metrics.score_by_horizon(frame, metrics=("rmse",))) == {1, 2}


# -- coverage backtests -------------------------------------------------------------------------------------
CLUSTERED = [0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0, 0, 0]  # n00 = 7, n01 = 2, n10 = 2, n11 = 3; 5 misses in 15


def _chi2_sf(lr: float, dof: int) -> float:
    """The chi-square survival function by hand: erfc(sqrt(x/2)) for 1 dof, exp(-x/2) for 2."""
    return math.erfc(math.sqrt(lr / 2.0)) if dof == 1 else math.exp(-lr / 2.0)


def test_interval_misses_flags_actuals_outside_the_band() -> None:
    assert metrics.interval_misses([1.0, 5.0, 9.0, 3.0], [2.0, 2.0, 2.0, 3.0], [8.0, 8.0, 8.0, 4.0]).tolist() == [
        1, 0, 1, 0,
    ]  # fmt: skip


def test_kupiec_pof_matches_hand_computation() -> None:
    lr_hand = -2.0 * ((10 * math.log(0.8) + 5 * math.log(0.2)) - (10 * math.log(2 / 3) + 5 * math.log(1 / 3)))
    lr, p = metrics.kupiec_pof(CLUSTERED, alpha=0.2)
    assert lr == pytest.approx(lr_hand) and p == pytest.approx(_chi2_sf(lr_hand, 1))


def test_kupiec_pof_of_no_miss_and_of_the_nominal_rate() -> None:
    lr, p = metrics.kupiec_pof([0] * 20, alpha=0.05)
    assert lr == pytest.approx(-2.0 * 20 * math.log(0.95)) and p < 1.0
    assert metrics.kupiec_pof([1, 0, 0, 0, 0] * 4, alpha=0.2) == pytest.approx((0.0, 1.0))


def test_christoffersen_matches_hand_computation() -> None:
    pi, pi01, pi11 = 5 / 14, 2 / 9, 3 / 5
    restricted = 9 * math.log(1 - pi) + 5 * math.log(pi)
    unrestricted = 7 * math.log(1 - pi01) + 2 * math.log(pi01) + 2 * math.log(1 - pi11) + 3 * math.log(pi11)
    lr_ind = -2.0 * (restricted - unrestricted)
    lr_cc = lr_ind + metrics.kupiec_pof(CLUSTERED, alpha=0.2)[0]
    out = metrics.christoffersen(CLUSTERED, alpha=0.2)
    assert out == pytest.approx((lr_ind, _chi2_sf(lr_ind, 1), lr_cc, _chi2_sf(lr_cc, 2)))
    assert lr_ind > 1.9, "a miss after a miss (3 in 5) is likelier than after a hit (2 in 9)"


def test_christoffersen_counts_a_sequence_that_never_repeats_a_miss() -> None:
    lr_ind, _, _, _ = metrics.christoffersen([0, 0, 0, 0, 1] * 6, alpha=0.2)  # n00 18, n01 6, n10 5, n11 0
    assert lr_ind == pytest.approx(-2.0 * (6 * math.log(6 / 29) + 23 * math.log(23 / 29)
                                           - 6 * math.log(6 / 24) - 18 * math.log(18 / 24)))  # fmt: skip
    assert math.isnan(metrics.christoffersen([1], alpha=0.2)[0])


@pytest.mark.parametrize(("p", "light"), [(0.5, 0.0), (0.05, 0.0), (0.049, 1.0), (0.01, 1.0), (0.0099, 2.0)])
def test_traffic_light_cuts_the_conditional_coverage_p_value(p: float, light: float) -> None:
    assert metrics.traffic_light(p) == light


def test_score_runs_the_coverage_backtests_on_every_h_th_origin_at_horizon_h() -> None:
    n = len(CLUSTERED)
    frame = pd.DataFrame({
        "as_of": pd.bdate_range("2024-01-02", periods=n), "horizon": 3, "actual": 100.0, "point": 100.0,
        "naive": 100.0, "lo80": np.where(CLUSTERED, 101.0, 99.0), "hi80": 102.0, "lo95": 90.0, "hi95": 110.0,
    }).iloc[::-1]  # fmt: skip
    out = metrics.score(frame, metrics=("pof_lr80", "pof_p80", "ind_p80", "cc_lr80", "cc_p80", "traffic80", "pof_p95"))
    every_third = CLUSTERED[::3]
    assert (out["pof_lr80"], out["pof_p80"]) == pytest.approx(metrics.kupiec_pof(every_third, alpha=0.2))
    _, ind_p, cc_lr, cc_p = metrics.christoffersen(every_third, alpha=0.2)
    assert (out["ind_p80"], out["cc_lr80"], out["cc_p80"]) == pytest.approx((ind_p, cc_lr, cc_p))
    assert out["traffic80"] == metrics.traffic_light(cc_p)
    assert out["pof_p95"] == pytest.approx(metrics.kupiec_pof([0] * 5, alpha=0.05)[1])
