"""The backtest and sine commands: outputs on success, one clear line and a non-zero exit on bad input."""

import datetime as dt
import json
import re
import subprocess
import sys

import pandas as pd
import pytest


def assert_one_line_error(result, pattern: str, code: int = 1) -> None:
    assert result.returncode == code, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(lines) == 1, result.stderr
    assert pattern in lines[0]
    assert "Traceback" not in result.stderr


def test_help_does_not_import_tensorflow(cli):
    assert cli("--help").returncode == 0
    code = (
        "import sys; from flows.cli import app; app(['--help'], standalone_mode=False); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'prefect')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout + out.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--preset", "bogus"], "unknown preset 'bogus'"), (["--source", "ftp:x"], "unknown source 'ftp:x'"),
     (["--start", "2023-03-11"], "is after --end")],
    ids=["preset", "source", "dates"],
)  # fmt: skip
def test_an_input_error_fails_before_the_backtest_job_loads(tmp_path, args, message):
    """A typo fails on light modules: the job (scipy, scikit-learn, the models) is not imported first."""
    result, loaded = _backtest_reporting_heavy_imports(tmp_path, *args)
    assert (result.returncode, loaded) == (1, "[]"), result.stdout + result.stderr[-2000:]
    assert_one_line_error(result, message)


def _backtest_reporting_heavy_imports(cwd, *args: str) -> tuple[subprocess.CompletedProcess, str]:
    """``tsla-forecast backtest`` over 2023-03-01..10 with ``args`` in a fresh process: its exit code and output,
    and which of the backtest job, scikit-learn and TensorFlow it had imported when it exited."""
    argv = ["tsla-forecast", "backtest", "--start", "2023-03-01", "--end", "2023-03-10", *args]
    code = (
        f"import sys; sys.argv = {argv!r}\nfrom flows.cli import main\n"
        "try:\n    main()\nexcept SystemExit as exit:\n    code = exit.code\n"
        "print(code, [m for m in ('flows.jobs.backtest', 'sklearn', 'tensorflow') if m in sys.modules])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)
    exit_code, _, loaded = out.stdout.strip().splitlines()[-1].partition(" ")
    return subprocess.CompletedProcess(out.args, int(exit_code), out.stdout, out.stderr), loaded


def test_a_bad_policy_is_a_usage_error_before_the_backtest_job_loads(tmp_path):
    """``--policy`` takes the job's policies only, checked by the command line itself like ``--retrain``."""
    from flows.cli import BacktestPolicy
    from flows.jobs.backtest import POLICIES

    assert [p.value for p in BacktestPolicy] == list(POLICIES)
    result, loaded = _backtest_reporting_heavy_imports(tmp_path, "--policy", "prod")
    assert (result.returncode, loaded) == (2, "[]"), result.stdout + result.stderr[-2000:]
    assert_one_line_error(result, "'prod'", code=2)
    assert "--policy" in result.stderr and "production" in result.stderr, result.stderr


def test_unknown_preset(cli, price_csv):
    args = ["backtest", "--source", f"csv:{price_csv}", "--start", "2023-03-01", "--end", "2023-03-10"]
    assert_one_line_error(cli(*args, "--preset", "bogus"), "unknown preset 'bogus'")


def test_unknown_source(cli):
    assert_one_line_error(cli("backtest", "--source", "ftp:x", "--start", "2023-03-01", "--end", "2023-03-10"),
                          "unknown source 'ftp:x'")  # fmt: skip


def test_missing_file(cli, tmp_path):
    missing = tmp_path / "nope.csv"
    result = cli("backtest", "--source", f"csv:{missing}", "--start", "2023-03-01", "--end", "2023-03-10")
    assert_one_line_error(result, f"price file not found: {missing}")


def test_csv_without_close_column(cli, tmp_path, price_csv):
    bad = tmp_path / "noclose.csv"
    pd.read_csv(price_csv).drop(columns=["close"]).to_csv(bad, index=False)
    result = cli("backtest", "--source", f"csv:{bad}", "--start", "2023-03-01", "--end", "2023-03-10")
    assert_one_line_error(result, "has no 'close' column")


def test_unknown_policy(cli, price_csv):
    args = ["backtest", "--source", f"csv:{price_csv}", "--start", "2023-03-01", "--end", "2023-03-10"]
    result = cli(*args, "--policy", "sometimes")
    assert_one_line_error(result, "Invalid value for '--policy'", code=2)
    assert "'sometimes' is not one of 'production', 'schedule'" in result.stderr


def test_an_end_past_the_data_is_said_not_silently_truncated(price_csv):
    from flows.jobs.backtest import past_the_data

    prices = pd.read_csv(price_csv, index_col="date", parse_dates=True)
    last = prices.index[-1].date()
    assert past_the_data(prices, last) is None
    said = past_the_data(prices, dt.date(2030, 1, 2))
    assert said is not None and said.startswith(f"--end 2030-01-02 is past the data: the source's last bar is {last}")


def test_start_after_end(cli, price_csv):
    result = cli("backtest", "--source", f"csv:{price_csv}", "--start", "2023-03-10", "--end", "2023-03-01")
    assert_one_line_error(result, "--start 2023-03-10 is after --end 2023-03-01")


def test_range_with_fewer_rows_than_the_window(cli, tmp_path, price_csv):
    short = tmp_path / "short.csv"
    pd.read_csv(price_csv).head(25).to_csv(short, index=False)
    result = cli("backtest", "--source", f"csv:{short}", "--start", "2022-02-01", "--end", "2022-02-07")
    assert_one_line_error(result, "window 30")


def test_bad_prices_are_listed_and_never_trained_on(cli, tmp_path, price_csv):
    bad = tmp_path / "bad.csv"
    frame = pd.read_csv(price_csv)
    frame.loc[10, "close"] = float("nan")
    frame = pd.concat([frame, frame.iloc[[20]]])
    frame.to_csv(bad, index=False)
    result = cli("backtest", "--source", f"csv:{bad}", "--start", "2023-03-01", "--end", "2023-03-10")
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "NaN" in result.stderr and "duplicate" in result.stderr
    assert "epoch" not in result.stderr


def test_bad_date_is_a_usage_error(cli):
    assert_one_line_error(cli("backtest", "--start", "2023-02-30", "--end", "2023-03-01"), "--start", code=2)


@pytest.mark.slow
def test_backtest_writes_summary_forecasts_and_plots(cli, price_csv, tmp_path):
    out = tmp_path / "bt"
    result = cli(
        "backtest", "--source", f"csv:{price_csv}", "--start", "2023-06-01", "--end", "2023-06-15",
        "--refit-every", "5", "--epochs", "2", "--output", str(out),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    summary = json.loads((out / "summary.json").read_text())
    for name in ("lstm", "naive", "drift"):
        assert {"rmse", "mae", "mape", "r2", "mase", "directional_accuracy", "call_accuracy"} <= set(summary[name])
    assert {"u2", "coverage80", "coverage95", "winkler80", "winkler95", "pinball", "dm_stat"} <= set(summary["lstm"])
    assert "model" not in summary, "summary.json calls the LSTM by its name"
    assert summary["n_forecasts"] == 11 and summary["preset"] == "default"
    counts = summary["policy"]["lstm"]["counts"]  # the deployed policy is the default
    assert counts["sessions"] == 11 and counts["full_retrains"] >= 1 and len(summary["policy"]["lstm"]["trail"]) == 11
    assert {"start", "end", "seconds"} <= set(summary)
    forecasts = pd.read_csv(out / "forecasts.csv")
    assert set(forecasts["model"]) == {"lstm", "naive", "drift", "moving_average", "range_ewma", "garch"}
    assert (out / "track_record.png").stat().st_size > 5000
    assert "walk-forward" in result.stderr, "a progress bar is shown"
    run_id = re.search(r"stored as backtest run (\d+)", result.stdout).group(1)
    again = cli(
        "backtest", "--source", f"csv:{price_csv}", "--start", "2023-06-01", "--end", "2023-06-15",
        "--refit-every", "5", "--epochs", "2", "--output", str(out),
    )  # fmt: skip
    assert again.returncode == 0 and f"already stored as run {run_id}: nothing" in again.stdout, again.stderr


@pytest.mark.slow
def test_sine_prints_loss_table_and_writes_json_and_png(cli, tmp_path):
    result = cli("sine", "--epochs", "3", "--output", str(tmp_path))
    assert result.returncode == 0, result.stderr
    assert (
        "val_loss" in result.stdout and len([ln for ln in result.stdout.splitlines() if ln.strip()[:1].isdigit()]) == 3
    )
    data = json.loads((tmp_path / "sine.json").read_text())
    assert len(data["val_loss"]) == 3 and data["test_rmse"] > 0
    assert (tmp_path / "sine.png").read_bytes()[:4] == b"\x89PNG"
