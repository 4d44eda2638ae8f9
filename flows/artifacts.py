"""Prefect artifacts: a run summary (forecasts, gate decision, live U2), a table of forecasts, and each report's
headline tables with a link to the archived ``report.html``."""

from __future__ import annotations

import math
import re
from pathlib import Path

from prefect.artifacts import create_link_artifact, create_markdown_artifact, create_table_artifact


def _fmt(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) and math.isfinite(value) else str(value)


def summary_markdown(results: list[dict]) -> str:
    """Markdown for one run: per ticker its status, decision, gate and forecasts with intervals."""
    lines = ["# Daily forecast", ""]
    for r in results:
        caught = " (caught up: a missed session replayed first)" if r.get("caught_up") else ""
        lines += [f"## {r['ticker']} as of {r['as_of']}: {r['status']}{caught}", ""]
        if r["status"] != "succeeded":
            continue
        u2 = r["live"].get("u2")
        live = f"- live U2 (last {int(r['live'].get('n', 0))} h=1 forecasts): {_fmt(u2) if u2 else 'n/a'}"
        lines += [f"- retrain: {r['decision']}", f"- gate: {r['gate']}", live, ""]
        lines += ["| h | target | point | 80% | 95% | naive |", "|---|---|---|---|---|---|"]
        for f in r["forecasts"]:
            lines.append(
                f"| {f['horizon']} | {f['target_date']} | {_fmt(f['point'])} | {_fmt(f['lo80'])}–{_fmt(f['hi80'])} "
                f"| {_fmt(f['lo95'])}–{_fmt(f['hi95'])} | {_fmt(f['naive'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def publish_run_summary(results: list[dict]) -> None:
    """Create the markdown and table artifacts of a daily run."""
    create_markdown_artifact(summary_markdown(results), key="daily-forecast-summary", description="Daily forecast")
    rows = [{"ticker": r["ticker"], **f} for r in results for f in r.get("forecasts", [])]
    if rows:
        create_table_artifact(rows, key="daily-forecast-table", description="Forecasts with intervals")


def _usd(value: float | None) -> str:
    return "–" if value is None else f"${value:,.2f}"


def _share(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.0f}%"


def report_markdown(summary: dict, link: str) -> str:
    """Markdown of a report's headline tables: forecasts with intervals, model vs naive, gate, warnings."""
    mv, gate = summary["model_version"], summary["gate"]
    lines = [f"# {summary['ticker']} report as of {summary['as_of']}", "", summary["skill"]["verdict"], ""]
    lines += [f"Last close {_usd(summary['last_close'])}; model version {mv['id']} ({mv['kind']}"
              + (f" of version {mv['parent_id']})" if mv["parent_id"] else ")"), ""]  # fmt: skip
    lines += ["| h | target | forecast | 80% | 95% | naive |", "|---|---|---|---|---|---|"]
    for f in summary["forecasts"]:
        lines.append(f"| {f['horizon']} | {f['target_date']} | {_usd(f['point'])} | {_usd(f['lo80'])} – "
                     f"{_usd(f['hi80'])} | {_usd(f['lo95'])} – {_usd(f['hi95'])} | {_usd(f['naive'])} |")  # fmt: skip
    lines += ["", "| last | n | RMSE model | RMSE naive | U2 | direction | cover 80% | cover 95% |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for w in summary["skill"]["windows"]:
        m, u2 = w["model"], w["model"]["u2"]
        lines.append(f"| {w['sessions']} | {w['n']} | {_usd(m['rmse'])} | {_usd(w['naive']['rmse'])} | "
                     f"{'–' if u2 is None else f'{u2:.3f}'} | {_share(m['directional_accuracy'])} | "
                     f"{_share(m['coverage80'])} | {_share(m['coverage95'])} |")  # fmt: skip
    lines += ["", f"- training: {gate['training_decision']}", f"- gate: {gate['gate_decision']}"]
    lines += [f"- warning: {w}" for w in summary["warnings"]]
    lines += ["", f"[report.html]({link})"]
    return "\n".join(lines)


def publish_report(summary: dict, html_path: Path) -> None:
    """A markdown artifact with the report's headline tables and a link artifact to the archived report."""
    key = "report-" + re.sub(r"[^a-z0-9-]+", "-", summary["ticker"].lower()).strip("-")
    link = html_path.resolve().as_uri()
    create_markdown_artifact(report_markdown(summary, link), key=key,
                             description=f"{summary['ticker']} report as of {summary['as_of']}")  # fmt: skip
    create_link_artifact(link, link_text=f"{summary['ticker']} report {summary['as_of']}", key=f"{key}-link",
                         description="The archived self-contained report.html")  # fmt: skip
