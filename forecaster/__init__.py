"""Pure forecasting core: price frames in, forecasts, metrics and figures out.

This package never imports Prefect or SQLAlchemy, and importing it does not import TensorFlow:
Keras is loaded lazily by :mod:`forecaster.models.networks` only when a neural model is built or loaded.

The one frame layout used everywhere (``PRICE_COLUMNS``): a ``DatetimeIndex`` named ``date``
(tz-naive, midnight, ascending, unique) and float columns ``open, high, low, close, volume``.
"""

from forecaster.errors import ForecasterError

PRICE_COLUMNS: tuple[str, ...] = ("open", "high", "low", "close", "volume")

__all__ = ["PRICE_COLUMNS", "ForecasterError"]
