"""One ticker, one as-of session: fetch → validate → score → decide → train → gate → forecast → store.

Plain functions over :mod:`forecaster` and :mod:`db`; the Prefect task in :mod:`flows.daily` only calls
:func:`run_ticker`. A run that fails at any step leaves the database as it was, apart from its own ``failed`` run
row: the new bundle is stored in the database, in the one transaction that registers it, and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from db.repository import Repository
from flows.jobs.artifacts import artifact_hint, load_version, pack_model
from flows.settings import Settings
from forecaster.calendar import is_session, last_completed_session, sessions
from forecaster.errors import ConfigError, SourceError
from forecaster.policy import ChampionFacts, GateDecision, TrainingDecision, decide_training, gate
from forecaster.validation import ensure_valid

logger = logging.getLogger("flows.jobs.daily")
Fetch = Callable[[str, str, dt.date, dt.date], pd.DataFrame]


@dataclass(frozen=True)
class JobParams:
    """What one run is asked to do; ``kind`` is the run kind stored in ``runs``."""

    ticker: str
    as_of: dt.date
    source: str = "yahoo"
    retrain: str = "auto"
    horizon: int = 5
    preset: str = "default"
    kind: str = "daily"

    @property
    def writes_forecasts(self) -> bool:
        """Daily runs publish forecasts; retrain runs only train, gate and register a model."""
        return self.kind != "retrain"


@dataclass
class JobResult:
    """What one run did, JSON-ready for Prefect results and artifacts."""

    ticker: str
    as_of: str
    status: str
    run_id: int | None = None
    model_version_id: int | None = None  # the version whose forecasts were published
    candidate_version_id: int | None = None  # the version trained by this run (promoted or not)
    promoted: bool = False
    decision: str = ""
    gate: str = ""
    live: dict[str, float] = field(default_factory=dict)
    forecasts: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (for Prefect results)."""
        return asdict(self)


def resolve_as_of(as_of: str | dt.date | None) -> dt.date | None:
    """The session to forecast from: ``as_of`` or the last completed NYSE session; None on a non-trading day."""
    latest = last_completed_session().date()
    if as_of is None:
        return latest
    day = pd.Timestamp(as_of).date()
    if day > latest:
        raise ConfigError(f"as_of {day} has no final bar yet: the last completed NYSE session is {latest}")
    if not is_session(day):
        logger.info("%s is not an NYSE trading day: nothing to do", day)
        return None
    return day


def fetch_prices(source: str, ticker: str, start: dt.date, end: dt.date) -> pd.DataFrame:
    """Default fetch: the source named by ``source``, rows in ``[start, end]``."""
    from forecaster.sources import parse_source

    return parse_source(source).fetch(ticker, start, end)


def run_ticker(params: JobParams, settings: Settings, repo: Repository, *, fetch: Fetch = fetch_prices,
               flow_run_id: str | None = None) -> JobResult:  # fmt: skip
    """Run the whole daily job for one ticker; idempotent per (kind, ticker, as_of)."""
    done = repo.find_run(params.kind, params.ticker, params.as_of)
    if done is not None:
        logger.info(
            "%s %s %s already succeeded (run %d): nothing to do", params.kind, params.ticker, params.as_of, done.id
        )
        return JobResult(params.ticker, str(params.as_of), "already_done", done.id, done.model_version_id)
    _supersede_interrupted(repo, params)
    run_id = repo.start_run(
        params.kind, params.ticker, params.as_of, flow_run_id, details=asdict(params) | {"as_of": str(params.as_of)}
    )
    try:
        prices, new_bars = load_prices(repo, params, settings, fetch)
        logger.info("%s %s: prices: %d sessions, %d fetched", params.ticker, params.as_of, len(prices), len(new_bars))
        live = repo.live_scores(params.ticker, params.as_of, pending=new_bars)
        champion_row, champion, facts, warning = load_champion(repo, params, live)
        fingerprint = _fingerprint(params)
        decision = decide_training(params.retrain, facts, fingerprint, max_age=settings.max_champion_age,
                                   drift_u2=settings.drift_u2)  # fmt: skip
        if warning:
            decision = TrainingDecision(decision.kind, f"{decision.reason} ({warning})")
        logger.info("%s %s: %s retrain: %s", params.ticker, params.as_of, decision.kind, decision.reason)
        candidate = train_candidate(decision, champion_row if champion is not None else None, prices, params, repo)
        verdict, scores = gate_candidate(candidate, champion, prices, settings)
        logger.info("%s %s: gate: %s", params.ticker, params.as_of, verdict.reason)
        today = candidate if verdict.promote else _roll_forward(repo, champion_row, prices)
        forecasts = today.predict(params.horizon)
        logger.info("%s %s: forecast: %d horizons", params.ticker, params.as_of, len(forecasts))
        artifact, sha = pack_model(candidate)
        used, version_id = _persist(
            repo, run_id, params, new_bars, candidate, champion_row, verdict, decision, forecasts, live, scores,
            artifact, sha, fingerprint,
        )  # fmt: skip
        logger.info("%s %s: stored: run %d, model version %d", params.ticker, params.as_of, run_id, used)
    except BaseException as exc:
        record_failure(repo, run_id, exc)
        raise
    records = forecasts.assign(
        as_of=forecasts["as_of"].dt.strftime("%Y-%m-%d"), target_date=forecasts["target_date"].dt.strftime("%Y-%m-%d")
    ).to_dict("records")
    return JobResult(params.ticker, str(params.as_of), "succeeded", run_id, used, version_id, verdict.promote,
                     decision.reason, verdict.reason, finite_scores(live), records)  # fmt: skip


