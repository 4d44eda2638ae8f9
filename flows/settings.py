"""Every knob of the job, from ``TSLA_FORECAST_*`` environment variables (pydantic-settings) or flow parameters.

``TSLA_FORECAST_HOME`` is the one root for the defaults: ``<home>/forecast.db`` (SQLite), ``<home>/cache/`` (model
bundles unpacked from the database, keyed by sha256), ``<home>/reports/``. ``TSLA_FORECAST_DATABASE_URL``
overrides the database.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from db.engine import DEFAULT_HOME, sqlite_url
from flows.tickers import Ticker
from forecaster.policy import GateMetric, PolicySettings

Retrain = Literal["auto", "full", "finetune"]


class Settings(BaseSettings):
    """Job settings; every field can be set as ``TSLA_FORECAST_<FIELD>`` (lists as JSON)."""

    model_config = SettingsConfigDict(env_prefix="TSLA_FORECAST_", extra="ignore")

    home: Path = Field(default_factory=lambda: Path(DEFAULT_HOME).expanduser())
    database_url: str | None = None
    # the defaults of every flow and CLI parameter of the same name
    tickers: list[Ticker] = Field(["TSLA"], min_length=1, description="ticker symbols (see flows.tickers)")
    source: str = Field("yahoo", description="yahoo, csv:PATH or synthetic[:SEED]")
    preset: str = Field("default", description="model preset for full retrains")
    horizon: int = Field(5, description="forecast horizon H in trading days")
    retrain: Retrain = "auto"
    history_start: str = "2010-01-01"
    run_lock_timeout: float = Field(
        300.0, description="seconds a run waits for a live run of the same key before giving up with an error"
    )
    # the champion/challenger policy (forecaster.step): every knob of the daily job and `backtest --policy production`
    max_champion_age: int = Field(
        20, ge=1, description="a challenger is a full retrain when the champion's full fit is this many sessions old"
    )
    drift_u2: float = Field(1.10, description="... or when the champion's live 20-session U2 (vs naive) exceeds this")
    drift_min_live: int = Field(10, ge=1, description="matured live forecasts the drift rule needs")
    gate_window: int = Field(
        10, ge=1, description="sessions a challenger forecasts in shadow before the gate grades it (training cadence)"
    )
    gate_metric: GateMetric = Field(
        "pinball", description="gate score over horizons 1..H: pinball (the four band quantiles), winkler80/95, rmse"
    )
    gate_tolerance: float = Field(1.0, gt=0, description="challenger's gate score must be <= tolerance x champion's")
    gate_max_u2: float = Field(1.25, description="a challenger whose U2 vs naive exceeds this is never promoted")
    fetch_retries: int = Field(
        2, description="Prefect retries of a price fetch the source could not answer (5 s, then 30 s apart)"
    )
    final_bar_retry_delays: list[float] = Field(
        [900, 1800, 3600, 3600, 3600],
        description="seconds before each new attempt of a scheduled run whose live source (Yahoo, sometimes late) "
        "has no final bar for as_of yet: 2.75 hours in all by default; [] fails at once. A file is never waited for",
    )
    artifact_retention: int = Field(
        30, ge=0, description="keep the model artefacts of every champion and of the newest N versions per ticker"
    )
    # reports and email
    reports_enabled: bool = Field(
        True,
        description="end each daily run with its tickers' reports (archive, Prefect artifacts, email); off, "
        "the runs store forecasts only and `tsla-forecast report --as-of DATE --ticker T` makes one later",
    )
    email_enabled: bool = Field(False, description="email each daily report (needs reports_enabled)")
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_security: Literal["ssl", "starttls", "none"] = "none"
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    email_sender: str = "tsla-forecast@localhost"
    email_recipients: list[str] = []
    smtp_password_block: str | None = Field(
        None, description="name of a Prefect Secret block holding the SMTP password (used when SMTP_PASSWORD is unset)"
    )
    smtp_timeout: float = Field(30.0, description="seconds to wait for the SMTP server")
    email_retries: int = Field(3, description="retries of a failed email delivery; then a warning on the run")
    email_retry_delay: float = Field(
        30.0, description="seconds before the first email retry; the k-th retry waits k times this (30, 60, 90 s)"
    )
    dask_address: str | None = None
    # operations: catch-up of missed sessions, alerts
    catchup_max_sessions: int = Field(
        10, ge=0, description="a daily run replays at most this many missed sessions first; more fails (use backfill)"
    )
    alerts_enabled: bool = Field(False, description="email the team when a daily run fails or crashes")
    alert_recipients: list[str] = Field([], description="alert addressees (default: email_recipients)")
    late_after_minutes: int = Field(
        150, description="a session's daily run is late this long after the close (the 17:30 cron plus an hour)"
    )

    def policy(self) -> PolicySettings:
        """The knobs of the champion/challenger policy (:mod:`forecaster.step`)."""
        return PolicySettings(
            max_age=self.max_champion_age, drift_u2=self.drift_u2, min_live=self.drift_min_live,
            gate_window=self.gate_window, gate_tolerance=self.gate_tolerance, gate_metric=self.gate_metric,
            gate_max_u2=self.gate_max_u2,
        )  # fmt: skip

    @property
    def reports_dir(self) -> Path:
        """Report archive: ``<reports>/<YYYY-MM-DD>/<TICKER>/``."""
        return self.home / "reports"

    @property
    def db_url(self) -> str:
        """The database URL: ``database_url`` or SQLite under ``home``."""
        return self.database_url or sqlite_url(self.home)

    @property
    def cache_dir(self) -> Path:
        """Local cache of model bundles, one folder per archive sha256; safe to delete at any time."""
        return self.home / "cache"
