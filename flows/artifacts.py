"""Prefect artifacts of a run: a markdown summary (forecasts, gate decision, live U2) and a table of forecasts."""

from __future__ import annotations

import math

from prefect.artifacts import create_markdown_artifact, create_table_artifact


def _fmt(value: object) -> str:
    return f"{value:.2f}" if isinstance(value, float) and math.isfinite(value) else str(value)


def summary_markdown(results: list[dict]) -> str:
    """Markdown for one run: per ticker its status, decision, gate and forecasts with intervals."""
    lines = ["# Daily forecast", ""]
    for r in results:
        lines += [f"## {r['ticker']} as of {r['as_of']}: {r['status']}", ""]
        if r["status"] != "succeeded":
            continue
        u2 = r["live"].get("u2")
        live = f"- live U2 (last {int(r['live'].get('n', 0))} h=1 forecasts): {_fmt(u2) if u2 else 'n/a'}"
        lines += [f"- retrain: {r['decision']}", f"- gate: {r['gate']}", live, ""]
        lines += ["| h | target | point | 80% | 95% | naive |", "|---|---|---|---|---|---|"]
        for f in r["forecasts"]:
            lines.append(
                f"| {f['horizon']} | {f['target_date']} | {_fmt(f['point'])} | {_fmt(f['lo80'])}–{_fmt(f['hi80'])} "
                f"| {_fmt(f['lo95'])}–{_fmt(f['hi95'])} | {_fmt(f['last_close'])} |"
            )
        lines.append("")
    return "\n".join(lines)


def publish_run_summary(results: list[dict]) -> None:
    """Create the markdown and table artifacts of a daily run."""
    create_markdown_artifact(summary_markdown(results), key="daily-forecast-summary", description="Daily forecast")
    rows = [{"ticker": r["ticker"], **f} for r in results for f in r.get("forecasts", [])]
    if rows:
        create_table_artifact(rows, key="daily-forecast-table", description="Forecasts with intervals")
