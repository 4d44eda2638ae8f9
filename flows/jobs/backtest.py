"""One walk-forward backtest, end to end: prices → walk forward → files → stored as a ``backtest`` run.

Shared by ``tsla-forecast backtest`` and the ``backtest`` flow. The LSTM and the naive, drift and moving-average
baselines run on the same origins (:func:`forecaster.evaluation.backtest.run_backtest`). The run, its metrics (per
model and
horizon) and every forecast are stored with scope ``backtest`` in one transaction, so that they stay out of the live
history. Forecasts need a model version, so the LSTM as it stands at the last origin is registered (status
``candidate``, never promoted, ``config.scope = "backtest"``); the baselines' rows carry the same version id, which
groups one backtest's rows. Rerunning the same parameters returns the stored summary and writes nothing.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from tqdm import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from db.repository import NewModelVersion, Repository
from flows.jobs.bundles import artifact_hint, pack_model
from flows.jobs.daily import finite_scores
from flows.jobs.lifecycle import RunKey, RunOutcome, TrackedRun, tracked_run
from flows.settings import Settings
from forecaster.data.sources import parse_source
from forecaster.data.validation import ensure_valid
from forecaster.errors import ConfigError, NotEnoughDataError
from forecaster.evaluation.backtest import forecast_origins, run_backtest
from forecaster.evaluation.metrics import TRAFFIC
from forecaster.models.base import Forecaster
from forecaster.models.baselines import Drift, Garch, MovingAverage, Naive, RangeEWMA
from forecaster.models.lstm import LSTMForecaster
from forecaster.models.presets import get_preset
from forecaster.plots import figures as plots
from forecaster.policy import PolicySettings
from forecaster.step import PolicyForecaster

logger = logging.getLogger("flows.backtest")
TABLE_METRICS = ("rmse", "mae", "mape", "r2", "mase", "u2", "directional_accuracy", "call_accuracy", "coverage80",
                 "coverage95", "winkler80", "pinball", "cc_p80", "traffic80", "dm_pvalue")  # fmt: skip
MODEL_NAMES = ("lstm", "lstm_schedule", "naive", "drift", "moving_average", "range_ewma", "garch")
POLICIES = ("production", "schedule")  # summary.json and the database both use the models' names


@dataclass(frozen=True)
class BacktestParams:
    """What one backtest is asked to do; equal parameters mean the same backtest (idempotency key)."""

    ticker: str
    start: dt.date
    end: dt.date
    source: str
    preset: str
    refit_every: int = 20
    horizon: int = 5
    epochs: int | None = None
    policy: str = "production"
    compare_schedule: bool = False
    policy_settings: dict[str, Any] | None = None  # the production policy's knobs (Settings.policy()), part of the key

    @classmethod
    def from_settings(cls, settings: Settings, start: dt.date, end: dt.date, *, ticker: str | None = None,
                      source: str | None = None, preset: str | None = None, horizon: int | None = None,
                      **given: Any) -> BacktestParams:  # fmt: skip
        """A backtest's parameters: ``ticker`` (the first of ``tickers``), ``source``, ``preset`` and ``horizon``
        left out take their settings; the production policy takes its knobs from ``settings.policy()``."""
        policy = given.get("policy", "production")
        knobs = asdict(settings.policy()) if policy == "production" else None
        return cls(ticker or settings.tickers[0], start, end, source or settings.source, preset or settings.preset,
                   horizon=horizon or settings.horizon, policy_settings=knobs, **given)  # fmt: skip

    def __post_init__(self) -> None:
        if self.policy not in POLICIES:
            raise ConfigError(f"policy must be production or schedule, got '{self.policy}'")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready parameters (stored in ``runs.details``)."""
        return asdict(self) | {"start": str(self.start), "end": str(self.end)}


