"""One ticker, one as-of session: fetch → validate → score → decide → train → gate → forecast → store.

Plain functions over :mod:`forecaster` and :mod:`db`; the Prefect task in :mod:`flows.daily` only calls
:func:`run_ticker`. A run that fails at any step leaves the database as it was, apart from its own ``failed`` run
row: the new bundle is stored in the database, in the one transaction that registers it, and nowhere else.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from db.repository import NewModelVersion, Repository
from db.schema import ModelVersion
from flows.jobs.bundles import artifact_hint, load_version, pack_model
from flows.jobs.lifecycle import RunKey, RunOutcome, TrackedRun, tracked_run
from flows.settings import Settings
from forecaster.data.calendar import last_completed_session
from forecaster.data.revisions import PriceRevision, price_revisions, restated_dates
from forecaster.data.revisions import describe as describe_revisions
from forecaster.data.sources import parse_source
from forecaster.data.validation import ensure_valid
from forecaster.errors import FinalBarMissingError, SourceError
from forecaster.evaluation.metrics import LIVE, score
from forecaster.models.lstm import LSTMForecaster  # no TensorFlow at import: Keras loads on the first fit or load
from forecaster.models.networks import ArtifactError
from forecaster.models.presets import get_preset
from forecaster.policy import TrainingDecision
from forecaster.step import PolicyState, StepResult, Version, policy_step

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
    """The steps of a started run: load → the policy step → store; every write in one transaction at the end."""
    repo, tag = run.repo, f"{params.ticker} {params.as_of}"
    fetched = load_prices(repo, params, settings, fetch)
    prices = fetched.history
    logger.info("%s: prices: %d sessions, %d fetched", tag, len(prices), len(fetched.bars))
    outcomes = repo.live_outcomes(params.ticker, params.as_of, pending=fetched.bars, revisions=fetched.revisions)
    live = score(outcomes, metrics=LIVE)
    state, unusable, warning = load_state(repo, params, fetched.revisions)
    step = policy_step(state, prices, preset=get_preset(params.preset), horizon=params.horizon,
                       settings=settings.policy(), live=live, mode=params.retrain, label=tag)  # fmt: skip
    if step.decision is not None and warning is not None:
        step = replace(step, decision=TrainingDecision(step.decision.kind, f"{step.decision.reason} ({warning})"))
    logger.info("%s: forecast by version %s: %d horizons", tag, step.forecast_by.ref or "new", len(step.forecasts))
    artifact = None if step.candidate is None else pack_model(step.candidate)
    used, version_id = _persist(run, params, step, fetched, live, artifact, unusable)
    logger.info("%s: stored: run %d, model version %d", tag, run.id, used)
    forecasts = step.forecasts
    records = forecasts.assign(
        as_of=forecasts["as_of"].dt.strftime("%Y-%m-%d"), target_date=forecasts["target_date"].dt.strftime("%Y-%m-%d")
    ).to_dict("records")
    return JobResult(params.ticker, str(params.as_of), "succeeded", run.id, used, version_id, promoted(step),
                     "" if step.decision is None else step.decision.reason, gate_text(step), finite_scores(live),
                     records)  # fmt: skip


def promoted(step: StepResult) -> bool:
    """A new champion today: the challenger passed the gate, or the new model replaced no usable champion."""
    return (step.verdict is not None and step.verdict.promote) or step.candidate_role == "champion"


def gate_text(step: StepResult) -> str:
    """The gate's verdict in words ("" when nothing was graded)."""
    if step.verdict is not None:
        return step.verdict.reason
    return "no champion yet: the new model is the champion at once" if step.candidate_role == "champion" else ""


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


def load_state(
    repo: Repository, params: JobParams, revisions: tuple[PriceRevision, ...]
) -> tuple[PolicyState, list[int], str | None]:
    """The stored champion and pending challenger as the policy sees them (each model loaded once: database →
    verified cache), the ids of unusable versions, and a warning saying why they are unusable.

    A version is unusable when its artefact is broken, or when restated history (a split) put it in the old units
    and it learnt price levels; the policy then goes on without it (a full retrain when it was the champion).
    """
    versions: list[Version | None] = []
    unusable, warnings = [], []
    for role, row in (("champion", repo.champion(params.ticker)), ("challenger", repo.challenger(params.ticker))):
        if row is None:
            versions.append(None)
            continue
        if dt.date.fromisoformat(str(row.config.get("data_end", row.train_end))) > params.as_of:
            raise SourceError(
                f"the {role} of {params.ticker} (version {row.id}) was trained on data after {params.as_of}; "
                "runs must go forward in time (backfill from an empty database to replay history)"
            )
        model, problem = _usable_model(repo, row, revisions)
        if model is None:
            logger.warning("%s %s: %s version %d unusable: %s", params.ticker, params.as_of, role, row.id, problem)
            unusable.append(row.id)
            warnings.append(f"{role} artefact unusable: {problem}")
            versions.append(None)
            continue
        versions.append(Version(model, pd.Timestamp(row.config["data_end"]), pd.Timestamp(row.config["full_fit_as_of"]),
                                row.config["fingerprint"], partial(load_version, repo, row), row.id))  # fmt: skip
    last_full = repo.latest_full_fit(params.ticker)
    champion, challenger = versions
    state = PolicyState(champion, challenger, None if last_full is None else pd.Timestamp(last_full))
    return state, unusable, "; ".join(warnings) or None


