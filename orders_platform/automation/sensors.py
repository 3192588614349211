"""Sensors: silver follows its inputs, landing files trigger their day, failures alert.

Asset sensors (`silver_orders_sensor`, `silver_sessions_sensor`)
----------------------------------------------------------------
Each reads the instance's event log for new materializations of its input —
``instance.fetch_materializations(AssetRecordsFilter(asset_key, after_storage_id=cursor),
ascending=True)`` — and keeps the storage id of the last event it handled as its cursor.
Storage ids only grow, and the daemon persists the cursor with the tick, so:

- every materialization is seen exactly once, whatever launched it (schedule, backfill,
  UI, CLI, landing sensor, a runless report) and however many land between two ticks;
- a restarted daemon or code server resumes at the stored cursor: nothing is lost and
  nothing is requested again;
- run_key = ``silver-orders-{partition}-{storage_id}`` (sessions alike) names the event
  that caused the run, so even a tick re-evaluated with an old cursor (its result lost
  before the cursor was stored) is de-duplicated by the daemon, while a later
  re-materialization of the same partition (new data) does trigger again.

(Known limit, shared with Dagster's own asset sensors: with PostgreSQL event storage two
concurrent inserts can become visible out of id order for a few milliseconds; a tick
landing in that window could step over the lower id.)

A tick handles at most `MAX_RECORDS_PER_TICK` events (the rest the next tick) and requests
each partition once even when several of its events are in the batch. A fresh sensor (no
cursor) starts at the beginning of the event log, so days materialized before it was turned
on get their silver too; to skip history, set the cursor to the latest storage id in the UI.

silver/orders of D is requested for the latest validated/orders event of D unless:

- the run that produced it also planned silver/orders for D (a whole-graph run of the daily
  job, the schedule): that run writes it itself, no double work (the planned asset
  partitions are its ASSET_MATERIALIZATION_PLANNED events); likewise when the run belongs
  to an asset backfill (tag ``dagster/backfill``) whose target includes silver/orders for D
  and which is still running or succeeded: lake and warehouse assets have different
  backfill policies, so the backfill writes silver in later runs of its own. A canceled or
  failed backfill no longer counts, so a tick after that picks its days up;
- a blocking check of validated/orders failed with severity ERROR for D in that run (e.g.
  ``ORDERS_REJECT_RATE_SEVERITY=ERROR``): blocking checks only stop downstream steps of
  their own run, so the sensor must not carry the bad partition to silver either. Until the
  producing run has finished (its checks run after the materialization) the event is held
  in the cursor (``{"after": id, "pending": [ids]}``) and re-read each tick, without holding
  back events of other runs.

silver/sessions of D reads raw/events of D-1, D and D+1. A raw/events materialization of X
makes D = X-1, X, X+1 candidates; D is requested only when raw/events of D-1 (unless D is
the first partition), D and D+1 are all materialized — evaluated as of the batch's last
event, so a backlog read in several ticks requests each day once. Sessions of the latest
day therefore wait for the next day's events; a re-extracted day re-derives its neighbours.

Why not ``AutomationCondition.eager()`` (or auto-materialize)? For time-partitioned assets
it only considers the latest time partition (``in_latest_time_window``): a backfill, a
manual re-run of an older day or a late landing file would never propagate to silver, and
it cannot express "sessions of D wait for raw/events of D+1" (it would run sessions of D as
soon as D's events land, with the next day missing). Conditions over all partitions
(``on_missing``) react to "missing", not to "updated again", so a re-extracted day would
not be re-derived. The storage-id cursor is explicit, testable and matches the rule
exactly. (A ``@multi_asset_sensor`` with ``latest_materialization_records_by_partition``
would work too, but it keeps a per-partition cursor that grows with the partitions and
must be advanced per partition; one integer is simpler to reason about and to reset.)

Landing sensor (`landing_zone_sensor`, only with ``ORDERS_SOURCE=landing``)
--------------------------------------------------------------------------
Lists ``{ORDERS_LANDING_DIR}/{orders,events}/dt=YYYY-MM-DD/`` in one recursive listing
(local path or any fsspec URL), keeps the files the landing source reads (``*.csv``,
``*.ndjson``, ``*.jsonl``, optionally ``.gz``; names starting with ``.`` or ``_`` are
uploads in flight) and fingerprints each day: sha256 of the sorted (name, size, mtime).
A day whose fingerprint changed requests raw/orders -> silver/orders (orders) or raw/events
-> rejected_events (events; sessions follow through the sessions sensor) for that day with
run_key ``landing-{kind}-{day}-{fingerprint}``: the same files never trigger twice (cursor,
and the daemon's run-key de-duplication behind it), a new or replaced file triggers again.
A day is only requested once it has closed (its partition exists) and once its newest file
is `settle_seconds` old (an upload still being appended under its final name).

Run-failure sensor (`run_failure_alert_sensor`)
-----------------------------------------------
For every failed run of this code location: one JSON line on the ``orders_platform.alerts``
logger (and the sensor's log in the UI) with run id, job, partition, failed steps with
their error messages, the run's error and the number of consecutive failures of that job
and partition; POSTed as JSON to ``ORDERS_ALERT_WEBHOOK_URL`` when set (5 s timeout; a
webhook error is logged, never raised, and never shows the URL, which is a credential).
"""

