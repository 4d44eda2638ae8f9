"""The Dask settings docs/scale-out.md recommends (``flows.cluster.RECOMMENDED_DASK_CONFIG``): their environment
variables are the ones Dask reads, and a process that polls more often than they say is found."""

from __future__ import annotations

import re

import dask
import pytest

from flows.cluster import RECOMMENDED_DASK_CONFIG, RECOMMENDED_DASK_ENV, busier_than_recommended


def test_the_recommended_environment_is_what_dask_reads_as_the_recommended_config():
    assert all(re.fullmatch(r"DASK_[A-Z0-9_]+", name) for name in RECOMMENDED_DASK_ENV), "names a shell can set"
    read = dask.config.collect_env(RECOMMENDED_DASK_ENV)  # Dask's own parsing of DASK_* variables
    assert {key: dask.config.get(key, config=read) for key in RECOMMENDED_DASK_CONFIG} == RECOMMENDED_DASK_CONFIG


def test_dasks_defaults_poll_more_often_than_recommended():
    defaults = dask.config.merge(*dask.config.defaults)  # Dask's and distributed's shipped defaults
    with dask.config.set({key: dask.config.get(key, config=defaults) for key in RECOMMENDED_DASK_CONFIG}):
        found = busier_than_recommended()
        on_scheduler = busier_than_recommended(scheduler=True)
    assert found == ["distributed.worker.profile.enabled=True", "distributed.admin.tick.interval=20ms",
                     "distributed.admin.system-monitor.interval=500ms"]  # fmt: skip
    assert on_scheduler == found[1:], "a scheduler runs no worker profiler"


@pytest.mark.parametrize("slower", [{}, {"distributed.admin.tick.interval": "2s"},
                                    {"distributed.admin.system-monitor.interval": "1 minute"}])  # fmt: skip
def test_the_recommended_settings_or_slower_ones_are_not_reported(slower):
    with dask.config.set(RECOMMENDED_DASK_CONFIG | slower):
        assert busier_than_recommended() == []
