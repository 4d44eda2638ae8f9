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

from db.repository import NewModelVersion, Repository
from db.schema import ModelVersion
from flows.jobs.bundles import artifact_hint, load_version, pack_model
from flows.jobs.lifecycle import RunKey, RunOutcome, TrackedRun, tracked_run
from flows.settings import Settings
from forecaster.data.calendar import is_session, last_completed_session, sessions
from forecaster.data.revisions import PriceRevision, price_revisions, restated_dates
from forecaster.data.revisions import describe as describe_revisions
from forecaster.data.sources import parse_source
from forecaster.data.validation import ensure_valid
from forecaster.errors import ConfigError, FinalBarMissingError, SourceError
from forecaster.evaluation.metrics import LIVE, score
from forecaster.models.lstm import LSTMForecaster  # no TensorFlow at import: Keras loads on the first fit or load
from forecaster.models.networks import ArtifactError
from forecaster.models.presets import get_preset
from forecaster.policy import ChampionFacts, GateDecision, TrainingDecision, decide_training, gate, oos_scores

logger = logging.getLogger("flows.jobs.daily")
Fetch = Callable[[str, str, dt.date, dt.date], pd.DataFrame]


@dataclass(frozen=True)
class JobParams:
    """What one run is asked to do; ``kind`` is the run kind stored in ``runs``."""

    ticker: str
    as_of: dt.date
    source: str
    retrain: str
    horizon: int
    preset: str
    kind: str = "daily"

    @classmethod
    def from_settings(cls, settings: Settings, ticker: str, as_of: dt.date, kind: str = "daily",
                      **given: str | int | None) -> JobParams:  # fmt: skip
        """Parameters of one run: each of ``source, retrain, horizon, preset`` given as None takes its setting."""
        values = {name: getattr(settings, name) if given.get(name) is None else given[name]
                  for name in ("source", "retrain", "horizon", "preset")}  # fmt: skip
        return cls(ticker, as_of, kind=kind, **values)  # type: ignore[arg-type]

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
    return parse_source(source).fetch(ticker, start, end)


def run_ticker(params: JobParams, settings: Settings, repo: Repository, *, fetch: Fetch = fetch_prices,
               flow_run_id: str | None = None) -> JobResult:  # fmt: skip
    """Run the whole daily job for one ticker; one run per (kind, ticker, as_of) (see :mod:`flows.jobs.lifecycle`)."""
    key = RunKey(params.kind, params.ticker, params.as_of)
    details = asdict(params) | {"as_of": str(params.as_of)}
    with tracked_run(repo, key, settings, details=details, flow_run_id=flow_run_id) as run:
        if run.done is not None:
            return JobResult(params.ticker, str(params.as_of), "already_done", run.done.id, run.done.model_version_id)
        return _run_job(run, params, settings, fetch)


def _run_job(run: TrackedRun, params: JobParams, settings: Settings, fetch: Fetch) -> JobResult:
    """The steps of a started run: every write happens in one transaction at the end."""
    repo, tag = run.repo, f"{params.ticker} {params.as_of}"
    fetched = load_prices(repo, params, settings, fetch)
    prices = fetched.history
    logger.info("%s: prices: %d sessions, %d fetched", tag, len(prices), len(fetched.bars))
    outcomes = repo.live_outcomes(params.ticker, params.as_of, pending=fetched.bars, revisions=fetched.revisions)
    live = score(outcomes, metrics=LIVE)
    champion = _in_new_units(load_champion(repo, params, live), fetched.revisions)
    decision = _decide(params, settings, champion)
    logger.info("%s: %s retrain: %s", tag, decision.kind, decision.reason)
    # the champion's record is taken before a fine-tune changes it (the candidate may be the champion itself)
    champion_model = None if champion is None else champion.model
    champion_track = None if champion_model is None else champion_model.track_record()
    candidate, fallback = train_candidate(decision, champion, prices, params)
    verdict, scores = gate_candidate(candidate, champion_track, settings)
    logger.info("%s: gate: %s", tag, verdict.reason)
    today = candidate if verdict.promote or fallback is None else fallback.update(prices, finetune=False)
    forecasts = today.predict(params.horizon)
    logger.info("%s: forecast: %d horizons", tag, len(forecasts))
    artifact, sha = pack_model(candidate)
    trained = Trained(candidate, None if champion is None else champion.row, verdict, decision, scores)
    version = _version(params, trained, sha)
    used, version_id = _persist(run, params, trained, fetched, forecasts, live, version, artifact)
    logger.info("%s: stored: run %d, model version %d", tag, run.id, used)
    records = forecasts.assign(
        as_of=forecasts["as_of"].dt.strftime("%Y-%m-%d"), target_date=forecasts["target_date"].dt.strftime("%Y-%m-%d")
    ).to_dict("records")
    return JobResult(params.ticker, str(params.as_of), "succeeded", run.id, used, version_id, verdict.promote,
                     decision.reason, verdict.reason, finite_scores(live), records)  # fmt: skip


