"""The one rule for a ticker symbol, wherever one enters: the CLI, flow and deployment parameters, the settings.

1 to 15 letters, digits, ``.``, ``-``, ``^`` or ``=`` (``TSLA``, ``BRK-B``, ``^GSPC``, ``EURUSD=X``), upper-cased. A
ticker names a report folder and a database key, so nothing else (no ``/``, no ``..``) gets through.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator, WithJsonSchema

TICKER_PATTERN = r"^[A-Za-z0-9.^=-]{1,15}$"
_TICKER = re.compile(TICKER_PATTERN)


def check_ticker(value: str) -> str:
    """``value`` stripped and upper-cased; ValueError with a readable message when it is not a ticker."""
    text = str(value).strip()
    if not _TICKER.fullmatch(text) or set(text) <= {"."}:
        raise ValueError(f"invalid ticker {value!r}: use 1 to 15 letters, digits, '.', '-', '^' or '='")
    return text.upper()


Ticker = Annotated[
    str,
    AfterValidator(check_ticker),
    WithJsonSchema({"type": "string", "pattern": TICKER_PATTERN, "maxLength": 15, "title": "ticker"}),
]
