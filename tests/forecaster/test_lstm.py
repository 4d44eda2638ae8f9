"""LSTMForecaster: forecast frame, intervals, no leakage, warm-start updates and the artefact bundle."""

import numpy as np
import pandas as pd
import pytest

from forecaster.errors import NotEnoughDataError, NotFittedError
from forecaster.models.base import FORECAST_COLUMNS, Forecaster
from forecaster.models.lstm import LSTMForecaster
from forecaster.models.networks import ArtifactError


@pytest.fixture(scope="module")
def fitted(long_prices, tiny_preset):
    return LSTMForecaster(tiny_preset, horizon=3).fit(long_prices.iloc[:600])


def test_predict_returns_h_rows_with_nested_intervals(fitted, long_prices):
    frame = fitted.predict()
    assert isinstance(fitted, Forecaster)
    assert list(frame.columns) == list(FORECAST_COLUMNS)
    assert frame["horizon"].tolist() == [1, 2, 3]
    assert (frame["as_of"] == long_prices.index[599]).all()
    assert frame["naive"].iloc[0] == pytest.approx(long_prices["close"].iloc[599])
    assert (frame["lo95"] <= frame["lo80"]).all() and (frame["lo80"] <= frame["point"]).all()
    assert (frame["point"] <= frame["hi80"]).all() and (frame["hi80"] <= frame["hi95"]).all()
    assert frame["target_date"].iloc[0] == long_prices.index[600]


def test_predict_before_fit_says_so(tiny_preset):
    with pytest.raises(NotFittedError, match="not fitted: call fit"):
        LSTMForecaster(tiny_preset).predict()


def test_scalers_are_fitted_on_training_rows_only(long_prices, tiny_preset):
    """Changing rows after the training cut-off must not move the scalers (it would if fitted on everything)."""
    history = long_prices.iloc[:400]
    model = LSTMForecaster(tiny_preset.replace(epochs=1), horizon=3).fit(history)
    n_val = int(model.validation_["n"])
    altered = history.copy()
    altered.iloc[-n_val:, :4] *= 5.0  # the validation slice and the gap only
    again = LSTMForecaster(tiny_preset.replace(epochs=1), horizon=3).fit(altered)
    np.testing.assert_allclose(model.x_scaler_.mean_, again.x_scaler_.mean_)
    np.testing.assert_allclose(model.y_scaler_.mean_, again.y_scaler_.mean_)
    whole = LSTMForecaster(tiny_preset.replace(epochs=1, val_fraction=0.0001), horizon=3).fit(altered)
    assert not np.allclose(whole.x_scaler_.mean_, again.x_scaler_.mean_)


def test_same_seed_gives_identical_forecasts(long_prices, tiny_preset):
    a = LSTMForecaster(tiny_preset, horizon=2).fit(long_prices.iloc[:500]).predict()
    b = LSTMForecaster(tiny_preset, horizon=2).fit(long_prices.iloc[:500]).predict()
    pd.testing.assert_frame_equal(a, b)


def test_update_scores_matured_targets_then_moves_the_origin(long_prices, tiny_preset):
    model = LSTMForecaster(tiny_preset, horizon=3).fit(long_prices.iloc[:600])
    before = model.residuals_.copy()
    model.update(long_prices.iloc[:602])
    assert model.origin_ == long_prices.index[601]
    assert model.kind_ == "finetune"
    assert len(model.residuals_) == min(len(before) + 2, tiny_preset.calibration_size)
    assert not np.array_equal(model.residuals_[-1], before[-1])
    assert model.predict()["as_of"].iloc[0] == long_prices.index[601]


def test_update_without_new_rows_changes_nothing(fitted, long_prices):
    before = fitted.predict()
    fitted.update(long_prices.iloc[:600])
    pd.testing.assert_frame_equal(before, fitted.predict())


def test_saved_bundle_loads_back_and_predicts_identically(fitted, tmp_path):
    sha = fitted.save(tmp_path / "v1")
    loaded = LSTMForecaster.load(tmp_path / "v1", expected_sha256=sha)
    pd.testing.assert_frame_equal(fitted.predict(), loaded.predict())
    assert loaded.metadata()["preset"] == fitted.metadata()["preset"]
    assert not list(tmp_path.glob(".v1.*")), "no temporary folder is left behind"


def test_corrupt_or_missing_bundle_raises_artifact_error(fitted, tmp_path):
    sha = fitted.save(tmp_path / "v1")
    (tmp_path / "v1" / "state.joblib").write_bytes(b"garbage")
    with pytest.raises(ArtifactError, match="corrupt: sha256"):
        LSTMForecaster.load(tmp_path / "v1", expected_sha256=sha)
    with pytest.raises(ArtifactError, match="could not be read"):
        LSTMForecaster.load(tmp_path / "v1")
    with pytest.raises(ArtifactError, match="missing model.keras"):
        LSTMForecaster.load(tmp_path / "nowhere")


