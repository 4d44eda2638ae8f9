"""The one policy step: what production does each session, and what ``backtest --policy production`` replays.

A session's step takes the stored champion and challenger (or none), the prices up to the as-of and the policy
settings, and returns what to store and what to publish:

1. **Grade.** A challenger that has forecast in shadow for ``gate_window`` sessions is graded against the
   champion: both forecast every origin from the challenger's training day up to yesterday, using only the prices
   up to each origin and no training (:func:`shadow_forecasts`), and the gate compares the two on the targets
   matured by today (:func:`gate_scores`, :func:`forecaster.policy.gate`). Neither model trained on any of those
   targets, so a fine-tune is graded as honestly as a full retrain. Promoted: the challenger is the champion
   from today; rejected: the champion keeps forecasting (the fallback).
2. **Train.** When no challenger is pending (or a retrain is requested), a new one is trained on all prices up to
   today: a full fit or the champion fine-tuned (:func:`forecaster.policy.decide_training`). Without a usable
   champion it becomes the champion at once.
3. **Forecast.** The champion, moved to today's origin without training, forecasts ``horizon`` sessions.

The step never changes the models it is given: the daily job hands it the versions loaded from the database, the
backtest (:class:`PolicyForecaster`) the versions it made earlier, and both get the same forecasts bit for bit.
"""

from __future__ import annotations

import copy
import logging
import math
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Self

import numpy as np
import pandas as pd

from forecaster.evaluation.metrics import LIVE, score, score_by_horizon
from forecaster.models.lstm import LSTMForecaster
from forecaster.models.networks import bundle_from_bytes
from forecaster.models.presets import Preset
from forecaster.policy import (
    ChampionFacts,
    GateDecision,
    PolicySettings,
    TrainingDecision,
    decide_training,
    gate,
    trail_counts,
)

logger = logging.getLogger("forecaster.step")


@dataclass(frozen=True)
class Version:
    """A stored model version as the policy sees it.

    Attributes:
        model: the model as stored (its origin is ``made_on``); the step never changes it.
        made_on: the session it was trained on, the last it has seen.
        full_fit_on: the session of the full fit it descends from.
        fingerprint: the preset and horizon it was built with (:func:`fingerprint`).
        load: a fresh, trainable copy of ``model`` (the daily job reads the database, the backtest its bytes).
        ref: the caller's handle (the registry id).
    """

    model: LSTMForecaster
    made_on: pd.Timestamp
    full_fit_on: pd.Timestamp
    fingerprint: str
    load: Callable[[], LSTMForecaster]
    ref: Any = None


@dataclass(frozen=True)
class PolicyState:
    """What the policy holds between sessions: the versions, and the session of the newest full retrain (promoted
    or not), so that a rejected one is not retried at every chance."""

    champion: Version | None = None
    challenger: Version | None = None
    last_full: pd.Timestamp | None = None


@dataclass(frozen=True)
class StepResult:
    """What one session's step decided and produced.

    Attributes:
        state: the versions after the step (a new candidate included, with ``ref=None``).
        decision: what was trained today, or None.
        candidate: the model trained today (to be stored), or None.
        candidate_role: ``champion`` when it replaced no usable champion, else ``challenger``.
        graded: the challenger graded today, or None.
        verdict: the gate's verdict on it, or None.
        gate: the gate scores of both (``challenger``, ``champion``), when graded.
        dropped: the pending challenger a requested retrain replaced, or None.
        forecast_by: the version whose forecasts are published today (``state.champion``).
        forecasts: today's forecasts (:data:`forecaster.models.base.FORECAST_COLUMNS`).
    """

    state: PolicyState
    decision: TrainingDecision | None
    candidate: LSTMForecaster | None
    candidate_role: Literal["champion", "challenger"] | None
    graded: Version | None
    verdict: GateDecision | None
    gate: dict[str, dict[str, float]]
    dropped: Version | None
    forecast_by: Version
    forecasts: pd.DataFrame

    def trail(self) -> dict[str, Any]:
        """The step's decisions in one JSON-ready record (the policy trail)."""
        return {
            "as_of": str(self.forecasts["as_of"].iloc[0].date()),
            "trained": None if self.decision is None else self.decision.kind,
            "reason": None if self.decision is None else self.decision.reason,
            "gate": None if self.verdict is None else ("promoted" if self.verdict.promote else "rejected"),
            "gate_reason": None if self.verdict is None else self.verdict.reason,
            "fallback": self.verdict is not None and not self.verdict.promote,
            "dropped": self.dropped is not None,
        }


