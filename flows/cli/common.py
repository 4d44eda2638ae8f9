"""Shared CLI helpers: one-line errors, logging set-up and option types (no heavy imports)."""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import typer

DATE_FORMATS = ["%Y-%m-%d"]


def _click_classes(name: str) -> tuple[type[BaseException], ...]:
    """The class ``name`` from click and from the copy of click that Typer >= 0.29 vendors."""
    import click.exceptions

    found = [getattr(click.exceptions, name)]
    try:
        import typer._click.exceptions as vendored  # Typer's private copy of click

        found.append(getattr(vendored, name))
    except (ImportError, AttributeError):
        pass
    return tuple(found)


CLICK_ERRORS = _click_classes("ClickException")
CLICK_ABORTS = _click_classes("Abort")


def fail(message: str, code: int = 1) -> NoReturn:
    """Print ``error: message`` on stderr and exit with ``code``."""
    typer.echo(f"error: {message}", err=True)
    raise SystemExit(code)


def setup_logging(level: int = logging.INFO) -> None:
    """Log lines on stderr with timestamps; quiet the chattiest libraries."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)-7s %(name)s: %(message)s", stream=sys.stderr)
    for noisy in ("yfinance", "urllib3", "matplotlib", "httpx", "asyncio", "absl", "alembic"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def ticker_option(value: str | list[str] | None) -> str | list[str] | None:
    """Typer callback of every ``--ticker``: the one ticker rule (:mod:`flows.tickers`), upper-cased."""
    from flows.tickers import check_ticker

    try:
        if value is None:
            return None
        return check_ticker(value) if isinstance(value, str) else [check_ticker(v) for v in value]
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from None


def existing_database(url: str) -> str:
    """``url``, once it is known to exist: commands that only read never create a SQLite file (or its folder)."""
    from pathlib import Path

    from db.engine import parse_url, redact

    parsed = parse_url(url)
    database = parsed.database or ""
    if (
        parsed.get_backend_name() == "sqlite"
        and database
        and database != ":memory:"
        and not database.startswith("file:")
    ):
        if not Path(database).expanduser().is_file():
            fail(f"no database at {redact(parsed)} yet: `tsla-forecast run` (or `tsla-forecast db upgrade`) creates it")
    return url


def describe_error(exc: BaseException) -> str | None:
    """The one-line message for an expected error, or None when it is a bug (which keeps its traceback)."""
    from pydantic import ValidationError

    from forecaster.errors import ForecasterError

    if isinstance(exc, ForecasterError):
        return str(exc)
    if isinstance(exc, ValidationError):  # a TSLA_FORECAST_* setting (or a flow parameter) that breaks a rule
        first = exc.errors()[0]
        name = str(first["loc"][0]) if first["loc"] else ""
        where = f"setting TSLA_FORECAST_{name.upper()}" if exc.title == "Settings" else f"{exc.title} {name}"
        return f"invalid {where}: {first['msg'].removeprefix('Value error, ')}"
    try:
        from db.errors import DatabaseError
    except ImportError:  # pragma: no cover - db layer always present in the distribution
        DatabaseError = ()  # type: ignore[assignment,misc]  # noqa: N806
    if isinstance(exc, DatabaseError):
        return str(exc)
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
        return f"{exc.strerror}: {exc.filename}"
    return None