def test_bundles_are_immutable(fitted, tmp_path):
    fitted.save(tmp_path / "v1")
    with pytest.raises(ArtifactError, match="already exists"):
        fitted.save(tmp_path / "v1")


def test_too_short_history_names_the_numbers(long_prices, tiny_preset):
    with pytest.raises(NotEnoughDataError, match="rows"):
        LSTMForecaster(tiny_preset, horizon=3).fit(long_prices.iloc[:40])


def test_forecasts_use_model_predict_numbers(fitted, long_prices):
    data = fitted._data(long_prices.iloc[:600], extra=60)
    x = data.x_windows(fitted.x_scaler_, 0)
    np.testing.assert_allclose(fitted._predict_scaled(x), fitted.model_.predict(x, verbose=0), rtol=1e-6, atol=1e-7)


def test_a_loaded_bundle_finetunes_exactly_like_the_model_that_was_saved(long_prices, tiny_preset, tmp_path):
    """The daily job fine-tunes yesterday's bundle: weights, optimizer state and sample order must all carry over."""
    original = LSTMForecaster(tiny_preset, horizon=3).fit(long_prices.iloc[:600])
    original.save(tmp_path / "v1")
    loaded = LSTMForecaster.load(tmp_path / "v1")
    for model in (original, loaded):
        model.update(long_prices.iloc[:603])
    pd.testing.assert_frame_equal(original.predict(), loaded.predict(), check_exact=True)
    for a, b in zip(original.model_.get_weights(), loaded.model_.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_update_without_finetune_moves_the_origin_and_keeps_the_weights(long_prices, tiny_preset):
    model = LSTMForecaster(tiny_preset, horizon=3).fit(long_prices.iloc[:600])
    weights = model.model_.get_weights()
    model.update(long_prices.iloc[:602], finetune=False)
    assert model.origin_ == long_prices.index[601] and model.kind_ == "full"
    for a, b in zip(weights, model.model_.get_weights(), strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_frozen_copy_keeps_forecasting_as_the_model_did_before_it_was_trained(long_prices, tiny_preset):
    model = LSTMForecaster(tiny_preset, horizon=3).fit(long_prices.iloc[:600])
    copy = model.frozen_copy()
    rolled = LSTMForecaster(tiny_preset, horizon=3).fit(long_prices.iloc[:600]).update(long_prices.iloc[:603],
                                                                                       finetune=False)  # fmt: skip
    model.update(long_prices.iloc[:603], finetune=True)
    copy.update(long_prices.iloc[:603], finetune=False)
    pd.testing.assert_frame_equal(copy.predict(), rolled.predict(), check_exact=True)
    # the point may stay at naive (shrinkage without significant skill is 0); the weights, so the intervals, move
    assert any(not np.array_equal(a, b) for a, b in zip(model.model_.get_weights(), copy.model_.get_weights(),
                                                        strict=True)), "fine-tuning the original moved it"  # fmt: skip
    assert not model.predict()[["lo80", "hi80"]].equals(copy.predict()[["lo80", "hi80"]])


def test_a_fine_tune_ends_its_training_where_its_data_ends_like_a_full_fit(long_prices, tiny_preset):
    """One definition of train_end_: the last session learned from, so a child never ends before its parent."""
    model = LSTMForecaster(tiny_preset, horizon=3).fit(long_prices.iloc[:600])
    assert model.train_end_ == long_prices.index[599]
    model.update(long_prices.iloc[:602])
    assert model.kind_ == "finetune" and model.train_end_ == long_prices.index[601] == model.seen_until_


def test_the_range_scale_target_and_the_range_ewma_blend(long_prices, tiny_preset):
    from forecaster.models.baselines import one_day_volatility
    from forecaster.models.lstm import SCALE_EPS

    history = long_prices.iloc[:400]
    preset = tiny_preset.replace(interval="head", quantile_norm="plain", scale_target="range", epochs=1)
    model = LSTMForecaster(preset, horizon=3).fit(history)
    data = model._data(history, extra=50)
    rows = slice(data.origin_index(0), data.origin_index(9) + 1)
    expected = np.log(data.future_range_volatility(3)[rows] + SCALE_EPS)
    np.testing.assert_allclose(model._raw_targets(data, 0, 10, history)[:, 3:], expected)
    model.preset_ = preset.replace(scale_blend=1.0)  # all weight on the range EWMA: its scale times sqrt(h)
    last = np.array([data.n_origins - 1])
    scaled = model._predict_scaled(data.x_windows(model.x_scaler_, int(last[0])))
    vol = one_day_volatility(history, "gk_gap")[-1]
    np.testing.assert_allclose(model._scales(history, data, last, scaled)[0], vol * np.sqrt([1, 2, 3]), rtol=1e-6)
