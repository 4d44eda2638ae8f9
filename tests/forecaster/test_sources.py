"""Price sources: Yahoo (faked, never the network), CSV files, the synthetic generator and ``parse_source``."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from yfinance.exceptions import YFRateLimitError

from forecaster import PRICE_COLUMNS
from forecaster.data.calendar import sessions
from forecaster.data.sources import (
    CsvSource,
    PriceSource,
    SourceUnavailableError,
    SyntheticSource,
    YahooSource,
    generate_prices,
    is_live,
    normalise_yahoo_frame,
    parse_source,
)
from forecaster.data.validation import validate_prices
from forecaster.errors import ConfigError, SourceError
from tests.fixtures.yahoo import (
    ChartAnswer,
    yahoo_chart_json,
    yahoo_download_frame,
    yahoo_empty_frame,
    yahoo_partial_frame,
)

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"


def assert_normalised(frame: pd.DataFrame) -> None:
    assert list(frame.columns) == list(PRICE_COLUMNS)
    assert frame.index.name == "date"
    assert frame.index.dtype == "datetime64[ns]"
    assert (frame.dtypes == "float64").all()


# --------------------------------------------------------------------------------------------- Yahoo


def test_yahoo_multiindex_answer_is_normalised(prices, fake_download):
    fake_download(yahoo_download_frame(prices, "TSLA"))
    got = YahooSource().fetch("TSLA", "2024-02-20", "2024-04-16")
    assert_normalised(got)
    pd.testing.assert_frame_equal(got, prices.assign(volume=prices["volume"].round()), check_freq=False)


def test_fake_download_frame_has_the_shape_real_yfinance_builds(prices, monkeypatch):
    """Drive the real ``yfinance.download`` with a canned chart answer: our fake must match what it builds."""
    from yfinance.data import YfData

    answer = ChartAnswer(yahoo_chart_json(prices, "TSLA"))
    monkeypatch.setattr(YfData, "get", lambda self, *a, **k: answer)
    monkeypatch.setattr(YfData, "cache_get", lambda self, *a, **k: answer)
    real = YahooSource()._download("TSLA", prices.index[0], prices.index[-1])
    pd.testing.assert_frame_equal(real, yahoo_download_frame(prices, "TSLA"))
    assert real.columns.names == ["Price", "Ticker"]
    assert real.index.dtype == "datetime64[s]"


def test_yahoo_flat_columns_are_normalised(prices):
    flat = yahoo_download_frame(prices, "TSLA").droplevel(1, axis=1).rename_axis(None, axis=1)
    got = normalise_yahoo_frame(flat, "TSLA")
    assert_normalised(got)
    np.testing.assert_allclose(got["close"], prices["close"])


def test_yahoo_is_called_with_adjusted_prices_and_an_exclusive_end(prices, fake_download):
    fake = fake_download(yahoo_download_frame(prices, "TSLA"))
    YahooSource().fetch("TSLA", "2024-03-01", "2024-03-08")
    (args, kwargs) = fake.calls[0]
    assert args == ("TSLA",)
    assert kwargs == {
        "start": "2024-03-01",
        "end": "2024-03-09",
        "auto_adjust": True,
        "progress": False,
        "multi_level_index": True,
        "threads": False,
    }


def test_yahoo_rows_are_limited_to_the_inclusive_range(prices, fake_download):
    fake_download(yahoo_download_frame(prices, "TSLA"))
    got = YahooSource().fetch("TSLA", "2024-03-01", "2024-03-08")
    assert got.index[0] == pd.Timestamp("2024-03-01")
    assert got.index[-1] == pd.Timestamp("2024-03-08")
    assert len(got) == 6


def test_empty_yahoo_answer_is_one_attempt_and_a_transient_error(fake_download):
    """Retries are Prefect's (flows.retries): the source itself asks once (#21, retries in one place)."""
    fake = fake_download(yahoo_empty_frame("TSLA"))
    message = (
        r"Yahoo Finance returned no data for TSLA 2024-12-01\.\.2024-12-20 "
        r"\(network unreachable or rate-limited\?\); use --source csv:PATH to read a local file"
    )
    with pytest.raises(SourceUnavailableError, match=message):
        YahooSource().fetch("TSLA", "2024-12-01", "2024-12-20")
    assert len(fake.calls) == 1


def test_yahoo_error_is_one_attempt_that_names_the_error(fake_download):
    fake = fake_download(RuntimeError("Failed to perform, curl: (6) Could not resolve host"))
    with pytest.raises(SourceUnavailableError, match=r"\(RuntimeError: .*resolve host\)"):
        YahooSource().fetch("TSLA", "2024-12-01", "2024-12-20")
    assert len(fake.calls) == 1


