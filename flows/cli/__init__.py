"""``tsla-forecast``: the command line. Heavy libraries (TensorFlow, Prefect) are imported inside commands only,
so ``--help`` and the database/history commands start instantly.

Every expected failure (bad input, unreachable source or database) prints one ``error: ...`` line on stderr and
exits non-zero; usage errors exit 2.
"""

from __future__ import annotations

import datetime as dt
import enum
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer

from flows.cli.common import CLICK_ABORTS, CLICK_ERRORS, DATE_FORMATS, fail, setup_logging, ticker_option

FROM_SETTINGS = "Default: the settings (TSLA_FORECAST_*)."
TickersOption = Annotated[
    list[str] | None, typer.Option(help=f"Ticker(s); repeat for several. {FROM_SETTINGS}", callback=ticker_option)
]
TickerOption = Annotated[
    str | None, typer.Option(help=f"Ticker symbol. {FROM_SETTINGS} (first of tickers)", callback=ticker_option)
]


class Retrain(enum.StrEnum):
    """The retrain policy of a run."""

    auto = "auto"
    full = "full"
    finetune = "finetune"


class BacktestPolicy(enum.StrEnum):
    """How a backtest retrains the LSTM (``flows.jobs.backtest.POLICIES``)."""

    production = "production"
    schedule = "schedule"


app = typer.Typer(
    help="TSLA daily forecasting: walk-forward backtests, the daily Prefect job, reports and the SQL history.",
    no_args_is_help=True,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    add_completion=False,
)


from flows.cli.db import db_app  # noqa: E402 - light import (no TensorFlow, no Prefect)

app.add_typer(db_app, name="db")

from flows.cli.models import models_app  # noqa: E402 - light import (no TensorFlow, no Prefect)

app.add_typer(models_app, name="models")


@app.callback()
def _root(
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="Only warnings and errors on stderr.")] = False,
) -> None:
    if quiet:  # read by Prefect and tqdm when the commands import them: their INFO lines and progress bars go too
        os.environ["PREFECT_LOGGING_LEVEL"] = "WARNING"
        os.environ["TQDM_DISABLE"] = "1"
    setup_logging(logging.WARNING if quiet else logging.INFO)


@app.command()
def backtest(
    start: Annotated[dt.datetime, typer.Option(formats=DATE_FORMATS, help="First target date scored (YYYY-MM-DD).")],
    end: Annotated[dt.datetime, typer.Option(formats=DATE_FORMATS, help="Last target date scored (YYYY-MM-DD).")],
    source: Annotated[str | None, typer.Option(help=f"yahoo, csv:PATH or synthetic[:SEED]. {FROM_SETTINGS}")] = None,
    ticker: TickerOption = None,
    preset: Annotated[
        str | None, typer.Option(help=f"Model preset: default, seed000, seed001, seed002, smoke. {FROM_SETTINGS}")
    ] = None,
    policy: Annotated[
        BacktestPolicy,
        typer.Option(
            help="production: replay the deployed champion/challenger policy (the daily job's own step, with the "
            "TSLA_FORECAST_* gate settings); schedule: the fixed cadence of --refit-every, for comparison."
        ),
    ] = BacktestPolicy.production,
    compare_schedule: Annotated[
        bool, typer.Option(help="With --policy production, also run the fixed schedule as lstm_schedule.")
    ] = False,
    refit_every: Annotated[
        int, typer.Option(min=0, help="--policy schedule: full refit every N origins (0 = once); fine-tune between.")
    ] = 20,
    horizon: Annotated[int | None, typer.Option(min=1, max=20, help=f"Forecast horizon H. {FROM_SETTINGS}")] = None,
    epochs: Annotated[int | None, typer.Option(min=1, help="Override the preset's epochs (quick runs).")] = None,
    output: Annotated[Path, typer.Option(help="Folder for summary.json, forecasts.csv and plots.")] = Path(
        "backtest-out"
    ),
    store: Annotated[
        bool, typer.Option(help="Store the run, metrics and forecasts (scope backtest) in the database.")
    ] = True,
) -> None:
    """Walk-forward backtest of the LSTM beside naive, drift and moving-average baselines on the same origins.

    Stored backtests are idempotent: the same parameters again print the stored summary and recompute nothing.

    Example: tsla-forecast backtest --source csv:../shared/data/tsla_daily.csv --start 2024-01-02 --end 2024-12-31
    """
    from flows.cli.backtest import run_backtest_command

    run_backtest_command(
        source=source, ticker=ticker, start=start, end=end, preset=preset, refit_every=refit_every,
        horizon=horizon, epochs=epochs, output=output, store=store, policy=policy.value,
        compare_schedule=compare_schedule,
    )  # fmt: skip


