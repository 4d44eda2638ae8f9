"""Price sources: Yahoo Finance, a local CSV file and a synthetic generator, all returning one frame layout.

Every source returns the layout of :data:`forecaster.PRICE_COLUMNS`: a ``DatetimeIndex`` named ``date``
(tz-naive, midnight, ``datetime64[ns]``) and float64 columns ``open, high, low, close, volume``, restricted to
``start <= date <= end``. Sources only normalise shape, names and dtypes; they never drop, fill, sort or
de-duplicate rows: :func:`forecaster.data.validation.validate_prices` reports bad data instead.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import warnings
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from forecaster import PRICE_COLUMNS
from forecaster.data.calendar import sessions
from forecaster.errors import ConfigError, SourceError

logger = logging.getLogger(__name__)

DateArg = dt.date | str | None
_DATE_COLUMNS = ("date", "datetime", "timestamp")
_ADJ_CLOSE = "adj close"
_CSV_NA = ["", "null", "NULL", "NaN", "nan", "NA", "N/A", "-"]


@runtime_checkable
class PriceSource(Protocol):
    """Anything that delivers daily prices for a ticker in the normalised layout."""

    name: str

    def fetch(self, ticker: str, start: DateArg = None, end: DateArg = None) -> pd.DataFrame:
        """Daily bars of ``ticker`` with ``start <= date <= end`` (both inclusive, ``None`` = unbounded)."""
        ...


# --------------------------------------------------------------------------------------------- helpers


def _day(value: DateArg | pd.Timestamp) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return (ts.tz_localize(None) if ts.tzinfo else ts).normalize()


def _span(start: pd.Timestamp | None, end: pd.Timestamp | None) -> str:
    fmt = "%Y-%m-%d"
    return f"{start.strftime(fmt) if start is not None else 'earliest'}..{end.strftime(fmt) if end else 'latest'}"


def _column_key(name: object) -> str:
    """Case-, whitespace- and underscore-insensitive column key: ``' Adj_Close '`` -> ``'adj close'``."""
    return re.sub(r"[\s_]+", " ", str(name).strip().lower())


def empty_prices() -> pd.DataFrame:
    """An empty frame in the normalised layout."""
    index = pd.DatetimeIndex([], dtype="datetime64[ns]", name="date")
    return pd.DataFrame({c: pd.Series(dtype="float64") for c in PRICE_COLUMNS}, index=index)


def _finish(frame: pd.DataFrame, index: pd.DatetimeIndex) -> pd.DataFrame:
    """Normalised layout from a frame with lower-case OHLCV columns (and optionally ``adj close``)."""
    out = frame.loc[:, list(PRICE_COLUMNS)].astype("float64")
    if _ADJ_CLOSE in frame.columns:  # what yfinance's auto_adjust does: scale OHLC by adj_close / close
        factor = frame[_ADJ_CLOSE].to_numpy(dtype="float64") / out["close"].to_numpy()
        ohlc = ["open", "high", "low", "close"]
        out[ohlc] = out[ohlc].to_numpy() * factor[:, None]
    if index.tz is not None:
        index = index.tz_localize(None)
    out.index = pd.DatetimeIndex(index.normalize().astype("datetime64[ns]"), name="date")
    out.columns = list(PRICE_COLUMNS)
    return out


def _between(frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
    mask = np.ones(len(frame), dtype=bool)
    if start is not None:
        mask &= frame.index >= start
    if end is not None:
        mask &= frame.index <= end
    return frame.loc[mask].copy()


def _missing(columns: pd.Index, required: tuple[str, ...]) -> list[str]:
    return [c for c in required if c not in columns]


# --------------------------------------------------------------------------------------------- Yahoo


def normalise_yahoo_frame(raw: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """Normalise what ``yfinance.download`` returns for one ticker (MultiIndex or flat columns).

    Raises:
        SourceError: the answer has no columns for ``ticker`` or lacks one of open/high/low/close/volume.
    """
    frame = raw
    if isinstance(raw.columns, pd.MultiIndex):
        frame = _select_ticker(raw, ticker)
    frame = frame.rename(columns=_column_key)
    missing = _missing(frame.columns, PRICE_COLUMNS)
    if missing:
        found = ", ".join(map(str, frame.columns)) or "none"
        raise SourceError(
            f"Yahoo Finance answer for {ticker} is missing column(s) {', '.join(missing)} (found: {found})"
        )
    return _finish(frame, pd.DatetimeIndex(frame.index))


def _select_ticker(raw: pd.DataFrame, ticker: str) -> pd.DataFrame:
    """The columns of ``ticker`` from yfinance's ``(Price, Ticker)`` MultiIndex, as flat price names."""
    wanted = ticker.upper()
    for level in range(raw.columns.nlevels):
        values = raw.columns.get_level_values(level)
        mask = np.array([str(v).upper() == wanted for v in values])
        if mask.any():
            picked = raw.loc[:, mask]
            picked.columns = picked.columns.droplevel(level)
            if isinstance(picked.columns, pd.MultiIndex):
                picked.columns = picked.columns.get_level_values(0)
            return picked
    found = sorted({str(v) for v in raw.columns.get_level_values(-1)})
    raise SourceError(f"Yahoo Finance answer has no columns for {ticker} (found tickers: {', '.join(found)})")


