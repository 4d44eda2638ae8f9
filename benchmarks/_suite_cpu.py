"""pytest plugin for ``benchmarks/suite.py``: the CPU each test costs, wherever it is spent.

Per test (setup, call and teardown), appended as one JSON line to ``$SUITE_CPU_OUT``:

- ``own``: the test process itself (user + system);
- ``waited``: subprocesses it started and waited for (``RUSAGE_CHILDREN``: CLI runs, ``initdb``, Chromium), less
  the CPU that helpers already running when the test began had used before it;
- ``helpers``: what the process's live children (the Prefect test API, Dask processes, servers, the preloaded
  launcher) and the processes they reaped spent during the test, sampled with psutil at its start and end, so a
  session-long server's work is charged to the tests that made it work. A command forked by the launcher counts
  here, not under ``waited``, once the launcher has reaped it (within 0.1 s of its end); a process still running
  under a live child is charged when it ends.
"""

from __future__ import annotations

import json
import os
import resource
import time
from collections.abc import Iterator

import psutil
import pytest

OUT_ENV = "SUITE_CPU_OUT"


def _descendants() -> dict[int, float]:
    """CPU seconds so far of this process's live children, by pid, each with what it has reaped (its own children,
    such as the commands that the preloaded launcher, tests/fixtures/preloaded.py, forks): every process is counted
    once, while it is a live child or after its parent reaped it, never both."""
    cpu = {}
    for proc in psutil.Process().children():
        try:
            times = proc.cpu_times()
        except psutil.Error:
            continue
        cpu[proc.pid] = times.user + times.system + times.children_user + times.children_system
    return cpu


def _rusage(who: int) -> float:
    usage = resource.getrusage(who)
    return usage.ru_utime + usage.ru_stime


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item, nextitem: pytest.Item | None) -> Iterator[None]:
    path = os.environ.get(OUT_ENV)
    if not path:
        yield
        return
    own, waited, before = _rusage(resource.RUSAGE_SELF), _rusage(resource.RUSAGE_CHILDREN), _descendants()
    started, started_at = time.perf_counter(), time.time()
    yield
    wall = time.perf_counter() - started
    after = _descendants()
    gone = sum(cpu for pid, cpu in before.items() if pid not in after)  # reaped helpers: counted from the start
    row = {
        "test": item.nodeid,
        "start": round(started_at, 3),
        "wall_s": round(wall, 3),
        "own_s": round(_rusage(resource.RUSAGE_SELF) - own, 3),
        "waited_s": round(max(0.0, _rusage(resource.RUSAGE_CHILDREN) - waited - gone), 3),
        "helpers_s": round(sum(cpu - before.get(pid, 0.0) for pid, cpu in after.items()), 3),
        "process": os.getpid(),
    }
    with open(path, "a", encoding="utf-8") as out:
        out.write(json.dumps(row) + "\n")
