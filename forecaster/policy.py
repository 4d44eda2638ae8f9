"""The champion/challenger policy's rules: what to train (full retrain or fine-tune) and the promotion gate.

Pure functions that give their reasons in words. The step that applies them each session, for the daily job and
the backtest alike, is :func:`forecaster.step.policy_step`.

The gate grades out of sample only. A challenger is trained on the data up to the session it was made on and then
forecasts in shadow for ``gate_window`` sessions; :func:`gate` compares its forecasts of those sessions with the
champion's forecasts of the same targets (neither model trained on any of them), scored by a proper score of the
whole forecast (:data:`GATE_METRICS`), with RMSE and U2 beside it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

GATE_METRICS = ("pinball", "winkler80", "winkler95", "rmse")
GateMetric = Literal["pinball", "winkler80", "winkler95", "rmse"]


@dataclass(frozen=True)
class PolicySettings:
    """Every knob of the policy (the job's :class:`flows.settings.Settings` fills them).

    Attributes:
        max_age: a challenger is a full retrain when the champion's full fit is this many sessions old.
        drift_u2: ... or when the champion's live U2 over at least ``min_live`` matured forecasts exceeds this.
        min_live: matured live forecasts the drift rule needs.
        gate_window: sessions a challenger forecasts in shadow before the gate grades it; a new challenger is
            trained whenever none is pending, so this is also the training cadence.
        gate_tolerance: the challenger's gate score must be <= tolerance x the champion's.
        gate_metric: the gate score, averaged over horizons 1..H (:data:`GATE_METRICS`; lower is better).
        gate_max_u2: a challenger whose horizon-1 U2 vs naive exceeds this is never promoted.
    """

    max_age: int = 20
    drift_u2: float = 1.10
    min_live: int = 10
    gate_window: int = 10
    gate_tolerance: float = 1.0
    gate_metric: GateMetric = "pinball"
    gate_max_u2: float = 1.25

    def __post_init__(self) -> None:
        if self.gate_metric not in GATE_METRICS:
            raise ValueError(f"gate_metric must be one of {', '.join(GATE_METRICS)}, got '{self.gate_metric}'")
        if self.gate_window < 1:
            raise ValueError(f"gate_window must be >= 1, got {self.gate_window}")


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
    mode: str, champion: ChampionFacts | None, fingerprint: str, *, max_age: int, drift_u2: float, min_live: int = 10
) -> TrainingDecision:
    """``retrain=auto|full|finetune`` → full retrain or fine-tune, with the reason.

    ``auto`` retrains fully when there is no usable champion, the config changed, the champion's live U2 over at
    least ``min_live`` matured forecasts exceeds ``drift_u2``, or its last full fit is ``max_age`` sessions old or
    more, unless a full retrain that the gate rejected was tried within the last ``max_age`` sessions (a rejected
    one is not retried at every chance); otherwise it fine-tunes.
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
    if champion.live_n >= min_live and not math.isnan(champion.live_u2) and champion.live_u2 > drift_u2:
        return TrainingDecision(
            "full", f"live U2 {champion.live_u2:.3f} over {champion.live_n} forecasts exceeds {drift_u2:.2f}"
        )
    age, attempt, waiting = champion.sessions_since_full_fit, champion.sessions_since_full_attempt, ""
    if age >= max_age:
        if attempt is None or attempt >= max_age:
            return TrainingDecision("full", f"champion's full fit is {age} sessions old (max {max_age})")
        waiting = f", but a full retrain {attempt} sessions ago was rejected by the gate (next in {max_age - attempt})"
    u2 = "n/a" if math.isnan(champion.live_u2) else f"{champion.live_u2:.3f}"
    return TrainingDecision("finetune", f"champion is {age} sessions from its full fit{waiting}, live U2 {u2}")


@dataclass(frozen=True)
class GateDecision:
    """Whether the challenger replaces the champion, and why."""

    promote: bool
    reason: str


def gate(
    challenger: dict[str, float],
    champion: dict[str, float],
    *,
    metric: GateMetric = "pinball",
    tolerance: float = 1.0,
    max_u2: float = 1.25,
) -> GateDecision:
    """Promote when the challenger's ``metric`` is at most ``tolerance`` times the champion's on the same
    forecasts and its horizon-1 U2 against naive is at most ``max_u2``.

    Args:
        challenger, champion: gate scores on the same targets (:func:`forecaster.step.gate_scores`): ``metric``,
            ``rmse`` and ``u2`` (horizon 1) and ``n`` (forecasts graded).
    """
    c, h = challenger[metric], champion[metric]
    versus = (
        f"{metric} {c:.4g} vs champion {h:.4g} (RMSE {challenger['rmse']:.3f} vs {champion['rmse']:.3f}, "
        f"U2 {challenger['u2']:.3f} vs {champion['u2']:.3f}) over {int(challenger['n'])} forecasts"
    )
    if not math.isnan(challenger["u2"]) and challenger["u2"] > max_u2:
        return GateDecision(False, f"rejected: U2 {challenger['u2']:.3f} vs naive exceeds {max_u2:.2f}; {versus}")
    if math.isnan(c) or math.isnan(h):
        return GateDecision(False, f"rejected: no {metric} to compare; {versus}")
    if c <= tolerance * h:
        return GateDecision(True, f"promoted: {versus}")
    return GateDecision(False, f"rejected: {versus}")


def trail_counts(trail: list[dict[str, Any]]) -> dict[str, int]:
    """How often the policy did each thing over a trail (:meth:`StepResult.trail` records)."""
    return {
        "sessions": len(trail),
        "full_retrains": sum(t["trained"] == "full" for t in trail),
        "finetunes": sum(t["trained"] == "finetune" for t in trail),
        "promotions": sum(t["gate"] == "promoted" for t in trail),
        "rejections": sum(t["gate"] == "rejected" for t in trail),
        "fallbacks": sum(bool(t["fallback"]) for t in trail),
        "dropped": sum(bool(t["dropped"]) for t in trail),
    }