def _usable_model(repo: Repository, row: ModelVersion,
                  revisions: tuple[PriceRevision, ...]) -> tuple[LSTMForecaster | None, str]:  # fmt: skip
    """The version's model, or None and why not."""
    try:
        model = load_version(repo, row)
    except ArtifactError as exc:
        return None, str(exc)
    if revisions and model.preset_.target == "price":
        return None, f"history restated ({describe_revisions(revisions)}): it learnt price levels in the old units"
    return model, ""


def _new_version(params: JobParams, step: StepResult, sha: str) -> NewModelVersion:
    """The registry row of the run's candidate (a challenger, or the champion when there was none)."""
    candidate = step.candidate
    assert candidate is not None and step.decision is not None
    new = step.state.champion if step.candidate_role == "champion" else step.state.challenger
    assert new is not None
    parent = None if step.candidate_role == "champion" else step.state.champion
    config = {"preset": candidate.preset_.to_dict(), "fingerprint": new.fingerprint, "horizon": params.horizon,
              "full_fit_as_of": str(new.full_fit_on.date()), "data_end": str(params.as_of),
              "role": step.candidate_role, "scope": "live"}  # fmt: skip
    metrics = {"validation": candidate.validation_, "decision": step.decision.reason,
               "history": _curves(candidate.history_), "fit_history": _curves(candidate.fit_history_)}  # fmt: skip
    return NewModelVersion(
        params.ticker, candidate.kind_, None if parent is None else parent.ref, candidate.preset_.name, config,
        candidate.train_start_.date(), candidate.train_end_.date(), metrics, artifact_hint(sha), sha,
    )  # fmt: skip


def _persist(run: TrackedRun, params: JobParams, step: StepResult, fetched: FetchedPrices, live: dict[str, float],
             artifact: tuple[bytes, str] | None, unusable: list[int]) -> tuple[int, int | None]:  # fmt: skip
    """Every write of the run in one transaction (the new model and its artefact, the gate's verdict, restated
    history included); returns the ids of the version that forecast today and of the new one."""
    run_id, verdict = run.id, step.verdict
    assert run_id is not None
    with run.repo.transaction() as tx:
        tx.write_prices(params.ticker, fetched.bars, params.source, fetched.revisions)
        tx.record_price_revisions(params.ticker, fetched.revisions, detected_on=params.as_of, run_id=run_id,
                                  source=params.source)  # fmt: skip
        for version_id in unusable + ([] if step.dropped is None else [step.dropped.ref]):
            tx.retire(version_id)
        if verdict is not None and step.graded is not None and step.graded.ref is not None:
            (tx.promote if verdict.promote else tx.retire)(step.graded.ref)
        new_id = None
        if step.candidate is not None and artifact is not None:
            new_id = tx.add_model_version(_new_version(params, step, artifact[1]), artifact=artifact[0])
            if step.candidate_role == "champion":
                tx.promote(new_id)
            tx.write_metrics(run_id, new_id, "validation", finite_scores(step.candidate.validation_), None,
                             params.as_of)  # fmt: skip
        used = step.forecast_by.ref if step.forecast_by.ref is not None else new_id
        assert used is not None
        if params.writes_forecasts:
            tx.upsert_forecasts(run_id, used, params.ticker, step.forecasts, scope="live", model="lstm")
        if live.get("n"):
            tx.write_metrics(run_id, used, "live", finite_scores(live), None, params.as_of)
        details: dict[str, Any] = step.trail() | {
            "decision": "" if step.decision is None else step.decision.reason,
            "promoted": promoted(step), "gate_text": gate_text(step), "candidate_version_id": new_id,
            "gate_scores": {k: finite_scores(v) for k, v in step.gate.items()},
        }  # fmt: skip
        if fetched.revisions:
            details["restated"] = describe_revisions(fetched.revisions)
        run.commit(tx, RunOutcome(used, details))
    return used, new_id


def _curves(history: dict[str, Any] | None) -> dict[str, list[float | None]]:
    """Keras loss curves as JSON (non-finite values as null); reports draw them from the registry."""
    return {k: [float(v) if np.isfinite(v) else None for v in values] for k, values in (history or {}).items()}


def finite_scores(values: dict[str, Any]) -> dict[str, float]:
    """The finite numbers of ``values`` as floats (what the metrics table and JSON can hold)."""
    return {k: float(v) for k, v in values.items() if isinstance(v, int | float) and np.isfinite(v)}