def run_backtest_job(params: BacktestParams, output: Path, repo: Repository | None, *, settings: Settings | None = None,
                     flow_run_id: str | None = None) -> dict[str, Any]:  # fmt: skip
    """Run, write ``summary.json``/``forecasts.csv``/plots to ``output`` and (with ``repo``) store the backtest.

    Returns:
        The summary (``run_id`` and ``status`` added when stored); a stored identical backtest is returned as is.
    """
    if params.start > params.end:
        raise ConfigError(f"backtest start {params.start} is after end {params.end}")
    if repo is None:
        return _compute(params, output)[0]
    settings = settings or Settings()
    key = RunKey("backtest", params.ticker, params.end, params.to_dict())
    details = {"params": params.to_dict()}
    with tracked_run(repo, key, settings, details=details, flow_run_id=flow_run_id) as run:
        if run.done is not None:
            stored = (run.done.details or {})["summary"] | {"run_id": run.done.id, "status": "already_done"}
            if (output / "summary.json").exists():
                logger.info("backtest %s already stored as run %d: nothing to do", params.to_dict(), run.done.id)
                return stored
            logger.info("backtest already stored as run %d; recomputing the files for %s", run.done.id, output)
            return _compute(params, output)[0] | {"run_id": run.done.id, "status": "already_done", "rebuilt": True}
        summary, result, lstm = _compute(params, output)
        artifact, sha = pack_model(lstm)
        _persist(run, params, result, summary, lstm, artifact, sha)
    return summary | {"run_id": run.id, "status": "succeeded"}


def _compute(params: BacktestParams, output: Path) -> tuple[dict[str, Any], Any, LSTMForecaster]:
    """Walk forward and write the outputs; returns the summary, the backtest result and the LSTM that forecast at
    the last origin."""
    result, lstm = _walk_forward(params)
    summary = _summary(result.summary, params)
    _write_outputs(output, result, summary)
    logger.info("backtest %s %s..%s: %d origins in %.1fs, wrote %s", params.ticker, params.start, params.end,
                summary["n_forecasts"], summary["seconds"], output)  # fmt: skip
    return summary, result, _final_model(lstm)


def load_validated_prices(source: str, ticker: str, start: dt.date | None = None, end: dt.date | None = None):
    """Fetch ``ticker`` from ``source`` (yahoo, csv:PATH, synthetic) and validate it; raises on any problem."""
    return ensure_valid(parse_source(source).fetch(ticker, start, end))


def _walk_forward(params: BacktestParams):
    """Every model on the same origins: the LSTM as the production policy (``lstm``, ``policy=production``) or on
    the fixed refit schedule (``lstm``, or ``lstm_schedule`` beside the policy with ``compare_schedule``)."""
    preset = get_preset(params.preset)
    if params.epochs:
        preset = preset.replace(epochs=params.epochs)
    prices = load_validated_prices(params.source, params.ticker, end=params.end)
    if short := past_the_data(prices, params.end):
        logger.warning("%s", short)
    origins = forecast_origins(prices, params.start, params.end)
    before = int((prices.index <= origins[0]).sum())
    if before < preset.window + 2:
        raise NotEnoughDataError(
            f"only {before} rows up to the first origin {origins[0].date()}, but window {preset.window} needs more"
        )
    schedule = LSTMForecaster(preset, params.horizon)
    lstm: Forecaster = schedule
    if params.policy == "production":
        lstm = PolicyForecaster(preset, params.horizon, PolicySettings(**(params.policy_settings or {})))
        schedule.name = "lstm_schedule"
    lstms = [lstm, schedule] if params.policy == "production" and params.compare_schedule else [lstm]
    models = [*lstms, Naive(), Drift(), MovingAverage(), RangeEWMA(), *_garch(before)]
    logger.info("walk-forward over %d origins %s..%s, %s", len(origins), origins[0].date(), origins[-1].date(),
                _cadence(params))  # fmt: skip
    with logging_redirect_tqdm(), tqdm(total=len(origins) * len(models), unit="origin", desc="walk-forward") as bar:
        result = run_backtest(models, prices, params.start, params.end, horizon=params.horizon,
                              refit_every=params.refit_every or None, on_step=bar.update)  # fmt: skip
    return result, lstm


def past_the_data(prices: pd.DataFrame, end: dt.date) -> str | None:
    """What to say when ``end`` is after the last bar of the source: the scores stop at that bar."""
    last = prices.index[-1].date() if len(prices) else None
    if last is None or end <= last:
        return None
    return f"--end {end} is past the data: the source's last bar is {last}, so targets are scored up to {last} only"


def _garch(rows: int) -> list[Garch]:
    """The GARCH baseline, when the rows up to the first origin are enough to estimate it out of sample."""
    garch = Garch()
    if rows > garch.calibration + garch.MIN_RETURNS:
        return [garch]
    logger.warning("garch baseline left out: %d rows up to the first origin, it needs more than %d", rows,
                   garch.calibration + garch.MIN_RETURNS)  # fmt: skip
    return []