def test_yahoo_rate_limit_is_transient(fake_download):
    fake_download(YFRateLimitError())
    with pytest.raises(SourceUnavailableError, match="YFRateLimitError"):
        YahooSource().fetch("TSLA", "2024-12-01", "2024-12-20")


def test_yfinance_error_lines_are_kept_in_the_message_not_printed(monkeypatch, capsys, caplog):
    """Offline, yfinance logs its reason and answers empty: the reason goes into the one error line, not stderr."""

    def download(self, ticker, start, end):
        logging.getLogger("yfinance").error("\n1 Failed download:")
        logging.getLogger("yfinance").error("['TSLA']: curl: (6) Could not resolve host: query2.finance.yahoo.com")
        return yahoo_empty_frame("TSLA")

    monkeypatch.setattr(YahooSource, "_download", download)
    with caplog.at_level(logging.DEBUG), pytest.raises(SourceUnavailableError, match=r"Could not resolve host"):
        YahooSource().fetch("TSLA", "2024-12-01", "2024-12-20")
    assert not [r for r in caplog.records if r.name == "yfinance"]
    assert "Failed download" not in capsys.readouterr().err


def test_only_yahoo_is_live():
    assert is_live(parse_source("yahoo"))
    assert not is_live(parse_source("csv:x.csv")) and not is_live(parse_source("synthetic"))


def test_partial_yahoo_answer_names_the_missing_column(prices, fake_download):
    fake_download(yahoo_partial_frame(prices, "TSLA", drop="Volume"))
    with pytest.raises(SourceError, match=r"TSLA is missing column\(s\) volume \(found: close, high, low, open\)"):
        YahooSource().fetch("TSLA", "2024-02-20", "2024-04-16")


def test_yahoo_answer_for_another_ticker_raises(prices, fake_download):
    fake_download(yahoo_download_frame(prices, "AAPL"))
    with pytest.raises(SourceError, match="no columns for TSLA"):
        YahooSource().fetch("TSLA", "2024-02-20", "2024-04-16")


def test_yahoo_range_without_sessions_is_empty_without_asking(fake_download):
    fake = fake_download(yahoo_empty_frame("TSLA"))
    got = YahooSource().fetch("TSLA", "2024-12-25", "2024-12-25")
    assert got.empty
    assert_normalised(got)
    assert fake.calls == []


def test_yahoo_keeps_bad_rows_for_validation(prices, fake_download):
    bad = prices.copy()
    bad.iloc[3, bad.columns.get_loc("close")] = np.nan
    fake_download(yahoo_download_frame(bad, "TSLA"))
    got = YahooSource().fetch("TSLA", "2024-02-20", "2024-04-16")
    assert len(got) == len(prices)
    assert np.isnan(got["close"].iloc[3])


def test_offline_yahoo_shape_normalises_to_an_empty_frame():
    got = normalise_yahoo_frame(yahoo_empty_frame("TSLA"), "TSLA")
    assert got.empty
    assert_normalised(got)


# --------------------------------------------------------------------------------------------- CSV


def write(tmp_path: Path, text: str, name: str = "prices.csv") -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_csv_in_our_layout_round_trips(prices, tmp_path):
    path = tmp_path / "prices.csv"
    prices.to_csv(path)
    got = CsvSource(path).fetch("TSLA")
    assert_normalised(got)
    pd.testing.assert_frame_equal(got, prices, check_freq=False)


def test_csv_yahoo_export_with_adj_close_is_adjusted():
    got = CsvSource(FIXTURES / "yahoo_export.csv").fetch("TSLA")
    assert_normalised(got)
    assert len(got) == 7
    unadjusted, adjusted = got.loc["2024-12-20"], got.loc["2024-12-24"]
    assert unadjusted["close"] == pytest.approx(421.06)
    assert adjusted.to_dict() == pytest.approx(
        {"open": 217.95, "high": 231.39, "low": 217.57, "close": 231.14, "volume": 59551800.0}
    )
    # this export adjusts Adj Close from 2024-12-23 only: history in two units, which validation names by date
    assert [(str(p.date.date()), p.column) for p in validate_prices(got)] == [("2024-12-23", "close")]
    assert validate_prices(got, max_log_move=None) == []


def test_csv_column_names_are_case_and_whitespace_insensitive(tmp_path):
    path = write(tmp_path, " Datetime , OPEN,high , Low,CLOSE , Volume\n2024-12-20,1,2,0.5,1.5,100\n")
    got = CsvSource(path).fetch("TSLA")
    assert_normalised(got)
    assert got.loc["2024-12-20"].tolist() == [1.0, 2.0, 0.5, 1.5, 100.0]


