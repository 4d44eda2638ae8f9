"""The champion/challenger policy's rules: what to train and the promotion gate, each with its reason in words."""

from __future__ import annotations

import math

import pytest

from forecaster.policy import ChampionFacts, PolicySettings, decide_training, gate

FP = "default-abc-h5"
LIMITS = {"max_age": 20, "drift_u2": 1.10}


def facts(age: int = 3, u2: float = 1.0, n: int = 20, attempt: int | None = None, fp: str = FP) -> ChampionFacts:
    return ChampionFacts(fp, sessions_since_full_fit=age, live_u2=u2, live_n=n, sessions_since_full_attempt=attempt)


@pytest.mark.parametrize(
    ("mode", "champion", "kind", "reason"),
    [
        ("full", facts(), "full", "full retrain requested"),
        ("auto", None, "full", "no usable champion"),
        ("finetune", None, "full", "no usable champion"),
        ("finetune", facts(age=99), "finetune", "fine-tune requested"),
        ("auto", facts(fp="other"), "full", "model config changed"),
        ("auto", facts(age=20), "full", "20 sessions old (max 20)"),
        ("auto", facts(u2=1.2), "full", "live U2 1.200 over 20 forecasts exceeds 1.10"),
        ("auto", facts(u2=1.2, n=9), "finetune", "3 sessions from its full fit"),  # too few to call drift
        ("auto", facts(u2=math.nan, n=0), "finetune", "live U2 n/a"),
        ("auto", facts(age=25, u2=1.5), "full", "live U2 1.500"),  # drift is named before age
        ("auto", facts(age=25, attempt=3), "finetune", "a full retrain 3 sessions ago was rejected by the gate"),
        ("auto", facts(age=45, attempt=20), "full", "45 sessions old"),
        ("auto", facts(age=25, attempt=3, u2=1.5), "full", "live U2 1.500"),  # drift still retrains at once
    ],
)
def test_decide_training(mode, champion, kind, reason):
    decision = decide_training(mode, champion, FP, **LIMITS)
    assert decision.kind == kind and reason in decision.reason


def test_unknown_mode_is_refused():
    with pytest.raises(ValueError, match="auto, full or finetune"):
        decide_training("sometimes", None, FP, **LIMITS)


def scores(pinball: float, rmse: float = 9.5, u2: float = 1.0) -> dict[str, float]:
    return {"pinball": pinball, "winkler80": 10 * pinball, "winkler95": 20 * pinball, "rmse": rmse, "u2": u2, "n": 40}


@pytest.mark.parametrize(
    ("challenger", "champion", "promote", "reason"),
    [
        (scores(0.90), scores(1.00), True, "promoted: pinball 0.9 vs champion 1"),
        (scores(1.00), scores(1.00), True, "promoted"),  # a tie promotes the fresher model
        (scores(1.01), scores(1.00), False, "rejected: pinball 1.01 vs champion 1"),
        (scores(1.01, rmse=5.0), scores(1.00, rmse=9.0), False, "RMSE 5.000 vs 9.000"),  # points alone do not decide
        (scores(0.50, u2=1.3), scores(1.00), False, "U2 1.300 vs naive exceeds 1.25"),
        (scores(math.nan), scores(1.00), False, "no pinball to compare"),
    ],
)
def test_gate(challenger, champion, promote, reason):
    verdict = gate(challenger, champion, metric="pinball", tolerance=1.0, max_u2=1.25)
    assert verdict.promote is promote and reason in verdict.reason


def test_the_gate_metric_and_tolerance_are_settings():
    assert gate(scores(1.04), scores(1.00), tolerance=1.05).promote
    assert not gate(scores(0.9, rmse=9.6), scores(1.0, rmse=9.5), metric="rmse").promote


@pytest.mark.parametrize(("knob", "value", "match"), [("gate_metric", "mape", "gate_metric must be one of"),
                                                      ("gate_window", 0, "gate_window must be >= 1")])  # fmt: skip
def test_bad_policy_settings_are_refused(knob, value, match):
    with pytest.raises(ValueError, match=match):
        PolicySettings(**{knob: value})
