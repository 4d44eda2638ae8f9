"""The quantile (pinball) head: monotone quantiles, the pinball loss, CQR scores and the forecaster with the head."""

import numpy as np
import pytest

from forecaster.models.conformal import QUANTILE_LEVELS, conformal_quantiles, cqr_quantiles, cqr_scores
from forecaster.models.lstm import LSTMForecaster
from forecaster.models.networks import PINBALL_WEIGHT, monotone_quantiles, pinball, quantile_head_loss


def test_quantiles_never_cross_whatever_the_raw_outputs():
    raw = np.random.default_rng(0).normal(scale=20.0, size=(64, 3 * len(QUANTILE_LEVELS))).astype("float32")
    q = np.asarray(monotone_quantiles(raw, 3))
    assert q.shape == (64, 3, 4)
    assert (np.diff(q, axis=-1) >= 0).all()
    np.testing.assert_allclose(q[..., 0], raw.reshape(64, 3, 4)[..., 0])  # the first output is the lowest quantile
    step = np.log1p(np.exp(raw.reshape(64, 3, 4)[0, 0, 1]))  # softplus
    np.testing.assert_allclose(q[0, 0, 1] - q[0, 0, 0], step, rtol=1e-5)


def test_pinball_loss_on_a_hand_computed_case():
    # y = 1 against quantiles 0, 0.5, 1.5, 2 at tau 0.025, 0.1, 0.9, 0.975:
    # 0.025 * 1, 0.1 * 0.5, (1 - 0.9) * 0.5, (1 - 0.975) * 1 -> mean 0.15 / 4
    y = np.array([1.0], dtype="float32")
    q = np.array([[0.0, 0.5, 1.5, 2.0]], dtype="float32")
    assert float(pinball(y, q)) == pytest.approx(0.0375)
    # the head's loss: point MSE plus the weighted pinball of the monotone quantiles (raw 0, log(e^0.5 - 1), ...)
    inv_softplus = np.log(np.expm1(np.array([0.5, 1.0, 0.5])))
    y_true = np.array([[0.3, 1.0]], dtype="float32")
    y_pred = np.array([[0.1, 0.0, *inv_softplus]], dtype="float32")
    expected = 0.2**2 + PINBALL_WEIGHT * 0.0375
    assert float(quantile_head_loss(y_true, y_pred)) == pytest.approx(expected, rel=1e-5)


def test_cqr_scores_are_signed_distances_outside_the_band():
    q = np.array([[[-2.0, -1.0, 1.0, 2.0]], [[-2.0, -1.0, 1.0, 2.0]], [[-2.0, -1.0, 1.0, 2.0]]])  # (3, H=1, 4)
    z = np.array([[0.0], [1.5], [-3.0]])
    scores = cqr_scores(z, q)
    # 80% band [-1, 1]: inside by 1, outside by 0.5, outside by 2; 95% band [-2, 2]: -2, -0.5, 1
    np.testing.assert_allclose(scores, [[-1.0, -2.0], [0.5, -0.5], [2.0, 1.0]])


def test_cqr_quantiles_keep_the_sign_so_a_band_can_shrink():
    scores = np.column_stack([-np.arange(1.0, 21.0) / 10, -np.arange(1.0, 21.0) / 100])  # every z deep inside
    widen = cqr_quantiles(scores)
    # rank ceil(21 * 0.8) = 17 of the sorted -2.0..-0.1 is -0.4; rank ceil(21 * 0.95) = 20 is -0.01
    assert widen[0.80] == pytest.approx([-0.4]) and widen[0.95] == pytest.approx([-0.01])
    assert conformal_quantiles(scores[:, :1], (0.8,))[0.8] == pytest.approx([1.7])  # unsigned: |score| as before


@pytest.fixture(scope="module")
def quantile_model(long_prices, tiny_preset):
    preset = tiny_preset.replace(interval="quantile", quantile_norm="range", scale_blend=0.0)
    return LSTMForecaster(preset, horizon=3).fit(long_prices.iloc[:600])


def test_the_quantile_head_gives_nested_bands_around_the_point(quantile_model):
    frame = quantile_model.predict()
    assert quantile_model.model_.output_shape == (None, 3 * 5)
    assert quantile_model.residuals_.shape[1] == 2 * 3  # the 80% scores of h = 1..3, then the 95% ones
    assert (frame["lo95"] <= frame["lo80"]).all() and (frame["lo80"] <= frame["point"]).all()
    assert (frame["point"] <= frame["hi80"]).all() and (frame["hi80"] <= frame["hi95"]).all()
    assert frame["lo80"].is_monotonic_decreasing and frame["hi80"].is_monotonic_increasing


def test_cqr_scores_of_matured_targets_are_out_of_sample_and_use_the_band(quantile_model, long_prices):
    model = quantile_model.frozen_copy()
    before = model.residuals_.copy()
    data = model._data(long_prices.iloc[:601], extra=1 + model.horizon)
    h = np.arange(1, 4)
    origins = data.n_origins - 1 - h  # the forecasts of the new target from the origins 1..3 sessions before it
    scaled = model._predict_scaled(data.x_windows(model.x_scaler_, 0)[origins])
    qz, norm = model._quantiles(long_prices.iloc[:601], data, origins, scaled)
    z = np.log(data.close[-1] / data.close[data.origin_index(0) + origins]) / norm[h - 1, h - 1]
    expected = cqr_scores(z[None, :], qz[h - 1, h - 1][None])
    model.update(long_prices.iloc[:601], finetune=False)
    np.testing.assert_allclose(model.residuals_[-1], expected[0])
    np.testing.assert_array_equal(model.residuals_[:-1], before[-(len(model.residuals_) - 1) :])


def test_a_saved_quantile_model_loads_back_and_forecasts_identically(quantile_model, tmp_path):
    quantile_model.save(tmp_path / "bundle")
    again = LSTMForecaster.load(tmp_path / "bundle")
    assert again.preset_.interval == "quantile"
    np.testing.assert_allclose(again.predict()[["lo80", "hi95"]], quantile_model.predict()[["lo80", "hi95"]])