from __future__ import annotations

import hashlib
import json
import logging
import posixpath
import time
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import fsspec
from dagster import (
    AssetCheckSeverity,
    AssetKey,
    AssetRecordsFilter,
    DagsterEventType,
    DagsterInstance,
    DagsterRun,
    DagsterRunStatus,
    DefaultSensorStatus,
    EventLogRecord,
    RunFailureSensorContext,
    RunRequest,
    RunsFilter,
    SensorDefinition,
    SensorEvaluationContext,
    SensorResult,
    SkipReason,
    TimeWindowPartitionsDefinition,
    run_failure_sensor,
    sensor,
)

from orders_platform.assets.keys import RAW_EVENTS, SILVER_ORDERS, SILVER_SESSIONS, VALIDATED_ORDERS
from orders_platform.automation.jobs import (
    EVENTS_DAY_ASSETS,
    ORDERS_DAY_ASSETS,
    TRIGGER_TAG,
    orders_daily_job,
    silver_orders_job,
    silver_sessions_job,
)
from orders_platform.automation.logging import partition_of, redact, root_error
from orders_platform.dagster_compat import BACKFILL_ID_TAG, BulkActionStatus, PartitionBackfill

MAX_RECORDS_PER_TICK = 1000
SENSOR_INTERVAL_SECONDS = 30
LANDING_INTERVAL_SECONDS = 60
LANDING_SETTLE_SECONDS = 60
WEBHOOK_TIMEOUT_SECONDS = 5.0
MAX_ERROR_CHARS = 2000
EVENT_TAG = "orders_platform/trigger_storage_id"

alert_logger = logging.getLogger("orders_platform.alerts")


# --------------------------------------------------------------------------- event log


def _read_cursor(cursor: str | None) -> int:
    if not cursor:
        return 0
    try:
        return int(cursor)
    except ValueError:
        raise ValueError(
            f"sensor cursor must be an event-log storage id (an integer), got {cursor!r}"
        ) from None


