"""Forecasts and metrics: idempotent forecast upserts, restatement, metric writes, and the outcome reads."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from db.engine import rolled_back
from db.frames import as_date, outcome_frame, require_columns, to_dates, to_float, to_floats
from db.repository.base import ReaderBase, WriterBase, forecasts_table, metrics_table, prices_table, upsert
from db.schema import FORECAST_KEY, forecast_outcomes

FORECAST_FRAME_COLUMNS = ("as_of", "horizon", "target_date", "naive", "point", "lo80", "hi80", "lo95", "hi95")


class ForecastsUnitMixin(WriterBase):
    """Forecast and metric writes of a :class:`db.repository.UnitOfWork`."""

    def upsert_forecasts(
        self,
        run_id: int,
        model_version_id: int,
        ticker: str,
        frame: pd.DataFrame,
        scope: str = "live",
        model: str = "lstm",
    ) -> int:
        """Insert or update forecasts (columns as_of, horizon, target_date, naive, point, lo80..hi95).

        The key is (ticker, scope, model, as_of, horizon, model_version_id).

        Returns:
            The number of rows inserted or changed; rewriting identical forecasts returns 0.
        """
        require_columns(frame, FORECAST_FRAME_COLUMNS, "forecast frame")
        fixed = {"run_id": run_id, "model_version_id": model_version_id, "ticker": ticker, "scope": scope}
        origins, targets = to_dates(frame["as_of"]), to_dates(frame["target_date"])
        horizons = [int(h) for h in frame["horizon"]]
        floats = {c: to_floats(frame[c]) for c in ("point", "lo80", "hi80", "lo95", "hi95")}
        floats["naive"] = to_floats(frame["naive"])
        rows = [
            fixed
            | {"model": model, "as_of": origins[i], "target_date": targets[i], "horizon": horizons[i]}
            | {c: floats[c][i] for c in floats}
            for i in range(len(frame))
        ]
        compared = ("target_date", "point", "lo80", "hi80", "lo95", "hi95", "naive")
        return upsert(self.conn, forecasts_table, rows, FORECAST_KEY, compared, ("run_id",))

    def restate_forecasts(self, ticker: str, revisions: Sequence[Any]) -> int:
        """Multiply the point, intervals and naive of ``ticker``'s forecasts made on each revision's dates by its
        ratio, so that they compare with the restated closes in the same units; returns the rows changed.

        ``revisions`` are :class:`forecaster.data.revisions.PriceRevision`-like (``first_date``, ``last_date``,
        ``ratio``).
        """
        f = forecasts_table.c
        changed = 0
        for r in revisions:
            scaled = {c: f[c] * float(r.ratio) for c in ("point", "lo80", "hi80", "lo95", "hi95", "naive")}
            where = (f.ticker == ticker, f.as_of >= as_date(r.first_date), f.as_of <= as_date(r.last_date))
            changed += self.conn.execute(sa.update(forecasts_table).where(*where).values(scaled)).rowcount
        return changed

    def write_metrics(
        self,
        run_id: int,
        model_version_id: int | None,
        scope: str,
        metrics: dict[str, float],
        window_start: dt.date | None,
        window_end: dt.date | None,
    ) -> None:
        """Write named metric values; rewriting the same (run, model version, scope, name) updates in place."""
        m = metrics_table.c
        window = {"window_start": as_date(window_start), "window_end": as_date(window_end)}
        for name, value in metrics.items():
            where = (
                m.run_id == run_id,
                m.model_version_id.is_not_distinct_from(model_version_id),
                m.scope == scope,
                m.name == name,
            )
            values = {"value": to_float(value)} | window
            if self.conn.execute(sa.update(metrics_table).where(*where).values(values)).rowcount == 0:
                key = {"run_id": run_id, "model_version_id": model_version_id, "scope": scope, "name": name}
                self.conn.execute(sa.insert(metrics_table).values(key | values))


class ForecastsMixin(ReaderBase):
    """Forecast and outcome reads of a :class:`db.repository.Repository`; rows only, never scores."""

    def recent_outcomes(
        self, ticker: str | None = None, last: int = 30, scope: str = "live", horizon: int | None = None
    ) -> pd.DataFrame:
        """The ``last`` most recent rows of ``forecast_outcomes`` (by target date; of one ``horizon`` if given),
        oldest first."""
        fo = forecast_outcomes.c
        query = sa.select(forecast_outcomes).where(fo.scope == scope)
        if ticker is not None:
            query = query.where(fo.ticker == ticker)
        if horizon is not None:
            query = query.where(fo.horizon == horizon)
        query = query.order_by(fo.target_date.desc(), fo.horizon.desc(), fo.forecast_id.desc()).limit(last)
        return self._outcomes(query).iloc[::-1].reset_index(drop=True)

    def latest_forecasts(self, ticker: str | None = None, scope: str = "live", model: str = "lstm") -> pd.DataFrame:
        """Each ticker's newest stored forecast: every horizon of its newest origin, from the newest run that
        forecast it (matured or not), ordered by ticker and horizon; columns ``ticker, run_id, model_version_id``
        and the forecast frame's."""
        f = forecasts_table.c
        newest = sa.select(f.ticker, sa.func.max(f.as_of).label("as_of")).where(f.scope == scope, f.model == model)
        if ticker is not None:
            newest = newest.where(f.ticker == ticker)
        newest_origin = newest.group_by(f.ticker).subquery()
        last_run = (
            sa.select(f.ticker, sa.func.max(f.run_id).label("run_id"))
            .join(newest_origin, sa.and_(f.ticker == newest_origin.c.ticker, f.as_of == newest_origin.c.as_of))
            .where(f.scope == scope, f.model == model)
            .group_by(f.ticker)
            .subquery()
        )
        query = (
            sa.select(f.ticker, f.run_id, f.model_version_id, *(f[c] for c in FORECAST_FRAME_COLUMNS))
            .join(last_run, sa.and_(f.ticker == last_run.c.ticker, f.run_id == last_run.c.run_id))
            .where(f.scope == scope, f.model == model)
            .order_by(f.ticker, f.horizon)
        )
        with self.engine.connect() as conn:
            result = conn.execute(query)
            frame = pd.DataFrame([tuple(r) for r in result], columns=list(result.keys()))
        for column in ("as_of", "target_date"):
            frame[column] = pd.to_datetime(frame[column])
        return frame

    def live_outcomes(
        self,
        ticker: str,
        as_of: dt.date,
        window: int = 20,
        model: str = "lstm",
        pending: pd.DataFrame | None = None,
        revisions: Sequence[Any] = (),
    ) -> pd.DataFrame:
        """The last ``window`` matured live horizon-1 rows of ``forecast_outcomes`` up to ``as_of``, newest first.

        ``pending`` bars (fetched, not yet stored) count as if stored: they are written (as
        :meth:`db.repository.UnitOfWork.write_prices` would, ``revisions`` included) in a transaction that is
        always rolled back, so the rows come from the same ``forecast_outcomes`` view with no lag of a day. The
        caller scores them (:func:`forecaster.evaluation.metrics.score`); this layer computes no metric.
        """
        from db.repository import UnitOfWork  # the composed class; imported here to avoid an import cycle

        fo = forecast_outcomes.c
        query = (
            sa.select(forecast_outcomes)
            .where(fo.ticker == ticker, fo.scope == "live", fo.model == model, fo.horizon == 1)
            .where(fo.target_date <= as_date(as_of))
            .order_by(fo.target_date.desc(), fo.forecast_id.desc())
            .limit(window)
        )
        if pending is None or pending.empty:
            return self._outcomes(query)
        with rolled_back(self.engine) as conn:
            UnitOfWork(conn).write_prices(ticker, pending, "pending", revisions)
            result = conn.execute(query)
            return outcome_frame(result.all(), list(result.keys()))

    def run_forecasts(
        self, ticker: str, as_of: dt.date, model_version_id: int, scope: str = "live", model: str = "lstm"
    ) -> pd.DataFrame:
        """The forecasts of one origin by one model version, in the forecast frame layout (``origin`` .. ``hi95``)."""
        f = forecasts_table.c
        query = (
            sa.select(f.as_of, f.horizon, f.target_date, f.naive, f.point, f.lo80, f.hi80, f.lo95, f.hi95)
            .where(f.ticker == ticker, f.as_of == as_date(as_of), f.model_version_id == model_version_id)
            .where(f.scope == scope, f.model == model)
            .order_by(f.horizon)
        )
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        frame = pd.DataFrame([tuple(r) for r in rows], columns=list(FORECAST_FRAME_COLUMNS))
        for column in ("as_of", "target_date"):
            frame[column] = pd.to_datetime(frame[column])
        return frame.astype({"horizon": "int64"} | {c: float for c in FORECAST_FRAME_COLUMNS[3:]})

    def outcomes_until(
        self, ticker: str, as_of: dt.date, sessions: int = 120, scope: str = "live", model: str = "lstm"
    ) -> pd.DataFrame:
        """Rows of ``forecast_outcomes`` (matured only) whose target is one of the last ``sessions`` stored
        sessions up to ``as_of``, oldest target first."""
        fo, p = forecast_outcomes.c, prices_table.c
        recent = (
            sa.select(p.date)
            .where(p.ticker == ticker, p.date <= as_date(as_of))
            .order_by(p.date.desc())
            .limit(sessions)
            .subquery()
        )
        query = (
            sa.select(forecast_outcomes)
            .where(fo.ticker == ticker, fo.scope == scope, fo.model == model)
            .where(
                fo.target_date <= as_date(as_of),
                fo.target_date >= sa.select(sa.func.min(recent.c.date)).scalar_subquery(),
            )
            .order_by(fo.target_date, fo.horizon, fo.forecast_id)
        )
        return self._outcomes(query)
