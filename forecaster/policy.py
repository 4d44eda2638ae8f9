"""The retrain policy (full retrain or fine-tune) and the promotion gate: pure functions, their reasons in words.

The gate grades out of sample only: :func:`oos_scores` scores each version's track record
(:meth:`forecaster.models.lstm.LSTMForecaster.track_record`) on the newest target dates that both forecast before
they had
trained on them, so a candidate is never graded on the sessions it has just been fitted to.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import pandas as pd

from forecaster.evaluation.metrics import score


@dataclass(frozen=True)
class TrainingDecision:
    """What to train today and why."""

    kind: Literal["full", "finetune"]
    reason: str


@dataclass(frozen=True)
class ChampionFacts:
    """What the policy needs to know about the current champion."""

    fingerprint: str
    sessions_since_full_fit: int
    live_u2: float  # NaN when nothing has matured yet
    live_n: int
    sessions_since_full_attempt: int | None = None  # a later full retrain that the gate rejected, if any


def decide_training(
    mode: str,
    champion: ChampionFacts | None,
    fingerprint: str,
    *,
    max_age: int,
    drift_u2: float,
    min_live: int = 10,
) -> TrainingDecision:
    """``retrain=auto|full|finetune`` → full retrain or fine-tune, with the reason.

    ``auto`` retrains fully when there is no usable champion, the config changed, the champion's last full fit is
    ``max_age`` sessions old or more (and no full retrain was rejected by the gate in the last ``max_age``
    sessions: a rejected one is not retried every day), or its live U2 over at least ``min_live`` matured forecasts
    exceeds ``drift_u2``; otherwise it fine-tunes.
    """
    if mode not in ("auto", "full", "finetune"):
        raise ValueError(f"retrain must be auto, full or finetune, got '{mode}'")
    if mode == "full":
        return TrainingDecision("full", "full retrain requested")
    if champion is None:
        return TrainingDecision("full", "no usable champion yet")
    if mode == "finetune":
        return TrainingDecision("finetune", "fine-tune requested")
    if champion.fingerprint != fingerprint:
        return TrainingDecision("full", f"model config changed ({champion.fingerprint} -> {fingerprint})")
    age, attempt, waiting = champion.sessions_since_full_fit, champion.sessions_since_full_attempt, ""
    if age >= max_age:
        if attempt is None or attempt >= max_age:
            return TrainingDecision("full", f"champion's full fit is {age} sessions old (max {max_age})")
        waiting = f", but a full retrain {attempt} sessions ago was rejected by the gate (next in {max_age - attempt})"
    if champion.live_n >= min_live and not math.isnan(champion.live_u2) and champion.live_u2 > drift_u2:
        return TrainingDecision(
            "full", f"live U2 {champion.live_u2:.3f} over {champion.live_n} forecasts exceeds {drift_u2:.2f}"
        )
    u2 = "n/a" if math.isnan(champion.live_u2) else f"{champion.live_u2:.3f}"
    return TrainingDecision("finetune", f"champion is {age} sessions from its full fit{waiting}, live U2 {u2}")


@dataclass(frozen=True)
class GateDecision:
    """Whether the candidate replaces the champion, and why."""

    promote: bool
    reason: str


def gate(
    candidate: dict[str, float], champion: dict[str, float] | None, *, tolerance: float, max_u2: float
) -> GateDecision:
    """Promote when there is no champion, or when the candidate's RMSE on the recent slice is within ``tolerance``
    times the champion's and its U2 against naive on that slice is at most ``max_u2``.

    Args:
        candidate, champion: horizon-1 scores on the same recent slice: ``rmse``, ``naive_rmse``, ``u2``, ``n``.
    """
    c_rmse, c_u2 = candidate["rmse"], candidate["u2"]
    if champion is None:
        return GateDecision(True, f"no champion yet; candidate RMSE {c_rmse:.3f}, U2 {c_u2:.3f} vs naive")
    h_rmse = champion["rmse"]
    versus = f"candidate RMSE {c_rmse:.3f} (U2 {c_u2:.3f}) vs champion {h_rmse:.3f} (U2 {champion['u2']:.3f})"
    if c_u2 > max_u2:
        return GateDecision(False, f"kept champion: candidate U2 {c_u2:.3f} vs naive exceeds {max_u2:.2f}; {versus}")
    if c_rmse <= tolerance * h_rmse:
        return GateDecision(True, f"promoted: {versus} over {int(candidate['n'])} sessions")
    return GateDecision(False, f"kept champion: {versus} over {int(candidate['n'])} sessions")


def out_of_sample(track: pd.DataFrame) -> pd.DataFrame:
    """The rows of a track record whose target is after everything the model had trained on when it forecast it."""
    return track[track.index > pd.DatetimeIndex(track["seen_until"])]


def oos_scores(
    candidate: pd.DataFrame, champion: pd.DataFrame | None, last: int
) -> tuple[dict[str, float], dict[str, float] | None]:
    """Horizon-1 scores (``rmse``, ``naive_rmse``, ``u2``, ``n``) of two track records on the same sessions.

    Only out-of-sample rows count (:func:`out_of_sample`); with a champion, only the newest ``last`` target dates
    that both records hold. A champion without any such date is returned as ``None`` (nothing to compare).
    """
    cand = out_of_sample(candidate)
    champ = None if champion is None else out_of_sample(champion)
    if champ is not None:
        common = cand.index.intersection(champ.index)
        if len(common) == 0:
            champ = None
        else:
            cand, champ = cand.loc[common[-last:]], champ.loc[common[-last:]]
    if champ is None:
        cand = cand.tail(last)
    return _track_scores(cand), None if champ is None else _track_scores(champ)


def _track_scores(track: pd.DataFrame) -> dict[str, float]:
    """Horizon-1 RMSE, naive RMSE and U2 of a track record, from the one scorer."""
    if len(track) == 0:
        raise ValueError("the candidate has no out-of-sample forecasts to be graded on")
    return score(track, metrics=("rmse", "naive_rmse", "u2"))