@dataclass(frozen=True)
class FetchedPrices:
    """Prices of one run: the validated ``history`` up to ``as_of``, the ``bars`` to store and, when the source
    restated bars we store (a split), the ``revisions`` (then ``bars`` is the whole history and replaces ours)."""

    history: pd.DataFrame
    bars: pd.DataFrame
    revisions: tuple[PriceRevision, ...] = ()


def load_prices(repo: Repository, params: JobParams, settings: Settings, fetch: Fetch) -> FetchedPrices:
    """Stored history plus newly fetched final bars up to ``as_of``, validated together.

    The fetch overlaps the stored bars by 14 days; if the source now gives different values for them, it has
    restated its history: the whole history is fetched again and replaces the stored one.
    """
    latest = repo.latest_price_date(params.ticker)
    history_start = dt.date.fromisoformat(settings.history_start)
    start = history_start if latest is None else min(latest, params.as_of) - dt.timedelta(days=14)
    fetched = _final_bars(fetch(params.source, params.ticker, start, params.as_of))
    if pd.Timestamp(params.as_of) not in fetched.index:
        newest = fetched.index.max().date() if len(fetched) else "none"
        raise FinalBarMissingError(
            f"{params.source} has no final bar for {params.ticker} on {params.as_of} (newest: {newest})"
        )
    stored = repo.load_prices(params.ticker, end=params.as_of)
    if len(restated := restated_dates(stored, fetched)):
        logger.warning("%s %s: %s restated %d stored bars (%s..%s): fetching the whole history again",
                       params.ticker, params.as_of, params.source, len(restated), restated[0].date(),
                       restated[-1].date())  # fmt: skip
        full = _final_bars(fetch(params.source, params.ticker, history_start, params.as_of))
        revisions = tuple(price_revisions(stored, full))
        logger.warning("%s %s: restated history: %s", params.ticker, params.as_of, describe_revisions(revisions))
        return FetchedPrices(ensure_valid(full), full, revisions)
    history = pd.concat([stored[~stored.index.isin(fetched.index)], fetched]).sort_index()
    return FetchedPrices(ensure_valid(history), fetched)


def _final_bars(fetched: pd.DataFrame) -> pd.DataFrame:
    """The final bars of a fetch (the session has closed), validated."""
    return ensure_valid(fetched.loc[: pd.Timestamp(last_completed_session())] if len(fetched) else fetched)


@dataclass(frozen=True)
class Champion:
    """The champion's registry row and its model, loaded once per run; ``model`` is None when its artefact is
    unusable (``warning`` says why; the policy then retrains fully)."""

    row: ModelVersion
    model: LSTMForecaster | None
    facts: ChampionFacts | None = None
    warning: str | None = None


@dataclass(frozen=True)
class Trained:
    """What training and the gate produced: the candidate, its parent row, the verdicts and the gate scores."""

    candidate: LSTMForecaster
    parent: ModelVersion | None
    verdict: GateDecision
    decision: TrainingDecision
    scores: dict[str, Any]


def load_champion(repo: Repository, params: JobParams, live: dict[str, float]) -> Champion | None:
    """The champion (row, model, policy facts), or None when there is none; a broken artefact gives no model.

    ``live`` holds the live scores up to and including ``as_of`` (today's close counts).
    """
    row = repo.champion(params.ticker)
    if row is None:
        return None
    if dt.date.fromisoformat(str(row.config.get("data_end", row.train_end))) > params.as_of:
        raise SourceError(
            f"the champion of {params.ticker} (version {row.id}) was trained on data after {params.as_of}; "
            "runs must go forward in time (backfill from an empty database to replay history)"
        )
    try:
        model = load_version(repo, row)
    except ArtifactError as exc:
        logger.warning("champion version %d unusable, falling back to a full retrain: %s", row.id, exc)
        return Champion(row, None, warning=f"champion artefact unusable: {exc}")
    full_fit = dt.date.fromisoformat(row.config["full_fit_as_of"])
    attempt = repo.latest_full_fit(params.ticker)
    facts = ChampionFacts(
        fingerprint=row.config["fingerprint"], sessions_since_full_fit=_sessions_between(full_fit, params.as_of),
        live_u2=float(live.get("u2", np.nan)), live_n=int(np.nan_to_num(live.get("n", 0))),
        sessions_since_full_attempt=None if attempt is None or attempt <= full_fit
        else _sessions_between(attempt, params.as_of),
    )  # fmt: skip
    return Champion(row, model, facts)


def _in_new_units(champion: Champion | None, revisions: tuple[PriceRevision, ...]) -> Champion | None:
    """After restated history, a champion that learnt price levels (scaler, inputs) is in the old units: unusable,
    like a broken artefact, so the run retrains fully and never forecasts with it. Scale-free models stay usable."""
    if not revisions or champion is None or champion.model is None or champion.model.preset_.target != "price":
        return champion
    warning = f"history restated ({describe_revisions(revisions)}): the champion learnt price levels in the old units"
    logger.warning("%s: %s", champion.row.ticker, warning)
    return Champion(champion.row, None, None, warning)


