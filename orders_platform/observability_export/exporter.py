"""The run-side exporter: called at each step's start and end, never fails or stalls a run.

- step start (first step of the run only): OpenLineage START.
- step end (a Dagster hook, after the step's events are stored): the step's materializations
  and check results become Pushgateway groups; when the run has no step left to execute, the
  run's OpenLineage COMPLETE (or FAIL, also when a blocking check stopped it).

Every send goes through `_Sender`: one background worker per process (events keep their
order), each send awaited at most `timeout_seconds`; the first failure of a backend in a run
logs one warning in the run log, and a backend that failed is not tried again in that run.
"""

from __future__ import annotations

import concurrent.futures
import queue
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from dagster import AssetKey, DagsterInstance

from orders_platform.observability_export import facts as run_facts
from orders_platform.observability_export import metrics
from orders_platform.observability_export.config import (
    PROMETHEUS_JOB,
    ExportConfig,
    host_of,
)

# How long a send waits for an earlier, unawaited one of the same run (see `_send`).
PENDING_GRACE_SECONDS = 0.25


class _Sender:
    """One daemon worker thread per process: sends keep their order, a stuck send never
    blocks the interpreter's exit (a ThreadPoolExecutor's workers would be joined)."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def submit(self, fn: Callable[[], Any]) -> concurrent.futures.Future:
        """Queue `fn` for the worker; its future holds the result or the error."""
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(
                    target=self._work, name="orders-platform-export", daemon=True
                )
                self._thread.start()
        future: concurrent.futures.Future = concurrent.futures.Future()
        self._queue.put((fn, future))
        return future

    def _work(self) -> None:
        while True:
            fn, future = self._queue.get()
            try:
                future.set_result(fn())
            except BaseException as exc:  # handed to the waiting step, if still waiting
                future.set_exception(exc)


class _RecentRuns(OrderedDict):
    """run id -> set of names, keeping the latest `size` runs."""

    size = 256

    def setdefault(self, key, default=None):
        if key not in self:
            self[key] = default
            while len(self) > self.size:
                self.popitem(last=False)
        return self[key]


class RunExporter:
    def __init__(
        self,
        config: ExportConfig,
        upstream: Mapping[AssetKey, Iterable[AssetKey]],
        dead_letters: frozenset[AssetKey],
    ) -> None:
        self.config = config
        self.upstream = {k: tuple(v) for k, v in upstream.items()}
        self.dead_letters = dead_letters
        # One worker per backend: a lineage backend retrying in the background never
        # delays a metrics push, and the reverse.
        self._senders = {"pushgateway": _Sender(), "openlineage": _Sender()}
        self._lineage_client = None
        # run_id -> backends that already failed in that run (warned once, then quiet)
        # Per-run memory of this process, bounded: a run worker runs one run, but a
        # long-lived process (tests, an in-process launcher) runs many.
        self._failed: _RecentRuns = _RecentRuns()
        self._ended: _RecentRuns = _RecentRuns()
        self._started: _RecentRuns = _RecentRuns()
        # run id -> lineage sends not awaited (START): checked at the next step end
        self._pending: _RecentRuns = _RecentRuns()

    # ---- hook points -------------------------------------------------------------------

    def step_started(self, context) -> None:
        try:
            self._step_started(context)
        except Exception as exc:  # an exporter never fails a run
            context.log.warning(f"observability export skipped at step start: {exc!r}")

    def step_ended(self, context) -> None:
        try:
            self._step_ended(context)
        except Exception as exc:
            context.log.warning(f"observability export skipped at step end: {exc!r}")

    # ---- internals ---------------------------------------------------------------------

    def _step_started(self, context) -> None:
        if not self.config.lineage:
            return
        run = context.run
        if run.run_id in self._started:
            return
        instance: DagsterInstance = context.instance
        first = instance.get_records_for_run(
            run.run_id, of_type=run_facts.DagsterEventType.STEP_START, limit=1
        ).records
        step_key = str(context.op_handle)  # a step key is its node handle (no dynamic outputs)
        if first and first[0].event_log_entry.step_key != step_key:
            return  # another step (maybe in another process) began the run and sent START
        self._started.setdefault(run.run_id, set())
        facts = run_facts.read_run(instance, run.run_id)
        self._emit_lineage(
            context.log, run, "START", time.time(), facts, planned_only=True, wait=False
        )

    def _step_ended(self, context) -> None:
        self._report_pending(context.log, context.run_id)
        instance: DagsterInstance = context.instance
        run = instance.get_run_by_id(context.run_id)
        facts = run_facts.read_run(instance, context.run_id)
        partition = run_facts.run_partition_label(run.tags)
        if self.config.pushgateway:
            self._push_step(context, facts, partition)
        if (
            self.config.lineage
            and context.run_id not in self._ended
            and run_facts.run_is_over(instance, context.run_id, facts)
        ):
            self._ended.setdefault(context.run_id, set())
            failed = bool(facts.failed_steps)
            error = None
            if failed:
                error = "; ".join(
                    f"{step}: {msg}" for step, msg in sorted(facts.failure_messages.items())
                )
            self._emit_lineage(
                context.log, run, "FAIL" if failed else "COMPLETE", time.time(), facts, error=error
            )

    def _push_step(self, context, facts: run_facts.RunFacts, partition: str) -> None:
        step = context.step_key
        materialized, checks = facts.for_step(step)
        checks = [
            c if c.partition else run_facts.CheckOutcome(**{**c.__dict__, "partition": partition})
            for c in checks
        ]
        groups = list(
            metrics.groups_for_step(
                materialized,
                checks,
                facts.step_started.get(step),
                self.dead_letters,
                PROMETHEUS_JOB,
            )
        )
        if step in facts.failed_steps:
            done = {m.asset for m in materialized}
            for key in sorted(facts.planned.get(step, ()), key=run_facts.asset_label):
                if key not in done:
                    groups.append(metrics.failure_group(key, partition, PROMETHEUS_JOB))
        gateway = self.config.pushgateway
        for group in groups:
            if not self._send(
                context.log,
                context.run_id,
                "pushgateway",
                lambda g=group: metrics.push(gateway, g, self.config.timeout_seconds),
                f"Prometheus Pushgateway at {host_of(gateway)} (ORDERS_PROMETHEUS_PUSHGATEWAY)",
            ):
                break

    def _emit_lineage(
        self, log, run, state: str, when: float, facts, error=None, planned_only=False, wait=True
    ) -> None:
        from orders_platform.observability_export.lineage import job_name, run_event

        planned = facts.planned_assets
        partition = run_facts.run_partition_label(run.tags)
        event = run_event(
            state,
            run_id=run.run_id,
            namespace=self.config.lineage_namespace,
            job=job_name(run.job_name, planned, partition),
            partition=partition,
            event_time=when,
            config=self.config,
            planned=planned,
            upstream=self.upstream,
            dead_letters=self.dead_letters,
            facts=None if planned_only else facts,
            error=_redact(error) if error else None,
        )
        self._send(
            log,
            run.run_id,
            "openlineage",
            lambda: self._client().emit(event),
            "OpenLineage backend",
            wait=wait,
        )

    def _client(self):
        if self._lineage_client is None:
            from openlineage.client import OpenLineageClient

            self._lineage_client = OpenLineageClient()
        return self._lineage_client

    def _send(self, log, run_id: str, backend: str, fn, what: str, wait: bool = True) -> bool:
        """Send through the backend's worker. `wait`: await it (at most the timeout) and
        warn on failure; else leave it pending, to be reported by `_report_pending`."""
        failed = self._failed.setdefault(run_id, set())
        if backend in failed:  # down earlier in this run: the next run tries again
            return False
        earlier = [f for f, b, _ in self._pending.get(run_id) or [] if b == backend]
        future = self._senders[backend].submit(fn)
        if earlier and concurrent.futures.wait(earlier, timeout=PENDING_GRACE_SECONDS).not_done:
            # An earlier send (the run's START) has had the whole run to get an answer and
            # has none: the backend is down or stalled; waiting on this one would only add
            # the timeout to the run.
            self._warn_once(log, run_id, backend, what, TimeoutError())
            return False
        if not wait:
            self._pending.setdefault(run_id, []).append((future, backend, what))
            return True
        try:
            future.result(timeout=self.config.timeout_seconds)
            return True
        except Exception as exc:
            self._warn_once(log, run_id, backend, what, exc)
            return False

    def _report_pending(self, log, run_id: str) -> None:
        pending = self._pending.get(run_id) or []
        for item in list(pending):
            future, backend, what = item
            if future.done():
                pending.remove(item)
                if future.exception() is not None:
                    self._warn_once(log, run_id, backend, what, future.exception())

    def _warn_once(self, log, run_id: str, backend: str, what: str, exc: BaseException) -> None:
        failed = self._failed.setdefault(run_id, set())
        if backend not in failed:
            failed.add(backend)
            log.warning(
                f"{what} unreachable ({_describe(exc)}); the run goes on without it "
                "(this warning is logged once per run)"
            )


def _describe(exc: BaseException) -> str:
    if isinstance(exc, concurrent.futures.TimeoutError | TimeoutError):
        return "no answer in time"
    return _redact(f"{type(exc).__name__}: {exc}")


def _redact(text: str) -> str:
    from orders_platform.secrets import redact

    return redact(text)
