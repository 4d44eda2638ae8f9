"""``python -m flows.cli``: the same entry point as the ``tsla-forecast`` console script."""

from flows.cli import main

main()
