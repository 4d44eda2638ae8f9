"""The LSTM forecaster: an sklearn-style estimator implementing :class:`forecaster.models.base.Forecaster`.

* ``fit`` trains from scratch on the last ``train_window`` sessions. Samples are split chronologically into
  train | gap of H | validation | gap of H | calibration. Scalers are fitted on the training rows only. The
  validation slice drives early stopping and the shrinkage toward naive; the calibration slice, which neither
  training, early stopping nor the shrinkage has seen, seeds the conformal scores and the out-of-sample track
  record (``track_``) that the promotion gate reads.
* ``update`` moves the origin forward. It first scores the current model on the targets that have just
  matured (truly out-of-sample: scores and track record), then optionally fine-tunes on the most recent
  samples with a lower learning rate.
* ``predict`` returns H forecasts with volatility-aware conformal 80%/95% intervals in price space
  (``preset.interval``: plain, EWMA or the network's own scale head; ``preset.aci_gamma`` adds ACI), or, with
  ``interval="quantile"``, the quantile head's bands conformalised per horizon (CQR, see
  :mod:`forecaster.models.conformal`): it forecasts the quantiles of the h-day log return divided by 1 or by the
  range EWMA's scale (``preset.quantile_norm``), optionally blended toward a normal prior (``preset.scale_blend``).

**Never worse than naive by design.** With ``preset.shrink`` the predicted log returns are multiplied by a
per-horizon factor in [0, 1] fitted on the validation slice, and the factor is set to 0 (the forecast is the last
close) unless the shrunk forecast beats naive there with a one-sided Diebold-Mariano statistic (squared log
errors, :func:`forecaster.evaluation.metrics.diebold_mariano`: lags up to h - 1, HLN-corrected) beyond 1.645, i.e.
significant at 5%.

**``train_end_``** is the last session of the prices that a full fit or a fine-tune learned from: the date of its
newest labelled target (for a full fit, the end of its span, whose last targets are in the calibration slice).
Both kinds use this one definition, so a fine-tune never shows an earlier ``train_end_`` than its parent.
"""

from __future__ import annotations

import copy
import logging
import statistics
import threading
from pathlib import Path
from typing import Any, NamedTuple, Self

import numpy as np
import pandas as pd

from forecaster.errors import ConfigError, NotEnoughDataError, NotFittedError
from forecaster.evaluation import metrics
from forecaster.models import networks, training
from forecaster.models.baselines import LONG_RUN, range_term_structure
from forecaster.models.conformal import (
    BAND_QUANTILES,
    EWMA_SPAN,
    INTERVALS,
    LEVELS,
    MIN_RESIDUALS,
    QUANTILE_LEVELS,
    SIGMA_FLOOR,
    aci_levels,
    conformal_quantiles,
    cqr_quantiles,
    cqr_scores,
    ewma_volatility,
    forecast_frame,
    horizon_scale,
)
from forecaster.models.features import WindowedData, make_scaler, warmup_rows
from forecaster.models.presets import Preset, get_preset

logger = logging.getLogger("forecaster.models.lstm")
# Keras seeds and trains through process-global state: one training at a time keeps runs reproducible.
_TRAINING = threading.RLock()
SKILL_Z = 1.645  # one-sided 5%: the shrinkage stays above 0 only on significant validation skill over naive
SCALE_EPS = 1e-3  # the scale head learns log(|h-day log return| + SCALE_EPS)
QUANTILE_NORMS = ("plain", "range")  # what the quantile head's h-day log returns are divided by
TRACK_COLUMNS = ("point", "naive", "actual", "seen_until")


class TrainingSet(NamedTuple):
    """What a full fit trains on: scaled windows ``x`` and targets ``y`` of every labelled sample, of which the
    first ``n_train`` train, ``val`` validate (after a gap of H) and ``cal`` calibrate (after another gap of H)."""

    data: WindowedData
    span: pd.DataFrame
    x: np.ndarray
    y: np.ndarray
    n_train: int
    val: slice
    cal: slice


