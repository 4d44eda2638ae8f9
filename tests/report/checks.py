"""Assertions shared by the report tests: summary.json against the database, HTML self-containment, PNG bytes."""

from __future__ import annotations

import base64
import io
import math
import re
from html.parser import HTMLParser

import pytest
import sqlalchemy as sa
from PIL import Image

from db.repository import Repository
from flows.report.render import FIGURES

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def assert_png(data: bytes) -> tuple[int, int]:
    """``data`` is a valid PNG image; returns its size."""
    assert data[:8] == PNG_MAGIC
    with Image.open(io.BytesIO(data)) as image:
        image.verify()
    with Image.open(io.BytesIO(data)) as image:
        return image.size


def assert_summary_matches_db(summary: dict, repo: Repository) -> None:
    """Every headline number of ``summary`` equals what plain SQL on the database gives (the source of truth)."""
    run_id = summary["freshness"]["run_id"]
    with repo.engine.connect() as conn:
        run = conn.execute(sa.text("SELECT ticker, as_of, model_version_id FROM runs WHERE id = :id"), {"id": run_id})
        ticker, as_of, version = run.one()
        key = {"t": ticker, "d": as_of, "v": version}
        forecasts = conn.execute(sa.text(
            "SELECT horizon, target_date, point, lo80, hi80, lo95, hi95, naive FROM forecasts WHERE ticker = :t "
            "AND as_of = :d AND model_version_id = :v AND scope = 'live' AND model = 'lstm' ORDER BY horizon"
        ), key).all()  # fmt: skip
        close = conn.execute(sa.text("SELECT close FROM prices WHERE ticker = :t AND date = :d"), key).scalar_one()
        h1 = conn.execute(sa.text(
            "SELECT actual, point, naive, lo80, hi80, lo95, hi95 FROM forecast_outcomes WHERE ticker = :t "
            "AND scope = 'live' AND model = 'lstm' AND horizon = 1 AND target_date <= :d "
            "ORDER BY target_date DESC LIMIT 20"
        ), key).all()  # fmt: skip
    assert (summary["ticker"], summary["as_of"], summary["model_version"]["id"]) == (ticker, str(as_of), version)
    assert summary["last_close"] == pytest.approx(close)
    assert len(summary["forecasts"]) == len(forecasts) > 0
    for got, row in zip(summary["forecasts"], forecasts, strict=True):
        assert (got["horizon"], got["target_date"]) == (row.horizon, str(row.target_date))
        for column in ("point", "lo80", "hi80", "lo95", "hi95", "naive"):
            assert got[column] == pytest.approx(getattr(row, column)), column
    window = summary["skill"]["windows"][0]
    assert window["sessions"] == 20 and window["n"] == len(h1)
    if h1:
        n = len(h1)
        rmse = math.sqrt(sum((r.actual - r.point) ** 2 for r in h1) / n)
        naive = math.sqrt(sum((r.actual - r.naive) ** 2 for r in h1) / n)
        assert window["model"]["rmse"] == pytest.approx(rmse)
        assert window["naive"]["rmse"] == pytest.approx(naive)
        assert window["model"]["mae"] == pytest.approx(sum(abs(r.actual - r.point) for r in h1) / n)
        assert window["model"]["coverage80"] == pytest.approx(sum(r.lo80 <= r.actual <= r.hi80 for r in h1) / n)
        assert window["model"]["coverage95"] == pytest.approx(sum(r.lo95 <= r.actual <= r.hi95 for r in h1) / n)
        hits = sum((r.point - r.naive) * (r.actual - r.naive) > 0 for r in h1)
        assert window["model"]["directional_accuracy"] == pytest.approx(hits / n)
        miss = sum(max(r.lo80 - r.actual, 0.0) + max(r.actual - r.hi80, 0.0) for r in h1)
        width = sum(r.hi80 - r.lo80 for r in h1)
        assert window["model"]["winkler80"] == pytest.approx((width + miss / 0.1) / n)


class _Collector(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.style: list[str] = []
        self._in_style = False

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        self._in_style = tag == "style"

    def handle_endtag(self, tag):
        self._in_style = False if tag == "style" else self._in_style

    def handle_data(self, data):
        (self.style if self._in_style else self.text).append(data)


EXTERNAL = re.compile(r"(https?:|ftp:|//[a-z0-9])", re.IGNORECASE)


def assert_self_contained(html: str, expected_images: int = len(FIGURES)) -> str:
    """The HTML parses, every <img> is an embedded PNG data URI, and nothing points outside; returns its text."""
    parser = _Collector()
    parser.feed(html)
    parser.close()
    tags = [t for t, _ in parser.tags]
    assert tags[:1] == ["html"] and "body" in tags
    assert "script" not in tags and "link" not in tags and "iframe" not in tags
    images = [attrs for tag, attrs in parser.tags if tag == "img"]
    assert len(images) == expected_images
    for attrs in images:
        src = attrs.get("src") or ""
        assert src.startswith("data:image/png;base64,"), src[:60]
        assert_png(base64.b64decode(src.split(",", 1)[1], validate=True))
        assert attrs.get("alt")
    for tag, attrs in parser.tags:
        for name, value in attrs.items():
            if name in ("src", "href", "action", "background", "poster") and value:
                assert not EXTERNAL.match(value), f"<{tag} {name}={value[:80]}>"
    style = "".join(parser.style)
    assert "url(" not in style and "@import" not in style
    assert not re.search(r"(https?|ftp)://", html), "no external URL anywhere"
    return " ".join(" ".join(parser.text).split())
