"""The retrain policy and the promotion gate: every rule, with its reason in words."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from forecaster.policy import ChampionFacts, decide_training, gate, oos_scores

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


def scores(rmse: float, naive: float = 10.0) -> dict[str, float]:
    return {"rmse": rmse, "naive_rmse": naive, "u2": rmse / naive, "n": 60}


@pytest.mark.parametrize(
    ("candidate", "champion", "promote", "reason"),
    [
        (scores(11.0), None, True, "no champion yet"),
        (scores(9.0), scores(9.5), True, "promoted"),
        (scores(9.5), scores(9.5), True, "promoted"),  # a tie promotes the fresher model
        (scores(9.6), scores(9.5), False, "kept champion: candidate RMSE 9.600"),
        (scores(13.0), scores(14.0), False, "U2 1.300 vs naive exceeds 1.25"),
    ],
)
def test_gate(candidate, champion, promote, reason):
    verdict = gate(candidate, champion, tolerance=1.0, max_u2=1.25)
    assert verdict.promote is promote and reason in verdict.reason


def _track(dates, point, actual, seen_until):
    index = pd.DatetimeIndex(pd.to_datetime(dates), name="target_date")
    return pd.DataFrame(
        {"point": point, "naive": 100.0, "actual": actual, "seen_until": pd.Timestamp(seen_until)}, index=index
    )


def test_gate_scores_only_targets_neither_model_had_trained_on():
    """The candidate forecasts its own training targets perfectly; the gate must not see those rows."""
    days = ["2024-06-03", "2024-06-04", "2024-06-05", "2024-06-06"]
    in_sample = _track(days[:2], [101.0, 99.0], [101.0, 99.0], seen_until="2024-06-04")
    candidate = pd.concat([in_sample, _track(days[2:], [103.0, 103.0], [101.0, 99.0], seen_until="2024-06-04")])
    champion = _track(days, [101.5, 99.5, 101.5, 99.5], [101.0, 99.0, 101.0, 99.0], seen_until="2024-05-31")
    cand, champ = oos_scores(candidate, champion, last=60)
    assert cand["n"] == champ["n"] == 2
    assert cand["rmse"] == pytest.approx(math.sqrt((2.0**2 + 4.0**2) / 2)) and champ["rmse"] == pytest.approx(0.5)
    assert not gate(cand, champ, tolerance=1.0, max_u2=1.25).promote


def test_gate_without_champion_grades_the_newest_out_of_sample_rows():
    track = _track(["2024-06-03", "2024-06-04", "2024-06-05"], [100.0, 102.0, 103.0], [101.0, 101.0, 101.0],
                   seen_until="2024-05-31")  # fmt: skip
    cand, champ = oos_scores(track, None, last=2)
    assert champ is None and cand["n"] == 2 and cand["rmse"] == pytest.approx(math.sqrt((1.0 + 4.0) / 2))