class LSTMForecaster:
    """Multi-horizon LSTM with conformal intervals.

    Args:
        preset: a :class:`Preset` or its name.
        horizon: number of trading days forecast (H).
    """

    name = "lstm"

    def __init__(self, preset: Preset | str = "default", horizon: int = 5):
        self.preset = preset
        self.horizon = horizon

    # -- public API -------------------------------------------------------------------------------------
    def fit(self, prices: pd.DataFrame) -> Self:
        """Train from scratch on ``prices`` (the last ``train_window`` rows); the origin is its last row."""
        with _TRAINING:
            return self._fit(prices)

    def _fit(self, prices: pd.DataFrame) -> Self:
        p = self.preset_ = get_preset(self.preset) if isinstance(self.preset, str) else self.preset
        data, span, x, y, n_train, val, cal = self._prepare(prices)
        self.model_ = networks.build_model(p, data.x_raw.shape[1], self.horizon)
        logger.info(
            "full fit of %s: %d train / %d validation samples, %s..%s",
            p.name, n_train, val.stop - val.start, span.index[0].date(), span.index[-1].date(),
        )  # fmt: skip
        self.history_ = self.fit_history_ = training.fit(
            self.model_, x[:n_train], y[:n_train], (x[val], y[val]),
            epochs=p.epochs, batch_size=p.batch_size, patience=p.patience, label=f"{p.name} fit", seed=p.seed,
        )  # fmt: skip
        self.shrink_ = np.ones(self.horizon)
        if p.shrink and p.target == "log_return":
            val_idx = np.arange(val.start, val.stop)
            points = self._to_price(data, val_idx, self._predict_scaled(x[val]))
            actual = self._actual_prices(data, val_idx)
            self.shrink_ = _shrinkage(points, actual, data.close[data.origin_index(0) + val_idx])
        self.seen_until_ = data.dates[data.origin_index(val.stop - 1) + self.horizon]
        cal_idx = np.arange(cal.start, cal.stop)
        scaled = self._predict_scaled(x[cal])
        points, actual = self._to_price(data, cal_idx, scaled), self._actual_prices(data, cal_idx)
        if p.interval == "quantile":
            quantiles, norm = self._quantiles(prices, data, cal_idx, scaled)
            last_close = data.close[data.origin_index(0) + cal_idx][:, None]
            scores = cqr_scores(np.log(actual / last_close) / norm, quantiles)
        else:
            scores = np.abs(np.log(actual / points)) / self._scales(prices, data, cal_idx, scaled)
        self.residuals_ = scores[-p.calibration_size :]
        self.track_ = self._track(data, cal_idx, points[:, 0], actual[:, 0], _empty_track())
        self.validation_ = self._validation_scores(data, cal_idx, points, actual)
        self.kind_, self.train_start_, self.train_end_ = "full", span.index[0], span.index[-1]
        self._set_recent(prices)
        return self

    def _prepare(self, prices: pd.DataFrame) -> TrainingSet:
        """Windows of the last ``train_window`` rows, split train | H | validation | H | calibration; fits scalers."""
        p = self.preset_
        if self.horizon < 1:
            raise ConfigError(f"horizon must be >= 1, got {self.horizon}")
        if p.interval not in INTERVALS:
            raise ConfigError(f"interval must be one of {', '.join(INTERVALS)}, got '{p.interval}'")
        if p.quantile_norm not in QUANTILE_NORMS:
            raise ConfigError(f"quantile_norm must be one of {', '.join(QUANTILE_NORMS)}, got '{p.quantile_norm}'")
        span = prices if p.train_window is None else prices.tail(p.train_window + warmup_rows(p.features))
        data = WindowedData.build(span, p.features, p.window, self.horizon, p.target)
        n_lab = data.labelled()
        n_val = max(int(n_lab * p.val_fraction), 10)
        n_cal = max(int(n_lab * p.calibration_fraction), 2 * MIN_RESIDUALS)
        n_train = n_lab - n_val - n_cal - 2 * self.horizon
        if n_train < 20:
            raise NotEnoughDataError(
                f"{len(span)} rows give {n_lab} labelled samples, too few for window {p.window}, "
                f"horizon {self.horizon}, a {n_val}-sample validation and a {n_cal}-sample calibration slice "
                "(need >= 20 training samples)"
            )
        self.x_scaler_ = make_scaler(p.scaler).fit(data.x_raw[: data.origin_index(n_train - 1) + 1])
        self.y_scaler_ = make_scaler(p.scaler).fit(self._raw_targets(data, 0, n_train, prices))
        x = data.x_windows(self.x_scaler_, 0, n_lab)
        y = self.y_scaler_.transform(self._raw_targets(data, 0, n_lab, prices)).astype("float32")
        val = slice(n_train + self.horizon, n_train + self.horizon + n_val)
        return TrainingSet(data, span, x, y, n_train, val, slice(n_lab - n_cal, n_lab))

    def update(self, prices: pd.DataFrame, *, finetune: bool = True) -> Self:
        """Move the origin to ``prices``' last row: score matured targets, then fine-tune on them (``finetune``;
        else only the conformal buffer moves)."""
        self._check_fitted()
        new = prices.index[prices.index > self.origin_]
        if len(new) == 0:
            return self
        data = self._data(prices, extra=len(new) + self.horizon)
        self._add_matured_residuals(prices, data, len(new))
        if finetune:
            self.finetune(prices, data=data)
        self._set_recent(prices)
        return self

    def finetune(self, prices: pd.DataFrame, *, data: WindowedData | None = None) -> Self:
        """Warm-start training on the last ``finetune_window`` labelled samples at a lower learning rate."""
        with _TRAINING:
            return self._finetune(prices, data)

    def _finetune(self, prices: pd.DataFrame, data: WindowedData | None) -> Self:
        self._check_fitted()
        p = self.preset_
        data = data or self._data(prices, extra=p.finetune_window + self.horizon)
        n_lab = data.labelled()
        start = max(0, n_lab - p.finetune_window)
        if n_lab - start < 1:
            return self
        x = data.x_windows(self.x_scaler_, start, n_lab)
        y = self.y_scaler_.transform(self._raw_targets(data, start, n_lab, prices)).astype("float32")
        training.set_learning_rate(self.model_, p.learning_rate * p.finetune_lr_factor)
        self.history_ = training.fit(
            self.model_, x, y, None, epochs=p.finetune_epochs, batch_size=p.batch_size,
            patience=p.finetune_epochs, label=f"{p.name} fine-tune", seed=p.seed,
        )  # fmt: skip
        training.set_learning_rate(self.model_, p.learning_rate)
        self.seen_until_ = data.dates[data.origin_index(n_lab - 1) + self.horizon]
        self.kind_, self.train_end_ = "finetune", self.seen_until_  # the newest target: see the module docstring
        return self

    def predict(self, horizon: int | None = None) -> pd.DataFrame:
        """Forecasts for 1..horizon sessions after the origin, with 80% and 95% conformal intervals."""
        self._check_fitted()
        h = self.horizon if horizon is None else horizon
        if not 1 <= h <= self.horizon:
            raise ConfigError(f"this model forecasts horizons 1..{self.horizon}, not {h}")
        data = self._data(self.recent_, extra=0)
        last = np.array([data.n_origins - 1])
        scaled = self._predict_scaled(data.x_windows(self.x_scaler_, int(last[0])))
        gamma = self.preset_.aci_gamma
        points = self._to_price(data, last, scaled)
        if self.preset_.interval == "quantile":
            qz, norm = self._quantiles(self.recent_, data, last, scaled)
            widen = cqr_quantiles(self.residuals_, gamma=gamma)  # [q_lo - Q, q_hi + Q] in normalised units
            last_close, bands = float(data.close[-1]), {}
            for lv, (lo, hi) in BAND_QUANTILES.items():
                bands[lv] = (last_close * np.exp(norm[0, :h] * (qz[0, :h, lo] - widen[lv][:h])),
                             last_close * np.exp(norm[0, :h] * (qz[0, :h, hi] + widen[lv][:h])))  # fmt: skip
            return forecast_frame(self.origin_, last_close, points[0, :h], {lv: q[:h] for lv, q in widen.items()},
                                  bands=bands)  # fmt: skip
        sigma = self._scales(self.recent_, data, last, scaled)
        levels = aci_levels(self.residuals_, LEVELS, gamma=gamma) if gamma > 0 else None
        quantiles = conformal_quantiles(self.residuals_, LEVELS, adjusted=levels)
        return forecast_frame(
            self.origin_, float(data.close[-1]), points[0, :h], {lv: q[:h] for lv, q in quantiles.items()}, sigma[0, :h]
        )

    def track_record(self) -> pd.DataFrame:
        """Out-of-sample horizon-1 record, one row per target date (oldest first): ``point``, ``naive``,
        ``actual`` and ``seen_until``, the newest target date the model had trained on when it made the forecast
        (always before the target date). The promotion gate scores only these rows."""
        self._check_fitted()
        return self.track_.copy()

    def score(self, prices: pd.DataFrame, last: int = 60) -> dict[str, float]:
        """Horizon-1 RMSE of this model and of naive on the last ``last`` labelled origins of ``prices``."""
        self._check_fitted()
        data = self._data(prices, extra=last + self.horizon)
        n_lab = data.labelled()
        idx = np.arange(max(0, n_lab - last), n_lab)
        points = self._to_price(data, idx, self._predict_scaled(data.x_windows(self.x_scaler_, idx[0], n_lab)))
        return self._validation_scores(data, idx, points, self._actual_prices(data, idx))

    def frozen_copy(self) -> LSTMForecaster:
        """A copy for forecasting only: its own Keras model with the same weights (no optimizer state), so that
        training this model afterwards does not change the copy's forecasts."""
        import keras  # deliberately lazy: TensorFlow only where a model exists

        self._check_fitted()
        twin = copy.copy(self)
        with keras.saving.custom_object_scope(networks.CUSTOM_OBJECTS):  # the quantile head's loss and metric
            twin.model_ = keras.models.clone_model(self.model_)
        twin.model_.set_weights(self.model_.get_weights())
        return twin

    # -- persistence ------------------------------------------------------------------------------------
    def save(self, directory: str | Path) -> str:
        """Write the artefact bundle atomically; returns its sha256."""
        return networks.write_bundle(Path(directory), self.model_, self._state(), self.metadata())

    def to_bytes(self) -> bytes:
        """The bundle as its archive (:func:`forecaster.models.networks.bundle_bytes`), without touching the disk."""
        return networks.bundle_bytes(self.model_, self._state(), self.metadata())

    def _state(self) -> dict[str, Any]:
        """What a bundle's ``state.joblib`` holds: scalers, recent prices, residuals, shrinkage, track record."""
        self._check_fitted()
        return {
            "x_scaler": self.x_scaler_, "y_scaler": self.y_scaler_,
            "recent": self.recent_, "residuals": self.residuals_, "shrink": self.shrink_,
            "track": self.track_, "seen_until": self.seen_until_,
        }  # fmt: skip

    @classmethod
    def load(cls, directory: str | Path, expected_sha256: str | None = None) -> LSTMForecaster:
        """Load a bundle written by :meth:`save` (raises ArtifactError when missing or corrupt)."""
        model, state, meta = networks.read_bundle(Path(directory), expected_sha256)
        preset = Preset.from_dict(meta["preset"])
        self = cls(preset, meta["horizon"])
        self.preset_ = preset
        self.model_, self.x_scaler_, self.y_scaler_ = model, state["x_scaler"], state["y_scaler"]
        self.recent_, self.residuals_ = state["recent"], np.asarray(state["residuals"])
        self.shrink_ = np.asarray(state.get("shrink", np.ones(self.horizon)))
        self.track_ = state.get("track", _empty_track())
        self.seen_until_ = pd.Timestamp(state.get("seen_until", meta["train_end"]))
        self.origin_ = self.recent_.index[-1]
        self.history_, self.validation_ = meta["history"], meta["validation"]
        self.fit_history_ = meta.get("fit_history", self.history_)
        self.kind_ = meta["kind"]
        self.train_start_, self.train_end_ = (
            pd.Timestamp(meta["train_start"]),
            pd.Timestamp(meta["train_end"]),
        )
        return self

    def metadata(self) -> dict[str, Any]:
        """JSON-ready description of the fitted model (stored in the bundle and the registry)."""
        return {
            "preset": self.preset_.to_dict(), "fingerprint": self.preset_.fingerprint(),
            "horizon": self.horizon, "features": list(self.preset_.features), "kind": self.kind_,
            "origin": str(self.origin_.date()),
            "train_start": str(self.train_start_.date()), "train_end": str(self.train_end_.date()),
            "history": self.history_, "fit_history": self.fit_history_, "validation": self.validation_,
            "n_params": int(self.model_.count_params()), "shrink": [float(v) for v in self.shrink_],
        }  # fmt: skip

    # -- internals --------------------------------------------------------------------------------------
    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError("LSTMForecaster is not fitted: call fit(prices) first")

    def _set_recent(self, prices: pd.DataFrame) -> None:
        p = self.preset_
        scale_rows = LONG_RUN + 1 if p.scale_blend > 0 or p.quantile_norm != "plain" else EWMA_SPAN + 1
        keep = max(warmup_rows(self.preset_.features) + self.preset_.window, scale_rows) + self.horizon + 5
        self.recent_ = prices.tail(keep).copy()
        self.origin_ = prices.index[-1]

    def _data(self, prices: pd.DataFrame, extra: int) -> WindowedData:
        p = self.preset_
        rows = warmup_rows(p.features) + p.window + extra + 1
        return WindowedData.build(prices.tail(rows), p.features, p.window, self.horizon, p.target)

    def _raw_targets(self, data: WindowedData, start: int, stop: int, prices: pd.DataFrame) -> np.ndarray:
        """Targets of samples ``start..stop``; with the scale head also ``log(|h-day log return| + eps)`` or, with
        ``scale_target="range"``, ``log(sqrt(sum of the next h days' Garman-Klass + gap² variances) + eps)``; with
        the quantile head also the h-day log return divided by its normaliser (:meth:`_quantiles`)."""
        rows = slice(data.origin_index(start), data.origin_index(stop - 1) + 1)
        targets = data.targets[rows]
        if self.preset_.interval == "quantile":
            log_ret = targets if self.preset_.target == "log_return" else np.log(targets / data.close[rows, None])
            return np.hstack([targets, log_ret / self._normaliser(prices, data, np.arange(start, stop))])
        if self.preset_.interval != "head":
            return targets
        if self.preset_.scale_target == "range":
            return np.hstack([targets, np.log(data.future_range_volatility(self.horizon)[rows] + SCALE_EPS)])
        log_ret = targets if self.preset_.target == "log_return" else np.log(targets / data.close[rows, None])
        return np.hstack([targets, np.log(np.abs(log_ret) + SCALE_EPS)])

    def _scales(self, prices: pd.DataFrame, data: WindowedData, samples: np.ndarray, scaled: np.ndarray) -> np.ndarray:
        """Log-return scale ``sigma_h`` of each sample's horizons, known at its origin: shape ``(n, H)``."""
        kind, h = self.preset_.interval, self.horizon
        if kind == "plain":
            return np.ones((len(samples), h))
        if kind == "head":
            log_head = self.y_scaler_.inverse_transform(scaled)[:, h:]
            w = self.preset_.scale_blend
            if w > 0:
                log_head = (1.0 - w) * log_head + w * np.log(self._range_scale(prices, data, samples))
            return np.maximum(np.exp(log_head), SIGMA_FLOOR)
        tail = self._tail(prices, data)
        sigma = pd.Series(ewma_volatility(tail["close"].to_numpy()), index=tail.index)
        return horizon_scale(sigma.reindex(data.dates[data.origin_index(0) + samples]).to_numpy(), h)

    def _tail(self, prices: pd.DataFrame, data: WindowedData) -> pd.DataFrame:
        """The rows of ``prices`` that every scale of ``data``'s origins depends on."""
        return prices.iloc[-(len(data.dates) + warmup_rows(self.preset_.features) + max(EWMA_SPAN, LONG_RUN) + 1) :]

    def _range_scale(self, prices: pd.DataFrame, data: WindowedData, samples: np.ndarray) -> np.ndarray:
        """The range EWMA's h-day scale at each sample's origin (:func:`range_term_structure`): ``(n, H)``."""
        tail = self._tail(prices, data)
        terms = range_term_structure(tail, self.horizon, self.preset_.blend_persistence)
        return pd.DataFrame(terms, index=tail.index).reindex(data.dates[data.origin_index(0) + samples]).to_numpy()

    def _normaliser(self, prices: pd.DataFrame, data: WindowedData, samples: np.ndarray) -> np.ndarray:
        """What the quantile head's h-day log returns are divided by: 1 or the range EWMA's scale, ``(n, H)``."""
        if self.preset_.quantile_norm == "range":
            return self._range_scale(prices, data, samples)
        return np.ones((len(samples), self.horizon))

    def _quantiles(self, prices: pd.DataFrame, data: WindowedData, samples: np.ndarray,
                   scaled: np.ndarray) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
        """The quantile head's :data:`QUANTILE_LEVELS` quantiles of the normalised h-day log return of each sample,
        ``(n, H, 4)``, and the normaliser, ``(n, H)``. With ``scale_blend = w`` the scaled quantiles are blended
        toward a standard normal's (the training targets' mean and spread): ``(1 - w) * head + w * prior``."""
        h = self.horizon
        raw = np.asarray(networks.monotone_quantiles(scaled[:, h:], h), dtype=float)
        w = self.preset_.scale_blend
        if w > 0:
            prior = np.array([statistics.NormalDist().inv_cdf(t) for t in QUANTILE_LEVELS])
            raw = (1.0 - w) * raw + w * prior
        columns = [self.y_scaler_.inverse_transform(np.hstack([np.zeros((len(raw), h)), raw[..., k]]))[:, h:]
                   for k in range(len(QUANTILE_LEVELS))]  # fmt: skip
        return np.stack(columns, axis=-1), self._normaliser(prices, data, samples)

    def _track(self, data: WindowedData, samples: np.ndarray, point: np.ndarray, actual: np.ndarray,
               track: pd.DataFrame) -> pd.DataFrame:  # fmt: skip
        """``track`` plus the horizon-1 forecasts of ``samples`` (made with what the model has seen now)."""
        rows = data.origin_index(0) + samples
        new = pd.DataFrame(
            {"point": point, "naive": data.close[rows], "actual": actual, "seen_until": self.seen_until_},
            index=pd.DatetimeIndex(data.dates[rows + 1], name="target_date"),
        )
        both = pd.concat([track, new]) if len(track) else new
        return both[~both.index.duplicated(keep="first")].tail(self.preset_.calibration_size)

    def _predict_scaled(self, x: np.ndarray) -> np.ndarray:
        return training.predict_function(self.model_)(x)

    def _to_price(self, data: WindowedData, samples: np.ndarray, scaled: np.ndarray) -> np.ndarray:
        """Inverse-scale model outputs for the given samples into prices, shape (n, H)."""
        raw = self.y_scaler_.inverse_transform(scaled[:, : self.y_scaler_.n_features_in_])[:, : self.horizon]
        if self.preset_.target == "price":
            return raw
        last_close = data.close[data.origin_index(0) + samples][:, None]
        return last_close * np.exp(raw * self.shrink_)

    def _actual_prices(self, data: WindowedData, samples: np.ndarray) -> np.ndarray:
        rows = data.origin_index(0) + samples
        return np.stack([data.close[rows + h] for h in range(1, self.horizon + 1)], axis=1)

    def _add_matured_residuals(self, prices: pd.DataFrame, data: WindowedData, n_new: int) -> None:
        """Score the current model on every (origin, h) whose target is one of the ``n_new`` newest rows.

        Those samples were never trained on (their targets did not exist), so the scores are out-of-sample; the
        horizon-1 ones extend the track record.
        """
        h = np.arange(1, self.horizon + 1)
        targets = np.arange(data.n_origins - n_new, data.n_origins)
        targets = targets[targets - self.horizon >= 0]
        if len(targets) == 0:
            return
        origins = (targets[:, None] - h[None, :]).ravel()  # (n_targets * H,), horizon-major per target
        x = data.x_windows(self.x_scaler_, 0)[origins]
        scaled = self._predict_scaled(x)
        shape = (len(targets), self.horizon, -1)
        points = self._to_price(data, origins, scaled).reshape(shape)
        diag = points[:, h - 1, h - 1]  # forecast of horizon h from origin t - h
        actual = data.close[data.origin_index(0) + targets][:, None]
        if self.preset_.interval == "quantile":
            quantiles, norm = self._quantiles(prices, data, origins, scaled)
            q_diag = quantiles.reshape(len(targets), self.horizon, self.horizon, -1)[:, h - 1, h - 1]
            last_close = data.close[data.origin_index(0) + origins].reshape(len(targets), self.horizon)
            z = np.log(actual / last_close) / norm.reshape(shape)[:, h - 1, h - 1]
            scores = cqr_scores(z, q_diag)
        else:
            sigma = self._scales(prices, data, origins, scaled).reshape(shape)
            scores = np.abs(np.log(actual / diag)) / sigma[:, h - 1, h - 1]
        self.residuals_ = np.vstack([self.residuals_, scores])[-self.preset_.calibration_size :]
        self.track_ = self._track(data, targets - 1, diag[:, 0], actual[:, 0], self.track_)

    def _validation_scores(self, data, samples, points, actual) -> dict[str, float]:
        """Horizon-1 ``rmse``, ``naive_rmse``, ``u2`` and ``n`` of these samples, from the one scorer."""
        naive = data.close[data.origin_index(0) + samples]
        frame = pd.DataFrame({"actual": actual[:, 0], "point": points[:, 0], "naive": naive})
        return metrics.score(frame, metrics=("rmse", "naive_rmse", "u2"))