@dataclass(frozen=True)
class PendingCursor:
    """The last storage id read, plus the events held back because their run had not
    finished (re-read each tick). Serialised as the bare id when nothing is pending, so an
    operator can still set it to a plain number in the UI."""

    after: int = 0
    pending: tuple[int, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> PendingCursor:
        if not text or not text.lstrip().startswith("{"):
            return cls(after=_read_cursor(text))
        data = json.loads(text)
        return cls(after=int(data["after"]), pending=tuple(int(i) for i in data["pending"]))

    def dump(self) -> str:
        if not self.pending:
            return str(self.after)
        return json.dumps({"after": self.after, "pending": sorted(self.pending)})


def new_materializations(
    instance: DagsterInstance, key: AssetKey, after_storage_id: int, limit: int
) -> tuple[Sequence[EventLogRecord], bool]:
    """Materializations of `key` after `after_storage_id`, oldest first, and whether more wait."""
    result = instance.fetch_materializations(
        AssetRecordsFilter(asset_key=key, after_storage_id=after_storage_id or None),
        limit=limit,
        ascending=True,
    )
    return result.records, result.has_more


def _records_by_id(
    instance: DagsterInstance, key: AssetKey, storage_ids: Sequence[int]
) -> list[EventLogRecord]:
    if not storage_ids:
        return []
    return list(
        instance.fetch_materializations(
            AssetRecordsFilter(asset_key=key, storage_ids=list(storage_ids)),
            limit=len(storage_ids),
        ).records
    )


class RunFacts:
    """What the sensors need to know about the run behind a materialization (cached per
    tick): the asset partitions it planned (its ASSET_MATERIALIZATION_PLANNED events),
    whether it has finished, and its failed blocking checks."""

    FINISHED = frozenset(
        {DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE, DagsterRunStatus.CANCELED}
    )
    BACKFILL_WILL_RUN = frozenset(
        {BulkActionStatus.REQUESTED, BulkActionStatus.COMPLETED, BulkActionStatus.COMPLETED_SUCCESS}
    )

    def __init__(self, instance: DagsterInstance) -> None:
        self._instance = instance
        self._events: dict[tuple[str, DagsterEventType], list[Any]] = {}
        self._runs: dict[str, DagsterRun | None] = {}
        self._backfills: dict[str, PartitionBackfill | None] = {}

    def _data(self, run_id: str, event_type: DagsterEventType) -> list[Any]:
        if (run_id, event_type) not in self._events:
            connection = self._instance.get_records_for_run(run_id, of_type=event_type)
            self._events[(run_id, event_type)] = [
                r.event_log_entry.dagster_event.event_specific_data
                for r in connection.records
                if r.event_log_entry.dagster_event is not None
            ]
        return self._events[(run_id, event_type)]

    def planned(self, run_id: str | None, key: AssetKey, partition: str) -> bool:
        """Whether the run, or the asset backfill it belongs to, planned `key` for
        `partition` (so the sensor must not request it a second time)."""
        if not run_id:  # a runless (reported) materialization
            return False
        for planned in self._data(run_id, DagsterEventType.ASSET_MATERIALIZATION_PLANNED):
            if planned is None or planned.asset_key != key:
                continue
            if planned.partition == partition:
                return True
            if planned.partitions_subset is not None and partition in planned.partitions_subset:
                return True
        return self._backfill_targets(run_id, key, partition)

    def _backfill_targets(self, run_id: str, key: AssetKey, partition: str) -> bool:
        """An asset backfill runs lake and warehouse assets in separate runs (different
        backfill policies): silver of a backfilled day is launched by the backfill itself
        once the lake run is done, unless the backfill was stopped."""
        backfill_id = self._tag(run_id, BACKFILL_ID_TAG)
        if backfill_id is None:
            return False
        if backfill_id not in self._backfills:
            self._backfills[backfill_id] = self._instance.get_backfill(backfill_id)
        backfill = self._backfills[backfill_id]
        if backfill is None or backfill.status not in self.BACKFILL_WILL_RUN:
            return False
        data = backfill.asset_backfill_data
        if data is None:  # a job backfill, or one stored in the old serialized form
            return False
        subset = data.target_subset.partitions_subsets_by_asset_key.get(key)
        return subset is not None and partition in subset

    def _tag(self, run_id: str, tag: str) -> str | None:
        if run_id not in self._runs:
            self._runs[run_id] = self._instance.get_run_by_id(run_id)
        run = self._runs[run_id]
        return None if run is None else run.tags.get(tag)

    def finished(self, run_id: str | None) -> bool:
        if not run_id:
            return True
        if run_id not in self._runs:
            self._runs[run_id] = self._instance.get_run_by_id(run_id)
        run = self._runs[run_id]
        return run is None or run.status in self.FINISHED

    def failed_blocking_checks(self, run_id: str | None, key: AssetKey, partition: str) -> list:
        """Names of the blocking ERROR checks on `key` that failed for `partition` in the run."""
        if not run_id:
            return []
        return sorted(
            e.check_name
            for e in self._data(run_id, DagsterEventType.ASSET_CHECK_EVALUATION)
            if e is not None
            and e.asset_key == key
            and e.blocking
            and not e.passed
            and e.severity == AssetCheckSeverity.ERROR
            and e.partition in (None, partition)
        )


def _trigger_tags(sensor_name: str, storage_id: int) -> dict[str, str]:
    return {TRIGGER_TAG: sensor_name, EVENT_TAG: str(storage_id)}


def _result(
    context: SensorEvaluationContext,
    requests: list[RunRequest],
    cursor: str,
    notes: list[str],
) -> SensorResult:
    for note in notes:
        context.log.info(note)
    if requests:
        return SensorResult(run_requests=requests, cursor=cursor)
    return SensorResult(skip_reason="; ".join(notes) or "no new materializations", cursor=cursor)


# --------------------------------------------------------------------------- silver/orders


def build_silver_orders_sensor(
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    minimum_interval_seconds: int = SENSOR_INTERVAL_SECONDS,
) -> SensorDefinition:
    name = "silver_orders_sensor"

    @sensor(
        name=name,
        job=silver_orders_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Requests silver/orders for every validated/orders partition that is "
            "materialized (once per materialization; cursor = event-log storage id)."
        ),
    )
    def silver_orders_sensor(context: SensorEvaluationContext):
        cursor = PendingCursor.parse(context.cursor)
        instance = context.instance
        records, has_more = new_materializations(
            instance, VALIDATED_ORDERS, cursor.after, MAX_RECORDS_PER_TICK
        )
        held = _records_by_id(instance, VALIDATED_ORDERS, cursor.pending)
        if not records and not held:
            return SkipReason("no new validated/orders materializations")
        latest: dict[str, EventLogRecord] = {}
        for record in sorted([*held, *records], key=lambda r: r.storage_id):
            if record.partition_key:  # the last event of a partition wins
                latest[record.partition_key] = record
        runs = RunFacts(instance)
        requests: list[RunRequest] = []
        pending: list[int] = []
        in_run: list[str] = []
        blocked: list[str] = []
        for partition in sorted(latest):
            record = latest[partition]
            if runs.planned(record.run_id, SILVER_ORDERS, partition):
                in_run.append(partition)
                continue
            if not runs.finished(record.run_id):  # its checks may still be running
                pending.append(record.storage_id)
                continue
            failed = runs.failed_blocking_checks(record.run_id, VALIDATED_ORDERS, partition)
            if failed:
                blocked.append(f"{partition} ({', '.join(failed)})")
                continue
            requests.append(
                RunRequest(
                    run_key=f"silver-orders-{partition}-{record.storage_id}",
                    partition_key=partition,
                    tags=_trigger_tags(name, record.storage_id),
                )
            )
        notes = []
        if in_run:
            notes.append(
                f"silver/orders already planned by the producing run or its backfill for {in_run}"
            )
        if blocked:
            notes.append(f"blocked by failed blocking checks of validated/orders: {blocked}")
        if pending:
            notes.append(f"waiting for {len(pending)} producing run(s) to finish")
        if has_more:
            notes.append(f"more than {MAX_RECORDS_PER_TICK} new events: continuing next tick")
        after = records[-1].storage_id if records else cursor.after
        return _result(context, requests, PendingCursor(after, tuple(pending)).dump(), notes)

    return silver_orders_sensor


