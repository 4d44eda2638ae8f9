"""Exceptions of the forecasting core. Every message names the problem and carries the numbers."""


class ForecasterError(Exception):
    """Base class: anything the CLI should print as one line and exit non-zero."""


class SourceError(ForecasterError):
    """A price source could not deliver data (unreachable, empty answer, unreadable file)."""


class FinalBarMissingError(SourceError):
    """The source has no final bar for the as-of session yet (Yahoo is sometimes late after the close)."""


class InvalidPricesError(ForecasterError):
    """A price frame failed validation; ``problems`` lists every problem found."""

    def __init__(self, problems: list) -> None:
        self.problems = problems
        head = "; ".join(str(p) for p in problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        super().__init__(f"invalid prices: {len(problems)} problem(s): {head}{more}")


class ConfigError(ForecasterError):
    """An unknown preset, source or other bad configuration value."""


class NotEnoughDataError(ForecasterError):
    """Too few rows for the requested window, split or date range."""


class NotFittedError(ForecasterError):
    """``predict`` was called before ``fit``."""
