"""Each metric against a hand loop, plus validation messages and evaluate()."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forecaster import metrics

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


def test_directional_accuracy_matches_hand_loop() -> None:
    y = [101.0, 99.0, 100.0, 103.0, 97.0]
    p = [102.0, 101.0, 105.0, 100.0, 99.0]
    last = [100.0] * 5
    hits = cases = 0
    for yi, pi, li in zip(y, p, last, strict=True):
        if yi == li:
            continue
        cases += 1
        hits += (pi > li) == (yi > li)
    assert metrics.directional_accuracy(y, p, last) == pytest.approx(hits / cases)  # 2 of 4; the flat case excluded


def test_directional_accuracy_counts_flat_prediction_as_miss() -> None:
    assert metrics.directional_accuracy([101.0, 99.0], [100.0, 99.5], [100.0, 100.0]) == 0.5


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


def test_evaluate_composes_the_metrics() -> None:
    frame = _eval_frame()
    out = metrics.evaluate(frame, scale=2.0)
    assert set(out) == {
        "rmse",
        "mae",
        "mape",
        "r2",
        "mase",
        "u2",
        "directional_accuracy",
        "coverage80",
        "coverage95",
        "width80",
        "width95",
        "n",
    }
    assert out["rmse"] == metrics.rmse(Y, P)
    assert out["mase"] == pytest.approx(metrics.mae(Y, P) / 2.0)
    assert out["u2"] == metrics.theil_u2(Y, P, LAST)
    assert out["coverage80"] == metrics.coverage(Y, frame["lo80"], frame["hi80"])
    assert out["coverage95"] == 1.0
    assert (out["width80"], out["width95"], out["n"]) == (2.0, 6.0, 6.0)


def test_evaluate_drops_unmatured_rows() -> None:
    frame = _eval_frame()
    frame.loc[5, "actual"] = np.nan
    assert metrics.evaluate(frame, scale=1.0)["n"] == 5.0


def test_evaluate_names_missing_columns() -> None:
    with pytest.raises(ValueError, match=r"evaluate needs column\(s\) \['hi95'\]"):
        metrics.evaluate(_eval_frame().drop(columns="hi95"), scale=1.0)


def test_evaluate_rejects_several_horizons() -> None:
    frame = _eval_frame().assign(horizon=[1, 1, 1, 2, 2, 2])
    with pytest.raises(ValueError, match=r"one horizon, frame has \[1, 2\]"):
        metrics.evaluate(frame, scale=1.0)
