"""Plain functions, no Prefect: the jobs that the Prefect flows in :mod:`flows` (and the CLI) call."""
