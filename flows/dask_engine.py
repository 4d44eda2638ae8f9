"""Prefect's task engine on a Dask worker, without rebuilding the settings and the API client for every task.

:class:`prefect_dask.DaskTaskRunner` sends each task with the client's serialized Prefect context. On the worker,
Prefect then validates the whole settings model again from that dict, and builds two new API clients (one for the
context, one for the engine), each loading the CA bundle into a new SSL context, even for an ``http://`` API. That
is about 70 ms of CPU per task, and over 90 % of the engine's own cost there (docs/scale-out.md).
Prefect's in-process task runners avoid it: their tasks share the flow's settings and client contexts.

:class:`ReusingDaskTaskRunner` does the same per worker thread. Its tasks run through :func:`run_task_on_worker`,
which keeps, per thread and per distinct serialized settings, one hydrated
:class:`~prefect.context.SettingsContext` and one open :class:`~prefect.context.SyncClientContext`. Everything else
(the flow run, task run, tags and asset contexts, the engine itself) is Prefect's, unchanged. A client with other
settings (another API URL or key) gets contexts of its own; a closed client is replaced. The kept clients are
closed when the worker closes (:class:`KeptClientsPlugin`, which the runner registers). Async tasks take Prefect's
own path. The client also serializes the settings once per settings context rather than once per task.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import json
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any
from uuid import uuid4

from distributed import Client, Future
from distributed.diagnostics.plugin import WorkerPlugin
from prefect_dask import DaskTaskRunner
from prefect_dask.client import PrefectDaskClient

if TYPE_CHECKING:
    from prefect.context import SettingsContext, SyncClientContext

CONTEXTS_PER_THREAD = 4
"""Settings kept per worker thread: a worker normally serves one client configuration; older ones are closed."""

DASK_SUBMIT_OPTIONS = tuple(name for name, p in inspect.signature(Client.submit).parameters.items()
                            if p.kind is p.KEYWORD_ONLY and name != "key")  # fmt: skip
"""The keyword arguments :meth:`distributed.Client.submit` takes for itself (``workers``, ``retries``, ``pure``...;
read from its signature), passed on as they come."""

_lock = threading.Lock()
_contexts: dict[int, OrderedDict[str, tuple[SettingsContext, SyncClientContext]]] = {}


def run_task_on_worker(**run_task_kwargs: Any) -> Any:
    """What :class:`~prefect_dask.client.PrefectDaskClient` runs on the worker (``run_task_sync``), with this
    thread's kept settings and client contexts in place of new ones. Async tasks: Prefect's path, unchanged."""
    from prefect.context import SyncClientContext
    from prefect.task_engine import run_task_async, run_task_sync

    if run_task_kwargs["task"].isasync:
        return asyncio.run(run_task_async(**run_task_kwargs))
    context = dict(run_task_kwargs["context"])
    settings, client = _thread_contexts(context.pop("settings_context", None) or {})
    # The engine finds the client context current and uses it; hydrated_context then only adds the flow run's
    # contexts, since the settings context is already entered. Both are left as they were afterwards.
    token = SyncClientContext.__var__.set(client)
    try:
        with settings.model_copy():
            return run_task_sync(**(run_task_kwargs | {"context": context}))
    finally:
        SyncClientContext.__var__.reset(token)


def _thread_contexts(serialized: dict[str, Any]) -> tuple[SettingsContext, SyncClientContext]:
    """This thread's settings and (open) client contexts for ``serialized`` settings, made on first use, or again
    when its client was closed. A key that differs for equal settings only costs a new client."""
    from prefect.context import SettingsContext

    key = json.dumps(serialized, sort_keys=True, default=str)
    thread = threading.get_ident()
    with _lock:
        kept = _contexts.setdefault(thread, OrderedDict())
        found = kept.get(key)
        if found is not None and not found[1].client._closed:
            kept.move_to_end(key)
            return found
        kept.pop(key, None)
    settings = SettingsContext(**serialized) if serialized else SettingsContext.get()
    if settings is None:
        raise RuntimeError("no Prefect settings context on this Dask worker")
    client = contextvars.copy_context().run(_open_client, settings)
    with _lock:
        kept = _contexts.setdefault(thread, OrderedDict())  # anew: close_all() may have run meanwhile
        kept[key] = (settings, client)
        evicted = [kept.popitem(last=False)[1][1] for _ in range(len(kept) - CONTEXTS_PER_THREAD)]
    for old in evicted:  # this thread's own, and it is between tasks: no task uses them
        _close(old)
    return settings, client


def _open_client(settings: SettingsContext) -> SyncClientContext:
    """A client context made under ``settings`` and entered, which opens its client and checks the server's API
    version, as the engine's own does (a failure closes it again). Run in a copied context, so that it does not
    become current here."""
    from prefect.context import SyncClientContext

    with settings.model_copy():
        context = SyncClientContext()
        try:
            return context.__enter__()
        except BaseException:
            with contextlib.suppress(Exception):
                _close(context)
            raise


def close_all() -> None:
    """Close every kept client (:class:`KeptClientsPlugin`'s teardown, when the worker closes)."""
    with _lock:
        kept = [client for per_thread in _contexts.values() for _, client in per_thread.values()]
        _contexts.clear()
    for client in kept:
        _close(client)


def _close(client: SyncClientContext) -> None:
    client.client.__exit__(None, None, None)


class KeptClientsPlugin(WorkerPlugin):
    """Closes a worker's kept Prefect clients when the worker closes. Idempotent: registering it again (every
    ``--dask`` run does) leaves the one in place, so no client that a running task uses is closed."""

    name = "tsla-forecast-kept-prefect-clients"
    idempotent = True

    def teardown(self, worker: Any) -> None:
        close_all()


class _PrefectDaskClient(PrefectDaskClient):
    """:class:`PrefectDaskClient` whose tasks run through :func:`run_task_on_worker`, with the settings serialized
    once per settings context instead of once per task (about 15 ms each)."""

    _settings: tuple[Any, dict[str, Any]] | None = None  # (the settings context, its serialized form)

    def submit(self, func: Any, *args: Any, key: Any = None, **kwargs: Any) -> Any:
        """A Prefect task as :meth:`PrefectDaskClient.submit` submits it (the same keyword arguments for
        :func:`~prefect.task_engine.run_task_sync`), anything else unchanged."""
        from dask.utils import funcname
        from prefect.tasks import Task
        from prefect.utilities.callables import get_call_parameters
        from prefect.utilities.engine import collect_task_run_inputs_sync

        if not isinstance(func, Task):
            return super().submit(func, *args, key=key, **kwargs)
        options = {name: kwargs.pop(name) for name in DASK_SUBMIT_OPTIONS if name in kwargs}
        task_run_id = uuid4()
        passed = kwargs.pop("dependencies", None) or {}
        wait_for, return_type = kwargs.pop("wait_for", None), kwargs.pop("return_type", "result")
        parameters = kwargs.get("parameters")
        if parameters is None:  # the client used directly, without the task runner
            parameters = get_call_parameters(func, args, kwargs)
        dependencies = {name: collect_task_run_inputs_sync(value, future_cls=Future) | passed.get(name, set())
                        for name, value in parameters.items()}  # fmt: skip
        asset = {"task": func, "task_run_id": task_run_id, "task_inputs": dependencies, "copy_to_child_ctx": True}
        future = Client.submit(self, run_task_on_worker, key=key or f"{funcname(func)}-{task_run_id.hex}",
                               task=func, task_run_id=task_run_id, wait_for=wait_for, return_type=return_type,
                               parameters=parameters, dependencies=dependencies,
                               context=self._serialize_context(asset), **options)  # fmt: skip
        future.task_run_id = task_run_id  # type: ignore[attr-defined]  # as PrefectDaskClient sets it
        return future

    def _serialize_context(self, asset_ctx_kwargs: dict[str, Any]) -> dict[str, Any]:
        """:func:`prefect.context.serialize_context`, the same dict, with the settings context serialized once
        while it stays current (a test checks that both give the same)."""
        from prefect.context import (
            AssetContext,
            EngineContext,
            SettingsContext,
            TagsContext,
            TaskRunContext,
            _deployment_id,
            _deployment_parameters,
        )

        settings, kept = SettingsContext.get(), self._settings
        if settings is not None and (kept is None or kept[0] is not settings):
            kept = self._settings = (settings, settings.serialize())  # one local pair: safe for concurrent submits
        deployment_id = _deployment_id.get()
        return {
            "flow_run_context": flow.serialize() if (flow := EngineContext.get()) else {},
            "task_run_context": task.serialize() if (task := TaskRunContext.get()) else {},
            "tags_context": tags.serialize() if (tags := TagsContext.get()) else {},
            "settings_context": kept[1] if settings is not None and kept is not None else {},
            "asset_context": AssetContext.from_task_and_inputs(**asset_ctx_kwargs).serialize(),
            "deployment_id": str(deployment_id) if deployment_id else None,
            "deployment_parameters": _deployment_parameters.get(),
        }


class ReusingDaskTaskRunner(DaskTaskRunner):
    """A :class:`~prefect_dask.DaskTaskRunner` on an existing cluster (``address``) whose workers keep their Prefect
    settings and API client between tasks (see the module docstring)."""

    @property
    def client(self) -> PrefectDaskClient:
        # otherwise (a local cluster, a performance report) Prefect's own client, and Prefect's per-task rebuilds
        if not self._client and self.address and not self.performance_report_path:
            self.logger.info(f"Connecting to an existing Dask cluster at {self.address}")
            client = self._exit_stack.enter_context(_PrefectDaskClient(self.address, **self.client_kwargs))
            client.register_plugin(KeptClientsPlugin())
            self._client = client
        return super().client