def fingerprint(preset: Preset, horizon: int) -> str:
    """What must match for a champion to be fine-tuned rather than replaced: the preset and the horizon."""
    return f"{preset.fingerprint()}-h{horizon}"


def sessions_after(prices: pd.DataFrame, day: pd.Timestamp) -> int:
    """Sessions (rows of ``prices``) after ``day``."""
    return int((prices.index > pd.Timestamp(day)).sum())


def policy_step(
    state: PolicyState,
    prices: pd.DataFrame,
    *,
    preset: Preset,
    horizon: int,
    settings: PolicySettings,
    live: dict[str, float],
    mode: str = "auto",
    label: str = "",
) -> StepResult:
    """One session of the champion/challenger policy (see the module docstring).

    Args:
        state: the stored champion and challenger; either may be None (none yet, or unusable).
        prices: validated prices up to the as-of (the last row).
        preset, horizon: what a new full retrain builds.
        settings: the policy's knobs.
        live: the champion's live scores up to the as-of (:data:`forecaster.evaluation.metrics.LIVE`).
        mode: ``auto``, or ``full``/``finetune`` to train such a challenger today whatever is pending.
        label: the prefix of the step's log lines (the daily job's ticker and session).
    """
    as_of = prices.index[-1]
    champion, challenger, last_full = state.champion, state.challenger, state.last_full
    graded, verdict, scores = None, None, {}
    if challenger is not None and champion is None:
        graded = challenger
        champion, challenger = challenger, None
        verdict = GateDecision(True, "promoted: there is no usable champion to compare with")
    elif (
        challenger is not None
        and champion is not None
        and sessions_after(prices, challenger.made_on) >= (settings.gate_window)
    ):
        graded = challenger
        scores = {
            "challenger": gate_scores(shadow_forecasts(challenger.model, prices, challenger.made_on, horizon)),
            "champion": gate_scores(shadow_forecasts(champion.model, prices, challenger.made_on, horizon)),
        }
        verdict = gate(scores["challenger"], scores["champion"], metric=settings.gate_metric,
                       tolerance=settings.gate_tolerance, max_u2=settings.gate_max_u2)  # fmt: skip
        champion, challenger = (challenger, None) if verdict.promote else (champion, None)
    if verdict is not None:
        logger.info("%sgate: %s", label and f"{label}: ", verdict.reason)

    decision = candidate = dropped = None
    role: Literal["champion", "challenger"] | None = None
    if challenger is None or mode != "auto":
        dropped, wanted = challenger, fingerprint(preset, horizon)
        facts = _facts(champion, state.last_full, prices, live)
        decision = decide_training(mode, facts, wanted, max_age=settings.max_age, drift_u2=settings.drift_u2,
                                   min_live=settings.min_live)  # fmt: skip
        logger.info("%s%s retrain: %s", label and f"{label}: ", decision.kind, decision.reason)
        if decision.kind == "full" or champion is None:
            candidate = LSTMForecaster(preset, horizon=horizon).fit(prices)
            full_fit_on = last_full = as_of
        else:
            candidate = champion.load().update(prices, finetune=True)
            full_fit_on = champion.full_fit_on
        new = Version(candidate, as_of, full_fit_on, wanted, bytes_loader(candidate))
        role = "champion" if champion is None else "challenger"
        champion, challenger = (new, None) if champion is None else (champion, new)

    assert champion is not None
    forecasts = moved_to(champion.model, prices).predict(horizon)
    state = PolicyState(champion, challenger, last_full)
    return StepResult(state, decision, candidate, role, graded, verdict, scores, dropped, champion, forecasts)


def _facts(champion: Version | None, last_full: pd.Timestamp | None, prices: pd.DataFrame,
           live: dict[str, float]) -> ChampionFacts | None:  # fmt: skip
    if champion is None:
        return None
    attempt = None if last_full is None or last_full <= champion.full_fit_on else sessions_after(prices, last_full)
    return ChampionFacts(
        fingerprint=champion.fingerprint,
        sessions_since_full_fit=sessions_after(prices, champion.full_fit_on),
        live_u2=float(live.get("u2", math.nan)),
        live_n=int(np.nan_to_num(live.get("n", 0))),
        sessions_since_full_attempt=attempt,
    )


def moved_to(model: LSTMForecaster, prices: pd.DataFrame) -> LSTMForecaster:
    """A copy of ``model`` with its origin moved to the last row of ``prices`` (scored, never trained); ``model``
    itself is unchanged (the copy shares its network, which only predicts)."""
    return copy.copy(model).update(prices, finetune=False)