def _decide(params: JobParams, settings: Settings, champion: Champion | None) -> TrainingDecision:
    decision = decide_training(params.retrain, None if champion is None else champion.facts, _fingerprint(params),
                               max_age=settings.max_champion_age, drift_u2=settings.drift_u2)  # fmt: skip
    if champion is not None and champion.warning:
        return TrainingDecision(decision.kind, f"{decision.reason} ({champion.warning})")
    return decision


def train_candidate(decision: TrainingDecision, champion: Champion | None, prices: pd.DataFrame,
                    params: JobParams) -> tuple[LSTMForecaster, LSTMForecaster | None]:  # fmt: skip
    """A new model, a full fit or the champion fine-tuned on the new data, and the champion to fall back on.

    Returns:
        ``(candidate, fallback)``: ``fallback`` is the champion as loaded (a forecast-only copy when the candidate
        is the champion itself, fine-tuned), or None without a usable champion.
    """
    if champion is None or champion.model is None:
        return LSTMForecaster(get_preset(params.preset), horizon=params.horizon).fit(prices), None
    if decision.kind == "full":
        return LSTMForecaster(get_preset(params.preset), horizon=params.horizon).fit(prices), champion.model
    fallback = champion.model.frozen_copy()
    return champion.model.update(prices, finetune=True), fallback


def gate_candidate(candidate: LSTMForecaster, champion_track: pd.DataFrame | None,
                   settings: Settings) -> tuple[GateDecision, dict]:  # fmt: skip
    """Compare the candidate with the champion (and naive) out of sample: on the newest ``gate_window`` sessions of
    their track records that neither had trained on when it forecast them (:func:`forecaster.policy.oos_scores`)."""
    cand, champ = oos_scores(candidate.track_record(), champion_track, settings.gate_window)
    verdict = gate(cand, champ, tolerance=settings.gate_tolerance, max_u2=settings.gate_max_u2)
    return verdict, {"candidate": cand, "champion": champ}


def _sessions_between(first: dt.date, last: dt.date) -> int:
    """NYSE sessions after ``first`` up to ``last``."""
    return len(sessions(first, last)) - 1


def _version(params: JobParams, trained: Trained, sha: str) -> NewModelVersion:
    """The registry row of the run's candidate."""
    candidate, parent = trained.candidate, trained.parent
    full_fit = params.as_of if candidate.kind_ == "full" or parent is None else parent.config["full_fit_as_of"]
    config = {"preset": candidate.preset_.to_dict(), "fingerprint": _fingerprint(params), "horizon": params.horizon,
              "full_fit_as_of": str(full_fit), "data_end": str(params.as_of)}  # fmt: skip
    metrics = {"validation": candidate.validation_, "gate": trained.scores, "gate_decision": trained.verdict.reason,
               "history": _curves(candidate.history_), "fit_history": _curves(candidate.fit_history_)}  # fmt: skip
    return NewModelVersion(
        params.ticker, candidate.kind_, None if parent is None else parent.id, candidate.preset_.name, config,
        candidate.train_start_.date(), candidate.train_end_.date(), metrics, artifact_hint(sha), sha,
    )  # fmt: skip


def _persist(run: TrackedRun, params: JobParams, trained: Trained, fetched: FetchedPrices, forecasts: pd.DataFrame,
             live: dict[str, float], version: NewModelVersion, artifact: bytes) -> tuple[int, int]:  # fmt: skip
    """Every write of the run in one transaction, the model artefact and any restated history included; returns
    the ids of the version used today and of the new one."""
    verdict, run_id = trained.verdict, run.id
    assert run_id is not None
    with run.repo.transaction() as tx:
        tx.write_prices(params.ticker, fetched.bars, params.source, fetched.revisions)
        tx.record_price_revisions(params.ticker, fetched.revisions, detected_on=params.as_of, run_id=run_id,
                                  source=params.source)  # fmt: skip
        version_id = tx.add_model_version(version, artifact=artifact)
        if verdict.promote:
            tx.promote(version_id)
        used = version_id if verdict.promote or trained.parent is None else trained.parent.id
        if params.writes_forecasts:
            tx.upsert_forecasts(run_id, used, params.ticker, forecasts, scope="live", model="lstm")
        tx.write_metrics(run_id, version_id, "validation", finite_scores(trained.candidate.validation_), None,
                         params.as_of)  # fmt: skip
        if live.get("n"):
            tx.write_metrics(run_id, used, "live", finite_scores(live), None, params.as_of)
        details = {"decision": trained.decision.reason, "gate": verdict.reason, "promoted": verdict.promote,
                   "candidate_version_id": version_id}  # fmt: skip
        if fetched.revisions:
            details["restated"] = describe_revisions(fetched.revisions)
        run.commit(tx, RunOutcome(used, details))
    return used, version_id


def _curves(history: dict[str, Any] | None) -> dict[str, list[float | None]]:
    """Keras loss curves as JSON (non-finite values as null); reports draw them from the registry."""
    return {k: [float(v) if np.isfinite(v) else None for v in values] for k, values in (history or {}).items()}


def _fingerprint(params: JobParams) -> str:
    return f"{get_preset(params.preset).fingerprint()}-h{params.horizon}"


def finite_scores(values: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of ``values`` as floats (what the metrics table and JSON can hold)."""
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float) and np.isfinite(v)}