# --------------------------------------------------------------------------- silver/sessions


def build_silver_sessions_sensor(
    partitions_def: TimeWindowPartitionsDefinition,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    minimum_interval_seconds: int = SENSOR_INTERVAL_SECONDS,
) -> SensorDefinition:
    name = "silver_sessions_sensor"
    first_day = partitions_def.start.astimezone(UTC).date()
    one_day = timedelta(days=1)

    @sensor(
        name=name,
        job=silver_sessions_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Requests silver/sessions for day D when raw/events of D-1, D and D+1 are all "
            "materialized and one of them just was (cursor = event-log storage id)."
        ),
    )
    def silver_sessions_sensor(context: SensorEvaluationContext):
        after = _read_cursor(context.cursor)
        records, has_more = new_materializations(
            context.instance, RAW_EVENTS, after, MAX_RECORDS_PER_TICK
        )
        if not records:
            return SkipReason("no new raw/events materializations")
        last = records[-1].storage_id
        triggers: dict[date, list[EventLogRecord]] = defaultdict(list)
        for record in records:
            if not record.partition_key:
                continue
            landed = date.fromisoformat(record.partition_key)
            for day in (landed - one_day, landed, landed + one_day):
                if day >= first_day:
                    triggers[day].append(record)
        # Presence as of this batch: events after it are handled (once) by a later tick.
        present = context.instance.get_materialized_partitions(RAW_EVENTS, before_cursor=last + 1)
        runs = RunFacts(context.instance)
        requests: list[RunRequest] = []
        waiting: list[str] = []
        in_run: list[str] = []
        for day in sorted(triggers):
            key = day.isoformat()
            needed = [d for d in (day - one_day, day, day + one_day) if d >= first_day]
            if any(d.isoformat() not in present for d in needed):
                waiting.append(key)
                continue
            causes = triggers[day]
            if all(runs.planned(r.run_id, SILVER_SESSIONS, key) for r in causes):
                in_run.append(key)
                continue
            storage_id = max(r.storage_id for r in causes)
            requests.append(
                RunRequest(
                    run_key=f"silver-sessions-{key}-{storage_id}",
                    partition_key=key,
                    tags=_trigger_tags(name, storage_id),
                )
            )
        notes = []
        if waiting:
            notes.append(f"waiting for raw/events of D-1..D+1 for {waiting}")
        if in_run:
            notes.append(
                f"silver/sessions already planned by the producing run or its backfill for {in_run}"
            )
        if has_more:
            notes.append(f"more than {MAX_RECORDS_PER_TICK} new events: continuing next tick")
        return _result(context, requests, str(last), notes)

    return silver_sessions_sensor


