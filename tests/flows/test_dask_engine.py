"""``flows.dask_engine``: on a real ``dask worker``, the tasks of a ``--dask`` run share one Prefect API client and one
hydrated settings context per distinct client settings, yet each task still runs in its own flow run's context,
with the settings its client sent, and Prefect's states, retries and failures are as before."""

from __future__ import annotations

import os
import uuid

import pytest
from prefect import flow, tags, task
from prefect.cache_policies import NO_CACHE
from prefect.context import serialize_context
from prefect.settings import PREFECT_LOGGING_LEVEL, temporary_settings

from flows.dask_engine import _PrefectDaskClient
from tests.fixtures.prefect_api import recorded_task_runs
from tests.flows.dask_procs import ROOT, Cluster

pytestmark = pytest.mark.timeout(300)


@task(name="probe", cache_policy=NO_CACHE)
def probe(i: int) -> tuple[str, str, int]:
    """What a task on the worker sees: the logging level of its settings, its flow run, the process."""
    from prefect.context import TaskRunContext
    from prefect.settings import get_current_settings

    run = TaskRunContext.get()
    assert run is not None
    return get_current_settings().logging.level, str(run.task_run.flow_run_id), os.getpid()


@task(name="flaky", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=0)
def flaky() -> int:
    """Fails its first attempt only."""
    from prefect.runtime import task_run

    if task_run.run_count < 2:
        raise RuntimeError("first attempt fails")
    return task_run.run_count


@task(name="broken", cache_policy=NO_CACHE)
def broken() -> None:
    raise ValueError("always fails")


def _count_clients() -> None:
    """Run on the worker: count the sync Prefect API clients built from now on."""
    from prefect.client.orchestration import SyncPrefectClient

    built = SyncPrefectClient.__init__

    def counting(self, *args, **kwargs) -> None:  # noqa: ANN001, ANN002, ANN003
        counting.made += 1  # type: ignore[attr-defined]
        built(self, *args, **kwargs)

    counting.made = 0  # type: ignore[attr-defined]
    SyncPrefectClient.__init__ = counting  # type: ignore[method-assign]


def _clients_made_and_kept() -> tuple[int, int]:
    from prefect.client.orchestration import SyncPrefectClient

    import flows.dask_engine

    kept = sum(len(per_thread) for per_thread in flows.dask_engine._contexts.values())
    return SyncPrefectClient.__init__.made, kept  # type: ignore[attr-defined]


def _close_kept_clients_in_place() -> None:
    """Run on the worker: close the kept clients but leave them kept, as a task that closed one would."""
    import flows.dask_engine

    for per_thread in flows.dask_engine._contexts.values():
        for _, client in per_thread.values():
            client.client.__exit__(None, None, None)


def test_the_context_sent_with_each_task_is_prefects_own_and_follows_a_settings_change():
    """The client serializes the settings once per settings context, and otherwise exactly as Prefect does."""
    asset = {"task": probe, "task_run_id": uuid.uuid4(), "task_inputs": {}, "copy_to_child_ctx": True}
    serializer = type("Serializer", (), {"_settings": None})()
    seen = []

    @flow(name="context-check")
    def check() -> None:
        with tags("a-tag"):
            for _ in range(2):  # the second time from what the first kept
                seen.append((_PrefectDaskClient._serialize_context(serializer, asset), serialize_context(asset)))
            with temporary_settings({PREFECT_LOGGING_LEVEL: "ERROR"}):  # a new settings context: sent anew
                seen.append((_PrefectDaskClient._serialize_context(serializer, asset), serialize_context(asset)))

    check()
    assert [ours == prefects for ours, prefects in seen] == [True, True, True]
    assert seen[0][0]["tags_context"] and seen[0][0]["flow_run_context"], "a flow run's contexts were sent"
    levels = [ours["settings_context"]["settings"]["logging"]["level"] for ours, _ in seen]
    assert levels[2] == "ERROR" != levels[0]