def _final_model(lstm: Forecaster) -> LSTMForecaster:
    """The LSTM that forecast at the last origin: the policy's champion, or the scheduled model itself."""
    if isinstance(lstm, PolicyForecaster):
        assert lstm.state_.champion is not None
        return lstm.state_.champion.model
    assert isinstance(lstm, LSTMForecaster)
    return lstm


def _summary(raw: dict[str, Any], params: BacktestParams) -> dict[str, Any]:
    """The ``summary.json`` layout: each model (``lstm``, ``naive``, ...) at the top level and in ``by_horizon``."""
    return raw | {"preset": params.preset, "ticker": params.ticker, "source": params.source}


def _write_outputs(output: Path, result, summary: dict) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / "summary.json").write_text(json.dumps(summary, indent=2, default=str))
    result.forecasts.to_csv(output / "forecasts.csv", index=False, date_format="%Y-%m-%d")
    for name, fig in plots.backtest_figures(result.forecasts, summary, histories=result.histories).items():
        plots.save_figure(fig, output / name)


def _persist(run: TrackedRun, params: BacktestParams, result, summary: dict, lstm: LSTMForecaster, artifact: bytes,
             sha: str) -> None:  # fmt: skip
    """The backtest's model version, forecasts (every model) and metrics (every model and horizon): one transaction."""
    config = {"scope": "backtest", "preset": lstm.preset_.to_dict(), "fingerprint": lstm.preset_.fingerprint(),
              "horizon": params.horizon, "backtest": params.to_dict()}  # fmt: skip
    version = NewModelVersion(
        params.ticker, lstm.kind_, None, lstm.preset_.name, config, lstm.train_start_.date(), lstm.train_end_.date(),
        {"backtest": finite_scores(summary["lstm"])}, artifact_hint(sha), sha,
    )  # fmt: skip
    run_id, start, end = run.id, params.start, params.end
    assert run_id is not None
    with run.repo.transaction() as tx:
        version_id = tx.add_model_version(version, artifact=artifact)
        for model, frame in result.forecasts.groupby("model", sort=False):
            tx.upsert_forecasts(run_id, version_id, params.ticker, frame, scope="backtest", model=str(model))
        for model, per_h in result.summary["by_horizon"].items():  # the models' own names, as in forecasts
            named = {f"{model}.h{h}.{name}": value for h, scores in per_h.items() for name, value in scores.items()}
            tx.write_metrics(run_id, version_id, "backtest", finite_scores(named), start, end)
        for model, trail in result.summary.get("policy", {}).items():  # the policy trail: lstm.policy.promotions, ...
            counts = {f"{model}.policy.{name}": value for name, value in trail["counts"].items()}
            tx.write_metrics(run_id, version_id, "backtest", finite_scores(counts), start, end)
        run.commit(tx, RunOutcome(version_id, {"summary": json.loads(json.dumps(summary, default=str))}))


def format_table(summary: dict) -> str:
    """A fixed-width table: one row per model, the metrics as columns (traffic lights in words); then the policy's
    counts when the LSTM ran as the production policy."""
    names = [n for n in MODEL_NAMES if n in summary]
    widths = [max(9, len(m)) + 1 for m in TABLE_METRICS]
    rows = [f"{'h=1':<15}" + "".join(f"{m:>{w}}" for m, w in zip(TABLE_METRICS, widths, strict=True))]
    for name in names:
        cells = (
            f"{_cell(m, summary[name].get(m, float('nan'))):>{w}}" for m, w in zip(TABLE_METRICS, widths, strict=True)
        )
        rows.append(f"{name:<15}" + "".join(cells))
    for name, trail in summary.get("policy", {}).items():
        c = trail["counts"]
        rows.append(
            f"policy ({name}): {c['sessions']} sessions, {c['full_retrains']} full retrains, {c['finetunes']} "
            f"fine-tunes, {c['promotions']} promotions, {c['rejections']} rejections (each a fallback)"
        )
    return "\n".join(rows)


def _cell(metric: str, value: float) -> str:
    if metric.startswith("traffic") and value == value:
        return TRAFFIC[int(value)]
    return f"{value:.4g}"


def _cadence(params: BacktestParams) -> str:
    if params.policy == "production":
        return "production policy" + (" beside the fixed schedule" if params.compare_schedule else "")
    return f"fixed schedule: refit every {params.refit_every or 'never'}"
