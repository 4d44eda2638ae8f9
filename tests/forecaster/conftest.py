"""Fixtures of the forecasting-core tests: seeded synthetic prices and a fake ``yfinance.download``."""

from __future__ import annotations

from collections.abc import Callable

import pandas as pd
import pytest

from forecaster.data.sources import generate_prices


@pytest.fixture
def prices() -> pd.DataFrame:
    """40 clean sessions of synthetic prices, 2024-02-20 .. 2024-04-16."""
    return generate_prices(seed=0, n=40, start="2024-02-20")


class FakeDownload:
    """Stands in for ``yfinance.download``: answers from a queue (frames, or exceptions to raise)."""

    def __init__(self, answers: list[object]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[tuple, dict]] = []

    def __call__(self, *args: object, **kwargs: object) -> pd.DataFrame:
        self.calls.append((args, kwargs))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, BaseException):
            raise answer
        return answer  # type: ignore[return-value]


@pytest.fixture
def fake_download(monkeypatch: pytest.MonkeyPatch) -> Callable[..., FakeDownload]:
    """``fake_download(answer, ...)`` patches ``yfinance.download``; the last answer repeats forever."""

    def install(*answers: object) -> FakeDownload:
        fake = FakeDownload(list(answers))
        monkeypatch.setattr("yfinance.download", fake)
        return fake

    return install
