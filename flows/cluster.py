"""``--dask``: a Dask task runner whose workers all report to the client's Prefect API and share the load.

Prefect sends the client's settings (its API URL included) with every task, so a worker reports to whatever API the
client uses. A client in ephemeral mode has no URL to send: each worker would then start a private Prefect server
of its own (invisible to the flow's API, and orphaned when the worker is killed). :func:`dask_task_runner` therefore
refuses a client without ``PREFECT_API_URL``, checks that every worker reaches that API, and sets it in the workers'
environment (a worker plugin, so workers that join later get it too). It also logs one INFO line naming the
processes that poll more often than :data:`RECOMMENDED_DASK_CONFIG` (Dask's defaults do).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from distributed.diagnostics.plugin import WorkerPlugin

from forecaster.errors import ConfigError

if TYPE_CHECKING:
    from distributed import Client
    from prefect_dask import DaskTaskRunner

HOW = ("start a Prefect server (`prefect server start --host 0.0.0.0`) and set PREFECT_API_URL=http://HOST:4200/api "
       "for this command and every Dask worker")  # fmt: skip
CONNECT_TIMEOUT = "30s"
RECOMMENDED_DASK_CONFIG: dict[str, bool | str] = {
    "distributed.worker.profile.enabled": False,  # sampling the running task's stack every 10 ms
    "distributed.admin.tick.interval": "1s",  # the event loop's health check: 50 wake-ups a second by default
    "distributed.admin.system-monitor.interval": "5s",  # host readings for the dashboard: 2 a second by default
}
"""What docs/scale-out.md recommends for the ``dask scheduler`` and every ``dask worker``. On Dask's defaults they
poll while the cluster idles and while a ticker trains: the profiler costs about 0.2 s of CPU per ticker, the tick
and the system monitor about 0.04 s per ticker in the scheduler and 0.02 s in a worker (24 tickers on one worker).
The worker's memory monitor, which enforces the memory limit, keeps its default."""
RECOMMENDED_DASK_ENV = {"DASK_" + key.replace(".", "__").replace("-", "_").upper(): str(value)
                        for key, value in RECOMMENDED_DASK_CONFIG.items()}  # fmt: skip
""":data:`RECOMMENDED_DASK_CONFIG` as the environment of the processes (``DASK_DISTRIBUTED__ADMIN__TICK__INTERVAL=1s``,
...)."""
logger = logging.getLogger("flows.cluster")


class PrefectApiError(ConfigError):
    """A ``--dask`` run without one Prefect API that the client and every worker share."""


class PrefectApiPlugin(WorkerPlugin):
    """Sets ``PREFECT_API_URL`` in each worker's environment (present and future workers alike)."""

    name = "tsla-forecast-prefect-api"

    def __init__(self, url: str) -> None:
        self.url = url

    def setup(self, worker) -> None:  # noqa: ANN001 - distributed.Worker
        os.environ["PREFECT_API_URL"] = self.url


def shared_api_url() -> str:
    """The client's Prefect API URL; :class:`PrefectApiError` in ephemeral mode, which workers cannot share."""
    from prefect.settings import PREFECT_API_URL

    url = PREFECT_API_URL.value()
    if not url:
        raise PrefectApiError(f"--dask needs a Prefect server shared with the workers, and PREFECT_API_URL is not set: "
                              f"{HOW}")  # fmt: skip
    return str(url)


def api_problem(url: str) -> str | None:
    """Run on a worker: None when ``url``'s health check answers, else the reason."""
    import httpx

    try:
        httpx.get(f"{url.rstrip('/')}/health", timeout=10).raise_for_status()
    except httpx.HTTPError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def share_api(client: Client, url: str) -> None:
    """Hand ``url`` to every worker; :class:`PrefectApiError` names the first worker that cannot reach it."""
    client.register_plugin(PrefectApiPlugin(url))
    problems = {w: p for w, p in client.run(api_problem, url).items() if p}
    if problems:
        worker, problem = next(iter(sorted(problems.items())))
        raise PrefectApiError(f"Dask worker {worker} cannot reach the Prefect API at {url} ({problem}): {HOW}")


def busier_than_recommended(scheduler: bool = False) -> list[str]:
    """Run on a Dask worker (or the ``scheduler``, which has no ``distributed.worker`` settings to check): the
    settings of :data:`RECOMMENDED_DASK_CONFIG` that make it poll more often than recommended, as ``key=value``."""
    import dask
    from dask.utils import parse_timedelta

    busier = []
    for key, recommended in RECOMMENDED_DASK_CONFIG.items():
        if scheduler and key.startswith("distributed.worker."):
            continue
        value = dask.config.get(key)
        if isinstance(recommended, bool):
            more = bool(value) and not recommended
        else:
            more = parse_timedelta(value) < parse_timedelta(recommended)
        if more:
            busier.append(f"{key}={value}")
    return busier


def note_busy_settings(client: Client) -> None:
    """Log (INFO, one line) the Dask processes that run busier than :data:`RECOMMENDED_DASK_CONFIG`: a run works
    either way, but each such setting costs CPU on every ticker."""
    found = {worker: busier for worker, busier in client.run(busier_than_recommended).items() if busier}
    if scheduler := client.run_on_scheduler(busier_than_recommended, scheduler=True):
        found = {"the scheduler": scheduler} | found
    if found:
        where = "; ".join(f"{name}: {', '.join(busier)}" for name, busier in found.items())
        env = " ".join(f"{name}={value}" for name, value in RECOMMENDED_DASK_ENV.items())
        logger.info("Dask polls more often than needed (%s): start the scheduler and the workers with %s "
                    "(docs/scale-out.md)", where, env)  # fmt: skip


def dask_task_runner(address: str) -> DaskTaskRunner:
    """A :class:`~flows.dask_engine.ReusingDaskTaskRunner` on the scheduler at ``address`` (its workers keep their
    Prefect settings and API client between tasks), once every worker shares the client's Prefect API (see the
    module docstring)."""
    from distributed import Client

    from flows.dask_engine import ReusingDaskTaskRunner

    url = shared_api_url()
    with Client(address, timeout=CONNECT_TIMEOUT) as client:
        share_api(client, url)
        note_busy_settings(client)
    return ReusingDaskTaskRunner(address=address)