def shadow_forecasts(model: LSTMForecaster, prices: pd.DataFrame, since: pd.Timestamp, horizon: int) -> pd.DataFrame:
    """Forecasts of ``model`` from every origin in ``[since, as-of)`` with no training, joined to the closes; only
    those whose target has matured by the as-of (the last row of ``prices``)."""
    as_of, working, frames = prices.index[-1], copy.copy(model), []
    for origin in prices.index[(prices.index >= pd.Timestamp(since)) & (prices.index < as_of)]:
        working.update(prices.loc[:origin], finetune=False)
        frames.append(working.predict(horizon))
    out = pd.concat(frames, ignore_index=True)
    out["actual"] = prices["close"].reindex(out["target_date"]).to_numpy()
    return out[out["actual"].notna()].reset_index(drop=True)


def gate_scores(forecasts: pd.DataFrame) -> dict[str, float]:
    """The gate's scores of one model's shadow forecasts: each interval score and the pinball loss averaged over
    the horizons, RMSE and U2 of horizon 1, and ``n`` (forecasts graded)."""
    per_h = score_by_horizon(forecasts, metrics=("rmse", "u2", "pinball", "winkler80", "winkler95"))
    mean = {m: float(np.mean([s[m] for s in per_h.values()])) for m in ("pinball", "winkler80", "winkler95")}
    first = per_h[min(per_h)]
    return mean | {"rmse": first["rmse"], "u2": first["u2"], "n": float(len(forecasts))}


def bytes_loader(model: LSTMForecaster) -> Callable[[], LSTMForecaster]:
    """A fresh copy of ``model`` read back from its bundle bytes, as the daily job reads it from the database."""

    def load() -> LSTMForecaster:
        with tempfile.TemporaryDirectory(prefix="tsla-policy-") as tmp:
            return LSTMForecaster.load(bundle_from_bytes(model.to_bytes(), Path(tmp) / "bundle"))

    return load


@dataclass
class PolicyForecaster:
    """The production policy as a :class:`forecaster.models.base.Forecaster`, for ``walk_forward``: each ``fit`` or
    ``update`` is one :func:`policy_step`, and ``predict`` returns that session's published forecasts.

    The live scores that the drift rule reads come from the forecasts this object published, exactly as the daily
    job reads them from the ``forecast_outcomes`` view (the newest ``live_window`` matured horizon-1 rows).
    """

    preset: Preset
    horizon: int
    settings: PolicySettings
    mode: str = "auto"
    live_window: int = 20
    name: str = "lstm"
    schedules_itself: bool = True  # walk_forward fits it once; the policy decides when to retrain
    state_: PolicyState = field(default_factory=PolicyState)
    trail_: list[dict[str, Any]] = field(default_factory=list)
    published_: list[pd.DataFrame] = field(default_factory=list)
    fit_history_: dict[str, list[float]] | None = None

    def fit(self, prices: pd.DataFrame) -> Self:
        """Start from no champion at the last row of ``prices``."""
        self.state_, self.trail_, self.published_ = PolicyState(), [], []
        return self._step(prices)

    def update(self, prices: pd.DataFrame, *, finetune: bool = True) -> Self:
        """One session of the policy at the last row of ``prices`` (``finetune`` is the policy's to decide)."""
        return self._step(prices)

    def predict(self, horizon: int) -> pd.DataFrame:
        """The forecasts published at the current origin."""
        return self.published_[-1].head(horizon).reset_index(drop=True)

    def _step(self, prices: pd.DataFrame) -> Self:
        result = policy_step(self.state_, prices, preset=self.preset, horizon=self.horizon, settings=self.settings,
                             live=self.live_scores(prices), mode=self.mode)  # fmt: skip
        self.state_ = result.state
        self.trail_.append(result.trail())
        self.published_.append(result.forecasts)
        if result.candidate is not None and result.candidate.kind_ == "full":
            self.fit_history_ = result.candidate.fit_history_
        return self

    def live_scores(self, prices: pd.DataFrame) -> dict[str, float]:
        """:data:`~forecaster.evaluation.metrics.LIVE` scores of the newest matured horizon-1 forecasts."""
        if not self.published_:
            return score(pd.DataFrame(columns=["actual", "point", "naive"]), metrics=LIVE)
        h1 = pd.concat([f[f["horizon"] == 1] for f in self.published_], ignore_index=True)
        h1 = h1[h1["target_date"] <= prices.index[-1]].iloc[::-1].head(self.live_window)
        h1 = h1.assign(actual=prices["close"].reindex(h1["target_date"]).to_numpy())
        return score(h1, metrics=LIVE)

    @property
    def policy_counts(self) -> dict[str, int]:
        """Counts of the trail: full retrains, fine-tunes, promotions, rejections (each a fallback), dropped."""
        return trail_counts(self.trail_)