# --------------------------------------------------------------------------- landing zone


LANDING_KINDS: Mapping[str, tuple[AssetKey, ...]] = {
    "orders": ORDERS_DAY_ASSETS,
    "events": EVENTS_DAY_ASSETS,
}


def _mtime(info: Mapping[str, Any]) -> float | None:
    for field in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(field)
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def landing_files(
    fs: fsspec.AbstractFileSystem, root: str, kind: str
) -> dict[date, list[tuple[str, int, float | None]]]:
    """(name, size, mtime) of the data files of every ``dt=`` day directory of `kind`."""
    # The landing package reads with pyarrow: only a landing sensor tick needs it loaded.
    from orders_platform.sources.landing import file_format

    base = f"{root.rstrip('/')}/{kind}"
    if not fs.isdir(base):
        return {}
    days: dict[date, list[tuple[str, int, float | None]]] = defaultdict(list)
    for path, info in fs.find(base, maxdepth=2, detail=True).items():
        if info.get("type") != "file":
            continue
        parts = posixpath.relpath(path.rstrip("/"), base).split("/")
        if len(parts) != 2 or not parts[0].startswith("dt="):
            continue
        try:
            day = date.fromisoformat(parts[0].removeprefix("dt="))
        except ValueError:
            continue
        name = parts[1]
        if name.startswith((".", "_")) or file_format(name) is None:
            continue
        days[day].append((name, int(info.get("size") or 0), _mtime(info)))
    return days


def fingerprint(files: Sequence[tuple[str, int, float | None]]) -> str:
    text = "\n".join(f"{name}\t{size}\t{mtime!r}" for name, size, mtime in sorted(files))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def build_landing_sensor(
    landing_dir: str,
    partitions_def: TimeWindowPartitionsDefinition,
    settle_seconds: float = LANDING_SETTLE_SECONDS,
    storage_options: Mapping[str, Any] | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
    minimum_interval_seconds: int = LANDING_INTERVAL_SECONDS,
) -> SensorDefinition:
    name = "landing_zone_sensor"
    first_day = partitions_def.start.astimezone(UTC).date()

    @sensor(
        name=name,
        job=orders_daily_job,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=default_status,
        description=(
            "Requests the raw partition (and its downstream of the day) when the files of "
            "a day in the landing zone change; the same files never trigger twice."
        ),
    )
    def landing_zone_sensor(context: SensorEvaluationContext):
        fs, root = fsspec.core.url_to_fs(landing_dir, **(storage_options or {}))
        seen: dict[str, str] = json.loads(context.cursor) if context.cursor else {}
        now = time.time()
        today = datetime.now(UTC).date()
        cursor: dict[str, str] = {}
        requests: list[RunRequest] = []
        notes: list[str] = []
        for kind, assets in LANDING_KINDS.items():
            for day, files in sorted(landing_files(fs, root, kind).items()):
                slot = f"{kind}/{day.isoformat()}"
                digest = fingerprint(files)
                if seen.get(slot) == digest:
                    cursor[slot] = digest
                    continue
                if day < first_day:  # never a partition: noted once, then remembered
                    notes.append(f"{slot}: before the first partition ({first_day}), ignored")
                    cursor[slot] = digest
                    continue
                if day >= today:
                    notes.append(f"{slot}: the day has not closed yet")
                    continue
                newest = max((m for _, _, m in files if m is not None), default=None)
                if newest is not None and now - newest < settle_seconds:
                    notes.append(f"{slot}: files changed less than {settle_seconds:g}s ago")
                    continue
                cursor[slot] = digest
                requests.append(
                    RunRequest(
                        run_key=f"landing-{kind}-{day.isoformat()}-{digest}",
                        partition_key=day.isoformat(),
                        asset_selection=list(assets),
                        tags={TRIGGER_TAG: name, "orders_platform/landing_files": digest},
                    )
                )
        # The cursor holds only the days listed now: archived directories drop out of it.
        for note in notes:
            context.log.info(note)
        if requests:
            return SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))
        return SensorResult(
            skip_reason="; ".join(notes) or "no new landing files",
            cursor=json.dumps(cursor, sort_keys=True),
        )

    return landing_zone_sensor