def test_csv_written_by_yfinance_with_its_three_header_lines_is_read(prices, tmp_path):
    path = tmp_path / "yf.csv"
    yahoo_download_frame(prices, "TSLA").to_csv(path)
    got = CsvSource(path).fetch("TSLA")
    np.testing.assert_allclose(got["close"], prices["close"])
    assert got.index.equals(prices.index)


def test_csv_is_limited_to_the_inclusive_range(prices, tmp_path):
    path = tmp_path / "prices.csv"
    prices.to_csv(path)
    got = CsvSource(path).fetch("TSLA", start="2024-03-01", end=pd.Timestamp("2024-03-08").date())
    assert (got.index.min(), got.index.max(), len(got)) == (pd.Timestamp("2024-03-01"), pd.Timestamp("2024-03-08"), 6)


def test_missing_csv_file_raises(tmp_path):
    with pytest.raises(SourceError, match=r"price file not found: .*nope\.csv"):
        CsvSource(tmp_path / "nope.csv").fetch("TSLA")


def test_csv_without_close_column_raises(tmp_path):
    path = write(tmp_path, "date,open,high,low,volume\n2024-12-20,1,2,0.5,100\n")
    with pytest.raises(
        SourceError, match=r"prices\.csv has no 'close' column \(found: date, open, high, low, volume\)"
    ):
        CsvSource(path).fetch("TSLA")


def test_csv_without_volume_column_names_it(tmp_path):
    path = write(tmp_path, "date,open,high,low,close\n2024-12-20,1,2,0.5,1.5\n")
    with pytest.raises(SourceError, match=r"is missing column\(s\) volume"):
        CsvSource(path).fetch("TSLA")


def test_csv_without_date_column_raises(tmp_path):
    path = write(tmp_path, "day,open,high,low,close,volume\n2024-12-20,1,2,0.5,1.5,100\n")
    with pytest.raises(SourceError, match="has no date column"):
        CsvSource(path).fetch("TSLA")


def test_empty_csv_file_raises_naming_the_file(tmp_path):
    path = write(tmp_path, "")
    with pytest.raises(SourceError, match=r"cannot read .*prices\.csv as CSV: No columns to parse"):
        CsvSource(path).fetch("TSLA")