@app.command()
def sine(
    epochs: Annotated[int, typer.Option(min=1, help="Training epochs (the write-up used 20).")] = 20,
    output: Annotated[Path, typer.Option(help="Folder for sine.json and sine.png.")] = Path("sine-out"),
) -> None:
    """Reproduce the seed002 experiment: an LSTM(50) learns sin(t); prints the per-epoch loss table."""
    from flows.cli.sine import run_sine_command

    run_sine_command(epochs=epochs, output=output)


@app.command()
def run(
    ticker: TickersOption = None,
    as_of: Annotated[
        dt.datetime | None, typer.Option(formats=DATE_FORMATS, help="Session to forecast from (default: last close).")
    ] = None,
    source: Annotated[str | None, typer.Option(help=f"yahoo, csv:PATH or synthetic[:SEED]. {FROM_SETTINGS}")] = None,
    retrain: Annotated[
        Retrain | None, typer.Option(help=f"auto: the policy decides; full; finetune. {FROM_SETTINGS}")
    ] = None,
    preset: Annotated[str | None, typer.Option(help=f"Model preset for full retrains. {FROM_SETTINGS}")] = None,
    horizon: Annotated[int | None, typer.Option(min=1, max=20, help=f"Forecast horizon H. {FROM_SETTINGS}")] = None,
    dask: Annotated[str | None, typer.Option(help="Run the per-ticker fan-out on this Dask scheduler.")] = None,
) -> None:
    """Run the daily job once, now, in-process (no Prefect server needed): fetch, validate, score, retrain or
    fine-tune, gate, forecast and store. Uses $TSLA_FORECAST_HOME (default ~/.tsla-forecast) for the SQLite
    database and the model store unless $TSLA_FORECAST_DATABASE_URL is set.
    """
    from flows.cli.run import run_daily

    run_daily(tickers=ticker, as_of=as_of.date() if as_of else None, source=source,
              retrain=retrain.value if retrain else None, preset=preset, horizon=horizon, dask=dask)  # fmt: skip


@app.command()
def backfill(
    start: Annotated[dt.datetime, typer.Option(formats=DATE_FORMATS, help="First session to replay.")],
    end: Annotated[dt.datetime, typer.Option(formats=DATE_FORMATS, help="Last session to replay.")],
    ticker: TickersOption = None,
    source: Annotated[str | None, typer.Option(help=f"yahoo, csv:PATH or synthetic[:SEED]. {FROM_SETTINGS}")] = None,
    retrain: Annotated[Retrain | None, typer.Option(help=f"Retrain policy for every day. {FROM_SETTINGS}")] = None,
    preset: Annotated[str | None, typer.Option(help=f"Model preset for full retrains. {FROM_SETTINGS}")] = None,
    horizon: Annotated[int | None, typer.Option(min=1, max=20, help=f"Forecast horizon H. {FROM_SETTINGS}")] = None,
) -> None:
    """Replay the daily job for every NYSE session in [start, end], as if it had run each day. Resumable: finished
    days are skipped."""
    from flows.cli.run import run_backfill

    run_backfill(start=start.date(), end=end.date(), tickers=ticker, source=source,
                 retrain=retrain.value if retrain else None, preset=preset, horizon=horizon)  # fmt: skip


