"""Evaluation: the one scorer (metrics), walk-forward backtests, the report's tables."""
