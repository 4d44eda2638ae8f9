"""Turn :class:`~flows.report.data.ReportInputs` into a report: ``summary.json``, the figures, HTML and text.

The HTML is rendered from ``flows/report/templates/report.html.j2`` with every image source given by the caller: data
URIs for the archived ``report.html`` (self-contained, opens offline) and ``cid:`` references for the email.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import jinja2
import numpy as np
import pandas as pd

from flows.report.data import REPORT_SESSIONS, ReportInputs
from forecaster.evaluation import report_tables as tables
from forecaster.plots import figures as plots

SCHEMA_VERSION = 1
FIGURES: tuple[tuple[str, str], ...] = (
    ("forecast_fan.png", "Close price and forecast with 80%/95% intervals and the naive forecast"),
    ("forecast_zoom.png", "The last 20 sessions and the forecast days, with the last horizon's bands"),
    ("track_record.png", "Track record: what was forecast one session ahead vs what happened"),
    ("track_record_h5.png", "Track record five sessions ahead (naive: the close at the origin)"),
    ("rolling_skill.png", "Rolling 20-session RMSE of model and naive, and their ratio U2"),
    ("loss_differential.png", "Cumulative squared-error difference against naive, with the Diebold-Mariano test"),
    ("calibration.png", "Interval coverage by horizon against the nominal 80% and 95% and their binomial bands"),
    ("pit.png", "PIT histogram of the 1-session-ahead forecasts with 95% binomial bands"),
    ("interval_width.png", "80%/95% interval half-width against the realised |return|"),
    ("residuals.png", "Residuals of the 1-session-ahead forecasts"),
    ("training.png", "Training and validation loss of the model version used today"),
)
SECTIONS: dict[str, tuple[int, int]] = {"forecast": (0, 2), "skill": (2, 6), "intervals": (6, 10), "model": (10, 11)}


@dataclass
class Report:
    """A rendered report: what goes in the archive folder and in the email."""

    ticker: str
    as_of: dt.date
    summary: dict[str, Any]
    figures: dict[str, bytes]  # file name -> PNG
    subject: str
    text: str

    def html(self, image_src: Mapping[str, str] | None = None) -> str:
        """The HTML report; images default to embedded data URIs (``image_src`` maps file name -> src)."""
        src = dict(image_src) if image_src is not None else {name: data_uri(png) for name, png in self.figures.items()}
        return _template("report.html.j2").render(s=self.summary, src=src, figures=FIGURES, sections=SECTIONS)

    def summary_json(self) -> str:
        """``summary.json``: the same numbers as the HTML, NaN as null."""
        return json.dumps(self.summary, indent=2, allow_nan=False) + "\n"


def data_uri(png: bytes) -> str:
    """A ``data:image/png;base64,...`` URI."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def build_report(inputs: ReportInputs, *, drift_u2: float, generated_at: dt.datetime | None = None) -> Report:
    """Compute the tables, draw the figures and render the texts of one report."""
    summary = build_summary(inputs, drift_u2=drift_u2, generated_at=generated_at)
    figures = {name: plots.png_bytes(fig) for name, fig in draw_figures(inputs).items()}
    text = _template("report.txt.j2").render(s=summary)
    return Report(inputs.ticker, inputs.as_of, summary, figures, subject_line(summary), text)


def build_summary(inputs: ReportInputs, *, drift_u2: float, generated_at: dt.datetime | None = None) -> dict[str, Any]:
    """The machine-readable report (``summary.json``); the HTML and text show exactly these numbers."""
    details = inputs.run["details"]
    skill = tables.skill_table(inputs.outcomes, prices=inputs.prices)
    warnings = list(details.get("warnings", []))
    warnings += tables.feed_warnings(inputs.prices, pd.Timestamp(inputs.as_of))
    warnings += tables.skill_warnings(skill, drift_u2=drift_u2)
    coverage = tables.coverage_by_horizon(inputs.outcomes)
    warnings += tables.coverage_warnings(coverage)
    if "champion artefact unusable" in details.get("decision", ""):
        warnings.append(f"the champion's model files were unusable, so today's model was fully retrained: "
                        f"{details['decision']}")  # fmt: skip
    forecasts = tables.forecast_rows(inputs.forecast)
    summary = {
        "schema_version": SCHEMA_VERSION,
        "ticker": inputs.ticker,
        "as_of": str(inputs.as_of),
        "generated_at": _iso(generated_at or dt.datetime.now(dt.UTC)),
        "last_close": forecasts[0]["naive"],
        "horizon": len(forecasts),
        "forecasts": forecasts,
        "model_version": _model_summary(inputs.version, inputs.parent),
        "skill": {
            "horizon": 1,
            "windows": skill,
            "verdict": tables.verdict(skill[0]),
            "lookback_sessions": REPORT_SESSIONS,
        },
        "coverage_by_horizon": coverage,
        "gate": _gate_summary(details, inputs.candidate),
        "policy": inputs.policy | {"lookback_sessions": REPORT_SESSIONS},
        "freshness": _freshness(inputs),
        "warnings": warnings,
        "figures": [name for name, _ in FIGURES],
    }
    return jsonable(summary)