# --------------------------------------------------------------------------- failures


def _error_text(event: Any) -> str | None:
    error = root_error(getattr(getattr(event, "event_specific_data", None), "error", None))
    if error is None:
        return None
    text = (getattr(error, "message", None) or str(error)).strip()
    return redact(text)[:MAX_ERROR_CHARS]


def consecutive_failures(instance: DagsterInstance, job_name: str, tags: Mapping[str, str]) -> int:
    """Failed runs of `job_name` (same partition, if any) since its last success."""
    partition_tags = {
        k: v
        for k, v in tags.items()
        if k
        in (
            "dagster/partition",
            "dagster/asset_partition_range_start",
            "dagster/asset_partition_range_end",
        )
    }
    records = instance.get_run_records(
        RunsFilter(
            job_name=job_name,
            tags=partition_tags,
            statuses=[DagsterRunStatus.SUCCESS, DagsterRunStatus.FAILURE],
        ),
        limit=50,
    )
    count = 0
    for record in records:  # newest first
        if record.dagster_run.status != DagsterRunStatus.FAILURE:
            break
        count += 1
    return count


def failure_alert(context: RunFailureSensorContext) -> dict[str, Any]:
    run = context.dagster_run
    steps = [
        {"step": event.step_key, "error": _error_text(event)}
        for event in context.get_step_failure_events()
    ]
    run_error = _error_text(context.failure_event)
    message = redact(context.failure_event.message or "")[:MAX_ERROR_CHARS]
    return {
        "alert": "run_failure",
        "time": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run.run_id,
        "job": run.job_name,
        "partition": partition_of(run.tags),
        "trigger": run.tags.get(TRIGGER_TAG)
        or run.tags.get("dagster/schedule_name")
        or run.tags.get("dagster/sensor_name")
        or ("backfill" if "dagster/backfill" in run.tags else "manual"),
        "failed_steps": [s["step"] for s in steps],
        "errors": steps,
        "error": next((s["error"] for s in steps if s["error"]), None) or run_error or message,
        "message": message,
        "consecutive_failures": consecutive_failures(context.instance, run.job_name, run.tags),
    }


def post_alert(
    url: str, alert: Mapping[str, Any], timeout: float = WEBHOOK_TIMEOUT_SECONDS
) -> bool:
    """POST `alert` as JSON; log (never raise) a failure, without the URL (a credential)."""
    import httpx  # only when alerting: ~0.2 s to import, paid by every run otherwise

    try:
        response = httpx.post(url, json=dict(alert), timeout=timeout)
        response.raise_for_status()
    except httpx.HTTPStatusError as exc:
        alert_logger.warning(
            "alert webhook answered HTTP %s for run %s",
            exc.response.status_code,
            alert.get("run_id"),
        )
        return False
    except httpx.HTTPError as exc:
        alert_logger.warning(
            "alert webhook failed (%s) for run %s", type(exc).__name__, alert.get("run_id")
        )
        return False
    return True


def build_run_failure_alert_sensor(
    webhook_url: str | None = None,
    default_status: DefaultSensorStatus = DefaultSensorStatus.RUNNING,
) -> SensorDefinition:
    @run_failure_sensor(
        name="run_failure_alert_sensor",
        default_status=default_status,
        description=(
            "Logs one JSON alert line per failed run (run id, job, partition, failed steps, "
            "error, consecutive failures) and POSTs it to ORDERS_ALERT_WEBHOOK_URL if set."
        ),
    )
    def run_failure_alert_sensor(context: RunFailureSensorContext):
        alert = failure_alert(context)
        line = json.dumps(alert, sort_keys=True, default=str)
        alert_logger.error(line)
        context.log.error(line)
        if webhook_url:
            post_alert(webhook_url, alert)

    return run_failure_alert_sensor