def _empty_track() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype="datetime64[ns]" if c == "seen_until" else float) for c in TRACK_COLUMNS},
                        index=pd.DatetimeIndex([], name="target_date"))  # fmt: skip


def _shrinkage(points: np.ndarray, actual: np.ndarray, last_close: np.ndarray, z: float = SKILL_Z) -> np.ndarray:
    """Per-horizon factor in [0, 1] on the predicted log return: least squares through the origin of the realised
    log return on the predicted one, over the validation slice, kept only where the shrunk forecast's skill over
    naive is significant: the Diebold-Mariano statistic of squared log errors (:func:`forecaster.evaluation.metrics.
    diebold_mariano`, lags up to h - 1, HLN-corrected) below ``-z``; 0 means "forecast the last close".
    """
    predicted = np.log(points / last_close[:, None])
    realised = np.log(actual / last_close[:, None])
    denom = (predicted**2).sum(axis=0)
    beta = np.clip(np.divide((predicted * realised).sum(axis=0), denom, out=np.zeros_like(denom), where=denom > 0),
                   0.0, 1.0)  # fmt: skip
    zero = np.zeros(len(realised))
    dm = np.array([metrics.diebold_mariano(realised[:, h], beta[h] * predicted[:, h], zero, horizon=h + 1)[0]
                   for h in range(points.shape[1])])  # fmt: skip
    return np.where(np.nan_to_num(-dm, nan=0.0) > z, beta, 0.0)