def draw_figures(inputs: ReportInputs) -> dict[str, Any]:
    """The report figures of :data:`FIGURES`, by file name (matplotlib Figures; nothing is saved here)."""
    outcomes = inputs.outcomes.assign(model="Model") if len(inputs.outcomes) else inputs.outcomes
    metrics, version = inputs.version["metrics"], inputs.version
    parent = f"version {version['parent_id']}" if version["parent_id"] else None
    return {
        "forecast_fan.png": plots.plot_forecast_fan(inputs.prices, inputs.forecast, sessions=REPORT_SESSIONS),
        "forecast_zoom.png": plots.plot_forecast_zoom(inputs.prices, inputs.forecast, sessions=20),
        "track_record.png": plots.plot_track_record(outcomes, sessions=REPORT_SESSIONS),
        "track_record_h5.png": plots.plot_track_record(outcomes, sessions=REPORT_SESSIONS, horizon=5),
        "rolling_skill.png": plots.plot_rolling_skill(outcomes, window=20),
        "loss_differential.png": plots.plot_loss_differential(outcomes),
        "calibration.png": plots.plot_calibration(outcomes),
        "pit.png": plots.plot_pit_histogram(outcomes),
        "interval_width.png": plots.plot_interval_width(outcomes),
        "residuals.png": plots.plot_residuals(outcomes),
        "training.png": plots.plot_training(
            metrics.get("history") or {}, kind=version["kind"], parent=parent, base=metrics.get("fit_history")
        ),
    }


def subject_line(summary: Mapping[str, Any]) -> str:
    """``TSLA 2024-12-20: next close $432.10 (80% $410.00-$455.00), U2 0.98 over 20 sessions [2 warnings]``."""
    first, window = summary["forecasts"][0], summary["skill"]["windows"][0]
    u2 = window["model"]["u2"]
    skill = f"U2 {u2:.2f} over {window['n']} sessions" if u2 is not None else "no matured forecasts yet"
    subject = (
        f"{summary['ticker']} {summary['as_of']}: next close ${first['point']:,.2f} "
        f"(80% ${first['lo80']:,.2f}-${first['hi80']:,.2f}), {skill}"
    )
    n = len(summary["warnings"])
    return subject + (f" [{n} warning{'s' if n > 1 else ''}]" if n else "")


def _model_summary(version: dict[str, Any], parent: dict[str, Any] | None) -> dict[str, Any]:
    keys = ("id", "kind", "parent_id", "status", "preset", "train_start", "train_end", "created_at")
    out = {k: version[k] for k in keys} | {"validation": version["metrics"].get("validation", {})}
    out["parent_kind"] = parent["kind"] if parent else None
    out["full_fit_as_of"] = version["config"].get("full_fit_as_of")
    return out


def _gate_summary(details: dict[str, Any], candidate: dict[str, Any] | None) -> dict[str, Any]:
    scores = details.get("gate_scores") or (candidate or {}).get("metrics", {}).get("gate", {})
    return {
        "training_decision": details.get("decision"),
        "gate_decision": details.get("gate_text", details.get("gate")),  # older runs kept the words in "gate"
        "promoted": details.get("promoted"),
        "candidate_version_id": details.get("candidate_version_id"),
        "candidate_kind": candidate["kind"] if candidate else None,
        "candidate_role": (candidate or {}).get("config", {}).get("role"),
        "challenger_scores": scores.get("challenger", scores.get("candidate")),
        "champion_scores": scores.get("champion"),
    }


def _freshness(inputs: ReportInputs) -> dict[str, Any]:
    bar, run = inputs.last_bar or {}, inputs.run
    return {
        "last_bar_date": bar.get("date"),
        "price_source": bar.get("source"),
        "fetched_at": bar.get("fetched_at"),
        "sessions_in_report": len(inputs.prices),
        "matured_forecasts": int(inputs.outcomes["actual"].notna().sum()) if len(inputs.outcomes) else 0,
        "run_id": run["id"],
        "flow_run_id": run["flow_run_id"],
        "run_started_at": run["started_at"],
        "run_finished_at": run["finished_at"],
    }


def jsonable(value: Any) -> Any:
    """Plain JSON values: NaN/inf as None, dates as ISO strings, numpy scalars as Python numbers."""
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dt.datetime | pd.Timestamp):
        return _iso(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _iso(value: dt.datetime | pd.Timestamp) -> str:
    """ISO 8601 to the second; aware times in UTC with a ``Z``."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is not None:
        return stamp.tz_convert("UTC").strftime("%Y-%m-%dT%H:%M:%SZ")
    return stamp.strftime("%Y-%m-%dT%H:%M:%S")


# ---------------------------------------------------------------------------------------------- templates


def _usd(value: float | None, digits: int = 2) -> str:
    return "–" if value is None else f"${value:,.{digits}f}"


def _pct(value: float | None, digits: int = 0) -> str:
    return "–" if value is None else f"{100 * value:.{digits}f}%"


def _num(value: float | None, digits: int = 3) -> str:
    return "–" if value is None else f"{value:.{digits}f}"


def _day(value: str | None, fmt: str = "%a %d %b %Y") -> str:
    return "–" if value is None else pd.Timestamp(value).strftime(fmt)


def _signed(value: float | None) -> str:
    return "–" if value is None else f"{value:+.2f}%"


def _pval(value: float | None) -> str:
    return "–" if value is None else ("<0.001" if value < 0.001 else f"{value:.2g}")


_FILTERS: dict[str, Callable[..., str]] = {"usd": _usd, "pct": _pct, "num": _num, "day": _day, "signed": _signed,
                                           "pval": _pval}  # fmt: skip


def _template(name: str) -> jinja2.Template:
    """A template from ``flows/report/templates`` (HTML autoescaped), with the number and date filters."""
    return _environment().get_template(name)


@functools.cache
def _environment() -> jinja2.Environment:
    """One environment per process: it compiles each template once and reloads one only when its file changed
    (jinja's auto-reload), instead of compiling every template for every report (about 0.1 s of CPU each time)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("flows.report", "templates"),
        autoescape=jinja2.select_autoescape(["html", "html.j2"]),
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(_FILTERS)
    return env
