"""``reports/index.html``: regenerated with every report, newest first, self-contained, and browsable in Chromium."""

from __future__ import annotations

import html as html_lib
import json
import os
import re
import subprocess
from pathlib import Path

import numpy as np

from flows.report.archive import make_report
from flows.report.index import index_rows, write_index
from flows.settings import Settings
from tests.report.test_screenshot import BAND80_RGB, chromium, screenshot


def _rows(html: str) -> list[list[str]]:
    body = html.split("<tbody>", 1)[1].split("</tbody>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body, re.S)
    return [[html_lib.unescape(cell) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)] for row in rows]


def test_every_report_regenerates_the_index_newest_first_with_the_reports_numbers(repo, seeded):
    days = seeded.days[-3:]
    for day in (days[1], days[0], days[2]):  # any order: the index sorts by day
        make_report(repo, Settings(), "TSLA", day)
    reports = Settings().reports_dir
    html = (reports / "index.html").read_text()
    rows = _rows(html)
    assert [r[0] for r in rows] == [str(d) for d in reversed(days)]
    for row, day in zip(rows, reversed(days), strict=True):
        summary = json.loads((reports / str(day) / "TSLA" / "summary.json").read_text())
        window = summary["skill"]["windows"][0]
        assert row[1] == "TSLA" and row[2] == summary["skill"]["verdict"]
        assert row[3] == f"{window['model']['u2']:.3f}" and row[4] == f"{100 * window['model']['coverage80']:.0f}%"
        assert f'<a href="{day}/TSLA/report.html">' in row[6]
    assert not list(reports.glob(".index.html.tmp-*")), "written atomically: no temporary file left"


def test_the_index_is_self_contained_with_a_whole_history_track_record(repo, seeded):
    make_report(repo, Settings(), "TSLA", seeded.days[-1])
    html = (Settings().reports_dir / "index.html").read_text()
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", html), "no external URL"
    assert html.count('src="data:image/png;base64,') == 1, "one embedded track-record figure per ticker"


def test_a_report_redraws_only_its_own_tickers_track_record_in_the_index(repo, seeded, monkeypatch):
    """Issue #22: with N tickers, each report drew all N index figures (N² per run); now only its own."""
    from flows.report import index

    day = seeded.days[-1]
    reports = Settings().reports_dir
    make_report(repo, Settings(), "TSLA", day)
    summary = json.loads((reports / str(day) / "TSLA" / "summary.json").read_text())
    for ticker in ("AAA", "BBB"):  # two more tickers in the archive, from copies of TSLA's report
        (reports / str(day) / ticker).mkdir()
        (reports / str(day) / ticker / "summary.json").write_text(json.dumps(summary | {"ticker": ticker}))
    write_index(repo, reports)
    drawn: list[str] = []
    real = index.track_record_png
    monkeypatch.setattr(index, "track_record_png", lambda r, t, d: drawn.append(t) or real(r, t, d))
    make_report(repo, Settings(), "TSLA", day)
    assert drawn == ["TSLA"], "only the ticker whose report changed is redrawn"
    write_index(repo, reports)
    assert drawn == ["TSLA"], "an unchanged archive redraws nothing"
    html = (reports / "index.html").read_text()
    assert html.count('src="data:image/png;base64,') == 3, "still one track-record figure per ticker"


def test_a_damaged_summary_is_skipped_not_fatal(repo, seeded, tmp_path):
    make_report(repo, Settings(), "TSLA", seeded.days[-1])
    reports = Settings().reports_dir
    bad = reports / "2000-01-03" / "TSLA"
    bad.mkdir(parents=True)
    (bad / "summary.json").write_text("{not json")
    assert [r["as_of"] for r in index_rows(reports)] == [str(seeded.days[-1])]
    assert write_index(repo, reports).exists()


def _dump_dom(url: str, profile: Path) -> str:
    cmd = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", f"--user-data-dir={profile}",
           "--dump-dom", url]  # fmt: skip
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=os.environ | {"HOME": str(profile)})
    assert done.returncode == 0 and "<table" in done.stdout, done.stderr[-1500:]
    return done.stdout


def test_chromium_opens_the_index_follows_a_link_and_the_days_report_renders(repo, seeded, tmp_path):
    for day in seeded.days[-2:]:
        make_report(repo, Settings(), "TSLA", day)
    index = Settings().reports_dir / "index.html"
    dom = _dump_dom(index.as_uri(), tmp_path / "profile")
    links = re.findall(r'<a href="([^"]+)">', dom)
    assert links == [f"{d}/TSLA/report.html" for d in reversed(seeded.days[-2:])]
    target = (index.parent / links[-1]).resolve()  # the older day, as a relative link resolves from the index
    assert "TSLA forecast as of" in _dump_dom(target.as_uri(), tmp_path / "profile")
    pixels = screenshot(target, tmp_path / "report.png", tmp_path / "profile")
    band80 = np.abs(pixels.astype(int) - BAND80_RGB).sum(axis=2) < 25
    assert pixels.mean(axis=2).std() > 20 and band80.sum() > 1_000, "the linked report renders with its figures"