@app.command()
def history(
    last: Annotated[int, typer.Option(min=1, help="How many matured forecasts to show.")] = 30,
    ticker: Annotated[str | None, typer.Option(help="Only this ticker.", callback=ticker_option)] = None,
    horizon: Annotated[int | None, typer.Option(min=1, max=20, help="Only this horizon (default: all).")] = None,
) -> None:
    """Matured forecasts, newest first, beside their realised closes, errors and the naive error; direction and
    interval hits as yes/no (reads the database only). The newest, not yet matured forecast: `latest`."""
    from flows.cli.run import show_history

    show_history(ticker=ticker, last=last, horizon=horizon)


@app.command()
def latest(
    ticker: Annotated[str | None, typer.Option(help="Only this ticker.", callback=ticker_option)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The newest stored forecast of each ticker: every horizon with its 80% and 95% bands (reads the database
    only)."""
    from flows.cli.run import show_latest

    show_latest(ticker=ticker, as_json=as_json)


@app.command()
def report(
    ticker: TickerOption = None,
    as_of: Annotated[
        dt.datetime | None, typer.Option(formats=DATE_FORMATS, help="Day of the daily run (default: the latest).")
    ] = None,
    email: Annotated[bool, typer.Option("--email/--no-email", help="Also email it (TSLA_FORECAST_SMTP_*).")] = False,
) -> None:
    """Rebuild a daily run's report from the database alone (no training) into
    <home>/reports/<YYYY-MM-DD>/<TICKER>/: report.html, summary.json and the figures. Exits 1 when --email could
    not deliver it (the failure is recorded as a warning on the run)."""
    from flows.cli.report import report_command  # deliberately lazy, like every command: --help stays instant

    code = report_command(ticker=ticker, as_of=as_of.date() if as_of else None, email=email)
    if code:
        raise SystemExit(code)


@app.command()
def status(
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """Is the daily job healthy? Per ticker the last run, the champion, live U2 and 80% coverage (last 20 and 60
    sessions), the last warning and the next scheduled run. Exits 1 when a last daily run failed or a due session
    has no succeeded run (a health check for cron). Reads the database only."""
    from flows.cli.status import status_command

    code = status_command(as_json=as_json)
    if code:
        raise SystemExit(code)


PROCESS_ENV_DEFAULTS = {  # set by main() unless the environment has them, before TensorFlow or Prefect load
    "TF_CPP_MIN_LOG_LEVEL": "2",
    "TF_ENABLE_ONEDNN_OPTS": "0",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW": "ignore",  # `report --email` runs a bare task
    # Prefect's 20 s is too short for the ephemeral server's first start (its migrations) on a busy 2-core worker
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
}


def main() -> None:
    """Console-script entry point: one clean line for every expected error."""
    for name, value in PROCESS_ENV_DEFAULTS.items():
        os.environ.setdefault(name, value)
    try:
        code = app(standalone_mode=False)
    except CLICK_ERRORS as exc:
        ctx = getattr(exc, "ctx", None)
        if ctx is not None and type(exc).__name__ == "NoArgsIsHelpError":
            typer.echo(ctx.get_help(), err=True)
            raise SystemExit(2) from None
        hint = f" (see '{ctx.command_path} --help')" if ctx is not None else ""
        fail(f"{exc.format_message()}{hint}", code=getattr(exc, "exit_code", 2))  # type: ignore[attr-defined]
    except CLICK_ABORTS:
        fail("aborted", code=130)
    except Exception as exc:  # noqa: BLE001 - last line of defence: expected errors only get one line
        from flows.cli.common import describe_error

        message = describe_error(exc)
        if message is None:
            raise
        fail(message)
    sys.exit(code or 0)
