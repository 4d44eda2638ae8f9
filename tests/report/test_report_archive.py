"""The report built from the database alone: self-contained HTML, summary.json equal to SQL, the archive folder
replaced atomically, warnings shown, and clear errors for a day without a run."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from flows.report import archive as report_mod
from flows.report.archive import archive_dir, make_report
from flows.report.data import ReportError
from flows.report.render import Report
from flows.settings import Settings
from tests.report.checks import assert_png, assert_self_contained, assert_summary_matches_db

FIGURES = {"forecast_fan.png", "forecast_zoom.png", "track_record.png", "track_record_h5.png", "rolling_skill.png",
           "loss_differential.png", "calibration.png", "pit.png", "interval_width.png", "residuals.png",
           "training.png"}  # fmt: skip


def test_archive_holds_self_contained_html_summary_and_every_png(repo, seeded, home):
    archived = make_report(repo, Settings(), "TSLA")
    assert archived.path == home / "reports" / f"{seeded.days[-1]:%Y-%m-%d}" / "TSLA"
    assert {p.name for p in archived.path.iterdir()} == FIGURES | {"report.html", "summary.json"}
    for name in FIGURES:
        width, _ = assert_png((archived.path / name).read_bytes())
        assert 850 <= width <= 950, f"{name} is {width} px wide; email width is about 900"
    text = assert_self_contained(archived.html_path.read_text(encoding="utf-8"))
    assert "TSLA forecast as of" in text and "How good is it?" in text
    assert "Last 20: model" in text and "Last 60: model" in text and "U2 = RMSE / naive RMSE" in text
    assert "kept champion: candidate RMSE 4.400" in text, "the gate decision of the day and why"
    assert "Data freshness" in text and "synthetic:0" in text
    assert "80% interval coverage (n forecasts)" in text and "(n=20)" in text and "(n=60)" in text


def test_summary_json_matches_the_database(repo, seeded):
    archived = make_report(repo, Settings(), "TSLA", seeded.days[-1])
    summary = json.loads((archived.path / "summary.json").read_text())
    assert summary == archived.report.summary
    assert_summary_matches_db(summary, repo)
    assert summary["skill"]["windows"][0]["n"] == 20 and summary["skill"]["windows"][1]["n"] == 60
    assert summary["model_version"]["parent_id"] == seeded.parent_id
    assert [c["horizon"] for c in summary["coverage_by_horizon"]] == [1, 2, 3, 4, 5]


def test_an_older_day_can_be_rebuilt_and_lands_in_its_own_folder(repo, seeded, home):
    day = seeded.days[-10]
    archived = make_report(repo, Settings(), "TSLA", day)
    assert archived.path == archive_dir(home / "reports", day, "TSLA")
    summary = archived.report.summary
    assert summary["as_of"] == str(day) and summary["freshness"]["run_id"] == seeded.run_ids[day]
    assert_summary_matches_db(summary, repo)


def test_rerun_replaces_the_folder_and_leaves_no_temporary_folders(repo, seeded):
    first = make_report(repo, Settings(), "TSLA")
    before = json.loads((first.path / "summary.json").read_text())
    (first.path / "stale-extra.txt").write_text("from an older version of the report")
    second = make_report(repo, Settings(), "TSLA")
    assert second.path == first.path
    assert not (second.path / "stale-extra.txt").exists(), "the whole folder is replaced"
    assert json.loads((second.path / "summary.json").read_text())["forecasts"] == before["forecasts"]
    assert [p.name for p in second.path.parent.iterdir()] == ["TSLA"]


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2", "rename-aside"])
def test_a_failure_while_writing_keeps_the_previous_report_intact(repo, seeded, monkeypatch, exchange):
    first = make_report(repo, Settings(), "TSLA")
    snapshot = {p.name: p.read_bytes() for p in first.path.iterdir()}
    if not exchange:
        monkeypatch.setattr(report_mod, "_exchange", lambda a, b: False)
        make_report(repo, Settings(), "TSLA")  # the fallback swap works too
        snapshot = {p.name: p.read_bytes() for p in first.path.iterdir()}

    def broken(self, image_src=None):
        raise RuntimeError("disk full")

    monkeypatch.setattr(Report, "html", broken)
    with pytest.raises(RuntimeError, match="disk full"):
        make_report(repo, Settings(), "TSLA")
    assert {p.name: p.read_bytes() for p in first.path.iterdir()} == snapshot
    assert [p.name for p in first.path.parent.iterdir()] == ["TSLA"], "no half-written folder is left"


def test_warnings_on_the_run_are_shown_in_html_text_and_summary(repo, seeded):
    repo.record_run_warning(seeded.run_ids[seeded.days[-1]], "email delivery failed after 3 attempt(s): boom")
    archived = make_report(repo, Settings(), "TSLA")
    assert archived.report.summary["warnings"][0] == "email delivery failed after 3 attempt(s): boom"
    n = len(archived.report.summary["warnings"])
    assert f"{n} warning" in archived.html_path.read_text() and "boom" in archived.html_path.read_text()
    assert "boom" in archived.report.text and archived.report.subject.endswith(f"[{n} warning{'s' * (n > 1)}]")


def test_text_part_and_subject_carry_the_headline_numbers(repo, seeded):
    report = make_report(repo, Settings(), "TSLA").report
    first = report.summary["forecasts"][0]
    assert report.subject.startswith(f"TSLA {seeded.days[-1]}: next close ${first['point']:,.2f} (80% $")
    assert "over 20 sessions" in report.subject
    assert f"${first['point']:,.2f}" in report.text and report.summary["skill"]["verdict"] in report.text
    assert "HOW GOOD IS IT" in report.text and "last 60 sessions (60 scored)" in report.text


def test_a_day_without_a_run_is_a_clear_error(repo, seeded):
    latest = seeded.days[-1]
    before = seeded.prices.index[-len(seeded.days) - 1].date()
    with pytest.raises(ReportError, match=rf"no report for TSLA on {before}: no daily run succeeded that day "
                                          rf"\(latest succeeded run: {latest}\)"):  # fmt: skip
        make_report(repo, Settings(), "TSLA", before)
    saturday = latest + dt.timedelta(days=(5 - latest.weekday()) % 7)
    with pytest.raises(ReportError, match=f"no report for TSLA on {saturday}: it is not an NYSE trading day"):
        make_report(repo, Settings(), "TSLA", saturday)
    with pytest.raises(ReportError, match="no succeeded daily run of AAPL in the database yet"):
        make_report(repo, Settings(), "AAPL")


def test_a_failed_day_names_its_error(repo, seeded):
    run_id = repo.start_run("daily", "TSLA", seeded.days[-1].replace(year=seeded.days[-1].year + 1))
    repo.fail_run(run_id, "SourceError: yahoo has no final bar")
    day = repo.run(run_id).as_of
    with pytest.raises(ReportError, match="its run failed: SourceError: yahoo has no final bar"):
        make_report(repo, Settings(), "TSLA", day)


def test_every_coverage_is_printed_with_its_n_and_binomial_p_and_failures_are_warnings(repo, seeded):
    report = make_report(repo, Settings(), "TSLA").report
    rows = report.summary["coverage_by_horizon"]
    for c in rows:
        assert f"h={c['horizon']}  80% " in report.text and f"({c['hits80']}/{c['n']}, p " in report.text
    flagged = [w for w in report.summary["warnings"] if "intervals too" in w]
    failing = [(c, lv) for c in rows for lv in ("80", "95") if c[f"pvalue{lv}"] < 0.05 / (2 * len(rows))]
    assert len(flagged) == len(failing)
    for (c, lv), warning in zip(failing, flagged, strict=True):
        assert warning.startswith(f"h={c['horizon']} {lv}% intervals too") and f"of {c['n']} forecasts" in warning