def test_tasks_on_a_worker_share_one_client_per_settings_and_keep_prefects_semantics(tmp_path):
    from distributed import Client

    from flows.cluster import dask_task_runner
    from flows.dask_engine import KeptClientsPlugin

    level = PREFECT_LOGGING_LEVEL.value()
    other = "ERROR" if level != "ERROR" else "DEBUG"
    running = Cluster(dict(os.environ) | {"PYTHONPATH": str(ROOT)})
    try:
        running.start_workers([tmp_path / "machine-1"])
        with Client(running.address, timeout="60s") as dask:
            dask.run(_count_clients)

            @flow(name="engine-check", task_runner=dask_task_runner(running.address))
            def engine_check(n: int) -> tuple[str, list, list]:
                from prefect.runtime import flow_run

                futures = probe.map(list(range(n)))
                retried, failed = flaky.submit(), broken.submit()
                return flow_run.id, [f.result() for f in futures], [retried.result(), failed.wait() or failed.state]

            first = engine_check(6)
            with temporary_settings({PREFECT_LOGGING_LEVEL: other}):  # the client's settings change
                second = engine_check(6)
            dask_task_runner(running.address)  # what a second run registers again (each flow run does too)
            third = engine_check(6)  # the first settings again: their client is still open, and reused
            (made, kept), *_ = dask.run(_clients_made_and_kept).values()
            dask.run(_close_kept_clients_in_place)
            fourth = engine_check(2)  # a closed client is replaced, not used
            (made_after_close, _), *_ = dask.run(_clients_made_and_kept).values()
            dask.unregister_worker_plugin(KeptClientsPlugin.name)  # as when the worker closes: clients closed
            (_, kept_after), *_ = dask.run(_clients_made_and_kept).values()
    finally:
        running.close()

    pids = {pid for _, seen, _ in (first, second, third, fourth) for _, _, pid in seen}
    assert len(pids) == 1 and os.getpid() not in pids, "every task ran on the one worker"
    for (flow_run_id, seen, (retried, failed)), sent in ((first, level), (second, other), (third, level),
                                                         (fourth, level)):  # fmt: skip
        assert {(lvl, run) for lvl, run, _ in seen} == {(sent, flow_run_id)}, "the flow's settings and flow run"
        assert retried == 2, "the flaky task succeeded on its second attempt"
        assert failed.is_failed() and "always fails" in str(failed.message), failed
    assert (made, kept, kept_after) == (2, 2, 0), "one client per client settings, for 24 task runs, closed at last"
    assert made_after_close == 3, "the closed client was replaced by one new client"
    runs = recorded_task_runs([first[0], second[0], third[0], fourth[0]], expected=28)
    states = sorted((r.name.split("-")[0], r.state_name) for r in runs)
    assert states == sorted([("probe", "Completed")] * 20 + [("flaky", "Completed")] * 4 + [("broken", "Failed")] * 4)


@task(name="threaded-probe", cache_policy=NO_CACHE)
def threaded_probe(i: int) -> tuple[int, str]:
    """Which worker thread ran this task, and its flow run (slow enough for both threads to take tasks)."""
    import threading
    import time

    from prefect.context import TaskRunContext

    time.sleep(0.3)
    run = TaskRunContext.get()
    assert run is not None
    return threading.get_ident(), str(run.task_run.flow_run_id)


def test_each_thread_of_a_worker_keeps_a_client_of_its_own(tmp_path):
    """A worker with two task threads: each thread that runs tasks builds one client, and only one."""
    from distributed import Client

    from flows.cluster import dask_task_runner

    running = Cluster(dict(os.environ) | {"PYTHONPATH": str(ROOT)})
    try:
        running.start_workers([tmp_path / "machine-1"], nthreads=2)
        with Client(running.address, timeout="60s") as dask:
            dask.run(_count_clients)

            @flow(name="threads-check", task_runner=dask_task_runner(running.address))
            def threads_check(n: int) -> tuple[str, list]:
                from prefect.runtime import flow_run

                return flow_run.id, [f.result() for f in threaded_probe.map(list(range(n)))]

            flow_run_id, seen = threads_check(8)
            (made, kept), *_ = dask.run(_clients_made_and_kept).values()
    finally:
        running.close()

    threads = {thread for thread, _ in seen}
    assert {run for _, run in seen} == {flow_run_id} and len(seen) == 8
    assert len(threads) == 2, "both task threads ran tasks"
    assert (made, kept) == (2, 2), "one client per thread, kept by each"