def test_binary_file_raises_naming_the_file(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe\x00" * 20)
    with pytest.raises(SourceError, match=r"cannot read .*prices\.csv as CSV"):
        CsvSource(path).fetch("TSLA")


def test_csv_unparsable_date_names_the_value_and_line(tmp_path):
    text = "date,open,high,low,close,volume\n2024-12-19,1,2,0.5,1.5,100\n2024-13-45,1,2,0.5,1.5,100\n"
    with pytest.raises(SourceError, match=r"prices\.csv line 3: cannot parse date '2024-13-45'"):
        CsvSource(write(tmp_path, text)).fetch("TSLA")


def test_csv_non_numeric_price_names_the_value_and_line(tmp_path):
    text = "date,open,high,low,close,volume\n2024-12-19,1,2,0.5,1.5,100\n2024-12-20,1,2,0.5,abc,100\n"
    with pytest.raises(SourceError, match=r"line 3: close value 'abc' is not a number"):
        CsvSource(write(tmp_path, text)).fetch("TSLA")


def test_csv_null_and_blank_values_are_kept_as_nan_for_validation(tmp_path):
    text = "Date,Open,High,Low,Close,Adj Close,Volume\n2024-12-19,1,2,0.5,null,null,100\n2024-12-20,1,2,0.5,1.5,1.5,\n"
    got = CsvSource(write(tmp_path, text)).fetch("TSLA")
    assert np.isnan(got.loc["2024-12-19", "close"])
    assert np.isnan(got.loc["2024-12-20", "volume"])


def test_csv_keeps_duplicate_and_unsorted_rows_for_validation(tmp_path):
    text = (
        "date,open,high,low,close,volume\n"
        "2024-12-19,1,2,0.5,1.5,100\n2024-12-17,1,2,0.5,1.5,100\n2024-12-17,1,2,0.5,1.5,100\n"
    )
    got = CsvSource(write(tmp_path, text)).fetch("TSLA")
    assert got.index.strftime("%m-%d").tolist() == ["12-19", "12-17", "12-17"]


def test_csv_file_is_parsed_once_per_instance(prices, tmp_path):
    path = tmp_path / "prices.csv"
    prices.to_csv(path)
    source = CsvSource(path)
    first = source.fetch("TSLA")
    path.unlink()
    pd.testing.assert_frame_equal(source.fetch("TSLA"), first)


@pytest.mark.realdata
def test_shared_tsla_csv_is_read_and_has_no_problems(shared_csv):
    got = CsvSource(shared_csv).fetch("TSLA")
    assert_normalised(got)
    assert len(got) > 3000
    assert validate_prices(got) == []


# --------------------------------------------------------------------------------------------- synthetic


def test_synthetic_source_is_deterministic_for_a_seed():
    a = SyntheticSource(seed=7).fetch("TSLA")
    pd.testing.assert_frame_equal(a, SyntheticSource(seed=7).fetch("TSLA"))
    assert not a["close"].equals(SyntheticSource(seed=8).fetch("TSLA")["close"])


def test_synthetic_prices_are_valid_and_on_nyse_sessions():
    got = SyntheticSource(seed=1).fetch("TSLA")
    assert_normalised(got)
    assert got.index.equals(sessions("2018-01-02", "2024-12-31"))
    assert validate_prices(got) == []
    assert (got["volume"] > 0).all()


def test_synthetic_volatility_clusters():
    close = SyntheticSource(seed=0).fetch("TSLA")["close"]
    moves = np.abs(np.diff(np.log(close.to_numpy())))
    assert np.corrcoef(moves[1:], moves[:-1])[0, 1] > 0.05


def test_synthetic_fetch_is_limited_to_the_inclusive_range():
    got = SyntheticSource().fetch("TSLA", "2024-12-23", "2024-12-27")
    assert got.index.strftime("%m-%d").tolist() == ["12-23", "12-24", "12-26", "12-27"]


def test_generate_prices_returns_n_sessions_from_start():
    got = generate_prices(seed=3, n=10, start="2024-12-21")
    assert_normalised(got)
    assert got.index[0] == pd.Timestamp("2024-12-23")
    assert got.index.equals(sessions("2024-12-23", got.index[-1]))
    assert len(got) == 10
    pd.testing.assert_frame_equal(got, generate_prices(seed=3, n=10, start="2024-12-21"))


# --------------------------------------------------------------------------------------------- parse_source


@pytest.mark.parametrize(
    ("spec", "kind", "name"),
    [
        ("yahoo", YahooSource, "yahoo"),
        ("csv:data/x.csv", CsvSource, "csv"),
        ("synthetic", SyntheticSource, "synthetic"),
    ],
)
def test_parse_source_names_each_source(spec, kind, name):
    source = parse_source(spec)
    assert isinstance(source, kind)
    assert isinstance(source, PriceSource)
    assert source.name == name


def test_parse_source_reads_the_csv_path_and_synthetic_seed():
    assert parse_source("csv:/tmp/a b.csv").path == Path("/tmp/a b.csv")
    assert parse_source("synthetic:42").seed == 42


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("bloomberg", r"unknown source 'bloomberg': use yahoo, csv:PATH or synthetic\[:SEED\]"),
        ("csv", "unknown source 'csv'"),
        ("csv:", "needs a path"),
        ("synthetic:abc", "seed must be an integer"),
    ],
)
def test_parse_source_rejects_bad_specs(spec, message):
    with pytest.raises(ConfigError, match=message):
        parse_source(spec)


# --------------------------------------------------------------------------------------------- several tickers


def test_synthetic_source_gives_each_ticker_its_own_reproducible_series():
    source = SyntheticSource(seed=3)
    aaa, bbb = source.fetch("AAA"), source.fetch("BBB")
    assert not np.allclose(aaa["close"], bbb["close"]), "two tickers must not share one series"
    pd.testing.assert_frame_equal(aaa, SyntheticSource(seed=3).fetch("AAA"))  # any process, any instance
    assert validate_prices(bbb) == []


def test_csv_path_template_reads_one_file_per_ticker(tmp_path):
    for seed, ticker in enumerate(("AAA", "BBB")):
        generate_prices(seed=seed, n=30, start="2024-01-02").to_csv(tmp_path / f"{ticker}.csv", index_label="date")
    source = parse_source(f"csv:{tmp_path}/{{ticker}}.csv")
    for seed, ticker in enumerate(("AAA", "BBB")):
        expected = generate_prices(seed=seed, n=30, start="2024-01-02")
        np.testing.assert_allclose(source.fetch(ticker)["close"], expected["close"])
    with pytest.raises(SourceError, match=r"price file not found: .*CCC\.csv"):
        source.fetch("CCC")


def test_csv_plain_path_is_one_series_for_every_ticker(tmp_path):
    generate_prices(seed=1, n=20).to_csv(tmp_path / "one.csv", index_label="date")
    source = CsvSource(tmp_path / "one.csv")
    pd.testing.assert_frame_equal(source.fetch("AAA"), source.fetch("BBB"))
