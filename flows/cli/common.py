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


def describe_error(exc: BaseException) -> str | None:
    """The one-line message for an expected error, or None when it is a bug (which keeps its traceback)."""
    from forecaster.errors import ForecasterError

    if isinstance(exc, ForecasterError):
        return str(exc)
    try:
        from db.errors import DatabaseError
    except ImportError:  # pragma: no cover - db layer always present in the distribution
        DatabaseError = ()  # type: ignore[assignment]  # noqa: N806
    if isinstance(exc, DatabaseError):
        return str(exc)
    if isinstance(exc, FileNotFoundError | PermissionError | IsADirectoryError):
        return f"{exc.strerror}: {exc.filename}"
    return None