class SourceUnavailableError(SourceError):
    """The source could not answer now (network down, rate-limited, an empty answer): worth trying again later.

    The only source error that is transient; a bad file, a missing column or bad prices never are.
    """


class YahooSource:
    """Yahoo Finance through ``yfinance.download``: one attempt per ``fetch``.

    Offline or rate-limited, yfinance returns an empty frame (and logs why) instead of raising; both an empty answer
    and an exception become one :class:`SourceUnavailableError` that carries yfinance's reason. Retrying is the
    caller's business: the daily job's ``fetch-prices`` task retries exactly that error (see :mod:`flows.retries`).
    """

    name = "yahoo"
    live = True  # a live source: the newest bar may still arrive after the close

    def fetch(self, ticker: str, start: DateArg = None, end: DateArg = None) -> pd.DataFrame:
        """Adjusted daily bars of ``ticker`` with ``start <= date <= end``."""
        start_, end_ = _day(start), _day(end)
        if start_ is not None and end_ is not None and len(sessions(start_, end_)) == 0:
            return empty_prices()  # no session in range: Yahoo would answer empty, and that is right
        with _captured("yfinance") as said:
            try:
                raw = self._download(ticker, start_, end_)
            except Exception as exc:  # noqa: BLE001 - yfinance raises curl, JSON and rate-limit errors alike
                reason = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
                raise SourceUnavailableError(self._failure_message(ticker, start_, end_, reason)) from exc
        if raw is None or raw.empty:
            reason = "; ".join(said) or "network unreachable or rate-limited?"
            raise SourceUnavailableError(self._failure_message(ticker, start_, end_, reason))
        return _between(normalise_yahoo_frame(raw, ticker), start_, end_)

    def _download(self, ticker: str, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
        import yfinance  # lazy: it pulls in curl_cffi, and only this source needs it

        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", module="yfinance")  # pandas deprecation noise inside yfinance
            return yfinance.download(
                ticker,
                start=start.strftime("%Y-%m-%d") if start is not None else None,
                end=(end + pd.Timedelta(days=1)).strftime("%Y-%m-%d") if end is not None else None,  # exclusive
                auto_adjust=True,
                progress=False,
                multi_level_index=True,
                threads=False,
            )

    @staticmethod
    def _failure_message(ticker: str, start: pd.Timestamp | None, end: pd.Timestamp | None, reason: str) -> str:
        return (
            f"Yahoo Finance returned no data for {ticker} {_span(start, end)} ({reason}); "
            "use --source csv:PATH to read a local file"
        )


class _Collect(logging.Handler):
    """Keeps the text of the records it sees (one line each)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        line = " ".join(record.getMessage().split())
        if line and not line.endswith("Failed download:"):
            self.lines.append(line)


@contextmanager
def _captured(name: str) -> Iterator[list[str]]:
    """The ERROR lines that logger ``name`` emits inside the block, collected instead of printed."""
    log, handler = logging.getLogger(name), _Collect()
    propagate, log.propagate = log.propagate, False
    log.addHandler(handler)
    try:
        yield handler.lines
    finally:
        log.removeHandler(handler)
        log.propagate = propagate


# --------------------------------------------------------------------------------------------- CSV


class CsvSource:
    """A local CSV file: our own layout or Yahoo's export (``Date,Open,High,Low,Close,Adj Close,Volume``).

    Column names are matched case-, whitespace- and underscore-insensitively; the date column may be called
    ``date``, ``datetime`` or ``timestamp``. With an ``Adj Close`` column, open/high/low/close are scaled by
    ``adj_close / close`` (as yfinance's ``auto_adjust`` does). A plain path is one series, whatever the ticker; a
    path with ``{ticker}`` in it is a template, one file per ticker (``prices/{ticker}.csv``). Parsed files are
    cached in the instance.
    """

    name = "csv"
    live = False  # a file: a bar it lacks never arrives

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._frames: dict[Path, pd.DataFrame] = {}

    def path_for(self, ticker: str) -> Path:
        """The file of ``ticker``: the path with ``{ticker}`` filled in (or the path itself)."""
        text = str(self.path)
        return Path(text.replace(TICKER_FIELD, ticker)) if TICKER_FIELD in text else self.path

    def fetch(self, ticker: str, start: DateArg = None, end: DateArg = None) -> pd.DataFrame:
        """Rows of the ticker's file with ``start <= date <= end``."""
        path = self.path_for(ticker)
        if path not in self._frames:
            self._frames[path] = _read_csv(path)
        return _between(self._frames[path], _day(start), _day(end))


TICKER_FIELD = "{ticker}"


def _read_csv(path: Path) -> pd.DataFrame:
    """One CSV file as a normalised price frame; SourceError names the file, the line and the bad value."""
    if not path.is_file():
        raise SourceError(f"price file not found: {path}")
    try:
        raw = pd.read_csv(path, dtype=str, keep_default_na=False, skipinitialspace=True)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError, OSError) as exc:
        raise SourceError(f"cannot read {path} as CSV: {' '.join(str(exc).split())}") from exc
    raw, header_lines = _drop_yfinance_header_rows(raw)
    raw = raw.rename(columns=_column_key)
    found = ", ".join(map(str, raw.columns)) or "none"
    if "close" not in raw.columns:
        raise SourceError(f"{path} has no 'close' column (found: {found})")
    missing = _missing(raw.columns, PRICE_COLUMNS)
    if missing:
        raise SourceError(f"{path} is missing column(s) {', '.join(missing)} (found: {found})")
    date_col = next((c for c in _DATE_COLUMNS if c in raw.columns), None)
    if date_col is None:
        raise SourceError(f"{path} has no date column ('date' or 'datetime'; found: {found})")
    index = _parse_dates(raw[date_col], path, header_lines)
    numbers = {c: _parse_numbers(raw.get(c), c, path, header_lines) for c in (*PRICE_COLUMNS, _ADJ_CLOSE)}
    frame = pd.DataFrame({c: v for c, v in numbers.items() if v is not None})
    return _finish(frame, index)


def _drop_yfinance_header_rows(raw: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Undo the 3-line header of ``yfinance.download(...).to_csv()`` (``Price``/``Ticker``/``Date`` rows)."""
    if raw.columns.size == 0 or _column_key(raw.columns[0]) != "price":
        return raw, 1
    first = raw.iloc[:, 0].str.strip().str.lower()
    extra = 0
    while extra < len(raw) and first.iloc[extra] in ("ticker", "date"):
        extra += 1
    out = raw.iloc[extra:].rename(columns={raw.columns[0]: "date"}).reset_index(drop=True)
    return out, 1 + extra


def _line(position: int, header_lines: int) -> int:
    return position + header_lines + 1


def _parse_dates(values: pd.Series, path: Path, header_lines: int) -> pd.DatetimeIndex:
    """Dates of a CSV column; raises SourceError naming the first value that is not a date, and its line."""
    text = values.astype(str).str.strip()
    parsed = _to_datetime(text, "ISO8601")
    if parsed.isna().any():
        parsed = _to_datetime(text, "mixed")
    bad = np.flatnonzero(parsed.isna().to_numpy())
    if bad.size:
        pos = int(bad[0])
        raise SourceError(
            f"{path} line {_line(pos, header_lines)}: cannot parse date {text.iloc[pos]!r} "
            f"({bad.size} unparsable date(s))"
        )
    return pd.DatetimeIndex(parsed)


def _to_datetime(text: pd.Series, fmt: str) -> pd.Series:
    try:
        parsed = pd.to_datetime(text, format=fmt, errors="coerce")
    except (ValueError, TypeError):  # mixed UTC offsets: compare in New York time
        parsed = pd.to_datetime(text, format=fmt, errors="coerce", utc=True).dt.tz_convert("America/New_York")
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        parsed = parsed.dt.tz_localize(None)
    return parsed


def _parse_numbers(values: pd.Series | None, column: str, path: Path, header_lines: int) -> pd.Series | None:
    """Floats of a CSV column (blank/``null`` -> NaN); raises SourceError on the first non-number."""
    if values is None:
        return None
    text = values.astype(str).str.strip().str.replace(",", "", regex=False)
    text = text.mask(text.isin(_CSV_NA))
    numbers = pd.to_numeric(text, errors="coerce")
    bad = np.flatnonzero((numbers.isna() & text.notna()).to_numpy())
    if bad.size:
        pos = int(bad[0])
        raise SourceError(
            f"{path} line {_line(pos, header_lines)}: {column} value {values.iloc[pos]!r} is not a number"
        )
    return numbers.astype("float64")


# --------------------------------------------------------------------------------------------- synthetic


def _simulate(days: pd.DatetimeIndex, seed: int | list[int], s0: float, drift: float, vol: float) -> pd.DataFrame:
    """GBM with GARCH(1,1) volatility clustering on ``days``; OHLC consistent and volume positive."""
    rng = np.random.default_rng(seed)
    n = len(days)
    z = rng.standard_normal(n)
    alpha, beta = 0.08, 0.9
    omega = vol**2 * (1.0 - alpha - beta)
    sigma = np.empty(n)
    var = vol**2
    for t in range(n):
        sigma[t] = np.sqrt(var)
        var = omega + alpha * (sigma[t] * z[t]) ** 2 + beta * var
    log_ret = drift - 0.5 * sigma**2 + sigma * z
    close = s0 * np.exp(np.cumsum(log_ret))
    prev_close = np.concatenate([[s0], close[:-1]])
    open_ = prev_close * np.exp(0.3 * sigma * rng.standard_normal(n))
    high = np.maximum(open_, close) * np.exp(0.5 * sigma * np.abs(rng.standard_normal(n)))
    low = np.minimum(open_, close) * np.exp(-0.5 * sigma * np.abs(rng.standard_normal(n)))
    volume = np.round(2e7 * np.exp(0.3 * rng.standard_normal(n) + 10.0 * np.abs(log_ret)))
    data = {"open": open_, "high": high, "low": low, "close": close, "volume": volume}
    return pd.DataFrame(data, index=pd.DatetimeIndex(days, name="date").astype("datetime64[ns]"))


class SyntheticSource:
    """Deterministic synthetic prices on NYSE sessions, for tests and offline demos.

    Geometric Brownian motion whose volatility clusters (GARCH(1,1), long-run daily volatility ``vol``).
    The series spans the sessions in ``[start, end]``; ``fetch`` returns its part in the requested range. Each
    ticker gets its own series, drawn from ``(seed, ticker)``: the same for a ticker wherever it is fetched.
    """

    name = "synthetic"
    live = False

    def __init__(
        self,
        seed: int = 0,
        start: str = "2018-01-02",
        end: str = "2024-12-31",
        s0: float = 100.0,
        drift: float = 0.0003,
        vol: float = 0.02,
    ) -> None:
        self.seed = seed
        self.start = start
        self.end = end
        self.s0 = s0
        self.drift = drift
        self.vol = vol
        self._frames: dict[str, pd.DataFrame] = {}

    def fetch(self, ticker: str, start: DateArg = None, end: DateArg = None) -> pd.DataFrame:
        """The ticker's synthetic series with ``start <= date <= end``."""
        if ticker not in self._frames:
            days = sessions(self.start, self.end)
            self._frames[ticker] = _simulate(days, ticker_seed(self.seed, ticker), self.s0, self.drift, self.vol)
        return _between(self._frames[ticker], _day(start), _day(end))


def ticker_seed(seed: int, ticker: str) -> list[int]:
    """A random-generator seed for one ticker's series: stable across processes (crc32, not ``hash``)."""
    return [seed, zlib.crc32(ticker.upper().encode())]


def generate_prices(
    seed: int = 0,
    n: int = 500,
    start: str = "2018-01-02",
    *,
    s0: float = 100.0,
    drift: float = 0.0003,
    vol: float = 0.02,
) -> pd.DataFrame:
    """``n`` sessions of synthetic prices (the :class:`SyntheticSource` model) from the first session >= ``start``.

    >>> generate_prices(seed=0, n=3).index.strftime("%Y-%m-%d").tolist()
    ['2018-01-02', '2018-01-03', '2018-01-04']
    """
    first = pd.Timestamp(start).normalize()
    days = sessions(first, first + pd.Timedelta(days=int(n * 1.6) + 15))[:n]
    if len(days) < n:
        raise ConfigError(f"generate_prices: only {len(days)} NYSE sessions from {start}, {n} requested")
    return _simulate(days, seed, s0, drift, vol)


# --------------------------------------------------------------------------------------------- parsing


def is_live(source: PriceSource) -> bool:
    """True for a source whose newest bar may still arrive (Yahoo after the close); files never get a bar later."""
    return bool(getattr(source, "live", False))


def parse_source(spec: str) -> PriceSource:
    """The source named by a CLI spec: ``yahoo``, ``csv:PATH`` (``{ticker}`` in PATH: one file per ticker),
    ``synthetic`` or ``synthetic:SEED``."""
    text = spec.strip()
    kind, sep, arg = text.partition(":")
    kind = kind.strip().lower()
    if kind == "yahoo" and not sep:
        return YahooSource()
    if kind == "csv" and sep:
        if not arg.strip():
            raise ConfigError("source 'csv:' needs a path: use csv:PATH or csv:DIR/{ticker}.csv")
        return CsvSource(Path(arg.strip()).expanduser())
    if kind == "synthetic":
        if not sep:
            return SyntheticSource()
        try:
            return SyntheticSource(seed=int(arg))
        except ValueError:
            raise ConfigError(f"synthetic source seed must be an integer, got {arg!r}") from None
    raise ConfigError(f"unknown source {spec!r}: use yahoo, csv:PATH or synthetic[:SEED]")
