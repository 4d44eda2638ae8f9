"""The test session's Prefect API: under pytest-xdist, one for every test process (tests/conftest.py)."""

from __future__ import annotations

import os
import threading
from uuid import UUID

import psutil

from tests.conftest import SHARE_SWITCH, SHARED_PREFECT_API


def _is_test_api(process: psutil.Process) -> bool:
    """A Prefect test API or ephemeral server (``SubprocessASGIServer``: uvicorn on Prefect's app), not the
    ``prefect server start`` of an end-to-end stack that a test process may also run."""
    try:
        command = " ".join(process.cmdline())
    except psutil.Error:
        return False
    return "uvicorn" in command and "prefect.server.api.server" in command


def test_flows_of_every_thread_report_to_the_one_session_api(prefect_api):
    """Under xdist the API is the controller's: this process starts no test API of its own, and a flow run in this
    process, from the test's thread or from a new one, is in that API."""
    from prefect import flow, get_client
    from prefect.runtime import flow_run

    if os.environ.get("PYTEST_XDIST_WORKER") and os.environ.get(SHARE_SWITCH) != "0":
        assert prefect_api == os.environ.get(SHARED_PREFECT_API), "each xdist process would start its own server"
        servers = [p for p in psutil.Process().children(recursive=True) if _is_test_api(p)]
        assert servers == [], [p.cmdline() for p in servers]

    @flow(name="session-api-probe")
    def probe() -> str:
        return str(flow_run.id)

    ids = [probe()]
    thread = threading.Thread(target=lambda: ids.append(probe()))
    thread.start()
    thread.join(timeout=120)
    assert len(ids) == 2, "the flow in a new thread did not finish"
    with get_client(sync_client=True) as client:
        assert str(client.api_url).rstrip("/") == prefect_api.rstrip("/")
        assert [client.read_flow_run(UUID(i)).name for i in ids]  # both in this API (404 otherwise)