def load_prices(
    repo: Repository, params: JobParams, settings: Settings, fetch: Fetch
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stored history plus newly fetched final bars up to ``as_of``, validated together.

    Returns:
        ``(history up to as_of, the fetched bars to upsert)``.
    """
    latest = repo.latest_price_date(params.ticker)
    start = (
        dt.date.fromisoformat(settings.history_start)
        if latest is None
        else min(latest, params.as_of) - dt.timedelta(days=14)
    )
    fetched = fetch(params.source, params.ticker, start, params.as_of)
    fetched = fetched.loc[: pd.Timestamp(last_completed_session())] if len(fetched) else fetched  # final bars only
    ensure_valid(fetched)
    if pd.Timestamp(params.as_of) not in fetched.index:
        newest = fetched.index.max().date() if len(fetched) else "none"
        raise SourceError(f"{params.source} has no final bar for {params.ticker} on {params.as_of} (newest: {newest})")
    stored = repo.load_prices(params.ticker, end=params.as_of)
    history = pd.concat([stored[~stored.index.isin(fetched.index)], fetched]).sort_index()
    return ensure_valid(history), fetched


def load_champion(repo: Repository, params: JobParams, live: dict[str, float]):
    """The champion's registry row, loaded model and policy facts; a broken artefact gives ``None`` plus a warning.

    ``live`` holds the live scores up to and including ``as_of`` (today's close counts).
    """
    from forecaster.models import ArtifactError

    row = repo.champion(params.ticker)
    if row is None:
        return None, None, None, None
    if dt.date.fromisoformat(str(row.config.get("data_end", row.train_end))) > params.as_of:
        raise SourceError(
            f"the champion of {params.ticker} (version {row.id}) was trained on data after {params.as_of}; "
            "runs must go forward in time (backfill from an empty database to replay history)"
        )
    try:
        model = _load_model(repo, row)
    except ArtifactError as exc:
        logger.warning("champion version %d unusable, falling back to a full retrain: %s", row.id, exc)
        return row, None, None, f"champion artefact unusable: {exc}"
    full_fit = dt.date.fromisoformat(row.config["full_fit_as_of"])
    attempt = repo.latest_full_fit(params.ticker)
    facts = ChampionFacts(
        fingerprint=row.config["fingerprint"], sessions_since_full_fit=_sessions_between(full_fit, params.as_of),
        live_u2=float(live.get("u2", np.nan)), live_n=int(np.nan_to_num(live.get("n", 0))),
        sessions_since_full_attempt=None if attempt is None or attempt <= full_fit
        else _sessions_between(attempt, params.as_of),
    )  # fmt: skip
    return row, model, facts, None


def train_candidate(decision: TrainingDecision, champion_row, prices: pd.DataFrame, params: JobParams,
                    repo: Repository):  # fmt: skip
    """A new model: a full fit, or a fresh copy of the champion warm-started and fine-tuned on the new data."""
    from forecaster.lstm import LSTMForecaster
    from forecaster.presets import get_preset

    if decision.kind == "full" or champion_row is None:
        return LSTMForecaster(get_preset(params.preset), horizon=params.horizon).fit(prices)
    candidate = _load_model(repo, champion_row)
    candidate.finetune_on_update = True
    return candidate.update(prices)


def gate_candidate(candidate, champion, prices: pd.DataFrame, settings: Settings) -> tuple[GateDecision, dict]:
    """Compare candidate and champion (and naive) on the last ``gate_window`` sessions."""
    cand = candidate.score(prices, settings.gate_window)
    champ = None if champion is None else champion.score(prices, settings.gate_window)
    verdict = gate(cand, champ, tolerance=settings.gate_tolerance, max_u2=settings.gate_max_u2)
    return verdict, {"candidate": cand, "champion": champ}


def _sessions_between(first: dt.date, last: dt.date) -> int:
    """NYSE sessions after ``first`` up to ``last``."""
    return len(sessions(first, last)) - 1


def _roll_forward(repo: Repository, champion_row, prices: pd.DataFrame):
    """The champion, reloaded and moved to today's origin without training (a rejected candidate's fallback)."""
    model = _load_model(repo, champion_row)
    model.finetune_on_update = False
    return model.update(prices)


def _load_model(repo: Repository, row):
    """A registered version from the local cache, unpacked from the database on first use (verified on every load)."""
    return load_version(repo, row)


def _persist(repo, run_id, params, new_bars, candidate, champion_row, verdict, decision, forecasts, live, scores,
             artifact, sha, fingerprint) -> tuple[int, int]:  # fmt: skip
    """Every write of the run in one transaction; returns the ids of the version used today and of the new one."""
    full_fit = params.as_of if candidate.kind_ == "full" else champion_row.config["full_fit_as_of"]
    config = {"preset": candidate.preset_.to_dict(), "fingerprint": fingerprint, "horizon": params.horizon,
              "full_fit_as_of": str(full_fit), "data_end": str(params.as_of)}  # fmt: skip
    metrics = {"validation": candidate.validation_, "gate": scores, "gate_decision": verdict.reason,
               "history": _curves(candidate.history_), "fit_history": _curves(candidate.fit_history_)}  # fmt: skip
    with repo.transaction() as tx:
        tx.upsert_prices(params.ticker, new_bars, params.source)
        version_id = tx.add_model_version(
            params.ticker, candidate.kind_, None if champion_row is None else champion_row.id, candidate.preset_.name,
            config, candidate.train_start_.date(), candidate.train_end_.date(), metrics, artifact_hint(sha), sha,
            artifact=artifact,
        )  # fmt: skip
        if verdict.promote:
            tx.promote(version_id)
        used = version_id if verdict.promote else champion_row.id
        if params.writes_forecasts:
            tx.upsert_forecasts(run_id, used, params.ticker, forecasts, scope="live", model="lstm")
        tx.write_metrics(run_id, version_id, "validation", finite_scores(candidate.validation_), None, params.as_of)
        if live.get("n"):
            tx.write_metrics(run_id, used, "live", finite_scores(live), None, params.as_of)
        details = {"decision": decision.reason, "gate": verdict.reason, "promoted": verdict.promote,
                   "candidate_version_id": version_id}  # fmt: skip
        tx.finish_run(run_id, "succeeded", model_version_id=used, details=details)
    return used, version_id


def _curves(history: dict[str, Any] | None) -> dict[str, list[float | None]]:
    """Keras loss curves as JSON (non-finite values as null); reports draw them from the registry."""
    return {k: [float(v) if np.isfinite(v) else None for v in values] for k, values in (history or {}).items()}


def _fingerprint(params: JobParams) -> str:
    from forecaster.presets import get_preset

    return f"{get_preset(params.preset).fingerprint()}-h{params.horizon}"


def finite_scores(values: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of ``values`` as floats (what the metrics table and JSON can hold)."""
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float) and np.isfinite(v)}


def _supersede_interrupted(repo: Repository, params: JobParams) -> None:
    """A ``running`` row for this key is a run that was killed: mark it failed before starting again."""
    stale = repo.find_run(params.kind, params.ticker, params.as_of, status="running")
    if stale is not None:
        repo.fail_run(stale.id, "interrupted: the process stopped before the run finished; superseded by a rerun")


def record_failure(repo: Repository, run_id: int, exc: BaseException) -> None:
    """Mark ``run_id`` failed with the error; never raises (the database may be what failed)."""
    try:
        repo.fail_run(run_id, f"{type(exc).__name__}: {exc}")
    except Exception:  # noqa: BLE001 - the database may be the thing that failed
        logger.exception("could not record the failure of run %d", run_id)
