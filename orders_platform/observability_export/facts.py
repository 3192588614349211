"""What a run did, read back from its own event log (no Dagster execution internals).

Assets report their facts once, as materialization and check metadata; this module turns
the run's event records into plain values the exporters share: materializations (asset,
partitions, metadata, when), check evaluations, step outcomes, and whether the run has
nothing left to execute.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from dagster import AssetKey, DagsterEventType, DagsterInstance

RUN_EVENT_TYPES = {
    DagsterEventType.STEP_START,
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.STEP_SKIPPED,
    DagsterEventType.ASSET_MATERIALIZATION,
    DagsterEventType.ASSET_CHECK_EVALUATION,
    DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
}
TERMINAL = {
    DagsterEventType.STEP_SUCCESS,
    DagsterEventType.STEP_FAILURE,
    DagsterEventType.STEP_SKIPPED,
}
PARTITION_TAG = "dagster/partition"
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def asset_label(key: AssetKey) -> str:
    return key.to_user_string()


def partition_label(partitions: Sequence[str]) -> str:
    """One partition as is; a range run as ``first...last`` (Dagster's range notation)."""
    if not partitions:
        return ""
    ordered = sorted(partitions)
    return ordered[0] if len(ordered) == 1 else f"{ordered[0]}...{ordered[-1]}"


def run_partition_label(tags: Mapping[str, str]) -> str:
    if PARTITION_TAG in tags:
        return tags[PARTITION_TAG]
    if RANGE_START_TAG in tags and RANGE_END_TAG in tags:
        return partition_label([tags[RANGE_START_TAG], tags[RANGE_END_TAG]])
    return ""


def plain(value: Any) -> Any:
    """A metadata value as a plain Python value (MetadataValue.json -> dict, ...)."""
    return getattr(value, "value", value)


@dataclass(frozen=True)
class Materialized:
    asset: AssetKey
    partitions: tuple[str, ...]
    metadata: Mapping[str, Any]
    timestamp: float
    step_key: str | None

    @property
    def partition(self) -> str:
        return partition_label(self.partitions)


@dataclass(frozen=True)
class CheckOutcome:
    asset: AssetKey
    check: str
    partition: str
    passed: bool
    severity: str
    blocking: bool
    step_key: str | None


@dataclass
class RunFacts:
    run_id: str
    materialized: list[Materialized] = field(default_factory=list)
    checks: list[CheckOutcome] = field(default_factory=list)
    step_started: dict[str, float] = field(default_factory=dict)
    first_step: str | None = None
    finished_steps: set[str] = field(default_factory=set)
    failed_steps: set[str] = field(default_factory=set)
    skipped_steps: set[str] = field(default_factory=set)
    failure_messages: dict[str, str] = field(default_factory=dict)
    # step key -> assets the run planned to materialize in it
    planned: dict[str, set[AssetKey]] = field(default_factory=dict)

    @property
    def planned_assets(self) -> list[AssetKey]:
        return sorted({k for keys in self.planned.values() for k in keys}, key=asset_label)

    def for_step(self, step_key: str) -> tuple[list[Materialized], list[CheckOutcome]]:
        return (
            [m for m in self.materialized if m.step_key == step_key],
            [c for c in self.checks if c.step_key == step_key],
        )


def read_run(instance: DagsterInstance, run_id: str) -> RunFacts:
    records = instance.get_records_for_run(run_id, of_type=RUN_EVENT_TYPES, limit=None).records
    return collect(run_id, (r.event_log_entry for r in records))


def collect(run_id: str, entries: Iterable[Any]) -> RunFacts:
    facts = RunFacts(run_id=run_id)
    # A range run records one materialization per partition, all with the run's totals as
    # metadata: they are folded back into one fact so totals are never counted per day.
    grouped: dict[tuple[AssetKey, str | None], list[tuple[str | None, Any, float]]] = {}
    for entry in entries:
        event = entry.dagster_event
        if event is None:
            continue
        kind = event.event_type
        step = event.step_key
        if kind == DagsterEventType.STEP_START and step:
            facts.step_started[step] = entry.timestamp
            if facts.first_step is None:
                facts.first_step = step
        elif kind in TERMINAL and step:
            facts.finished_steps.add(step)
            if kind == DagsterEventType.STEP_FAILURE:
                facts.failed_steps.add(step)
                error = event.step_failure_data.error if event.step_failure_data else None
                facts.failure_messages[step] = error.message.strip() if error else "step failed"
            elif kind == DagsterEventType.STEP_SKIPPED:
                facts.skipped_steps.add(step)
        elif kind == DagsterEventType.ASSET_MATERIALIZATION:
            mat = event.step_materialization_data.materialization
            grouped.setdefault((mat.asset_key, step), []).append(
                (mat.partition, mat.metadata, entry.timestamp)
            )
        elif kind == DagsterEventType.ASSET_MATERIALIZATION_PLANNED and event.asset_key:
            facts.planned.setdefault(step or "", set()).add(event.asset_key)
        elif kind == DagsterEventType.ASSET_CHECK_EVALUATION:
            ev = event.event_specific_data
            facts.checks.append(
                CheckOutcome(
                    asset=ev.asset_key,
                    check=ev.check_name,
                    partition=ev.partition or "",
                    passed=bool(ev.passed),
                    severity=ev.severity.value,
                    blocking=bool(ev.blocking),
                    step_key=step,
                )
            )
    for (key, step), items in grouped.items():
        facts.materialized.append(
            Materialized(
                asset=key,
                partitions=tuple(p for p, _, _ in items if p is not None),
                metadata={k: plain(v) for k, v in items[-1][1].items()},
                timestamp=max(t for _, _, t in items),
                step_key=step,
            )
        )
    return facts


def run_is_over(instance: DagsterInstance, run_id: str, facts: RunFacts) -> bool:
    """True when no step of the run is left to execute: every planned step finished, or
    depends (transitively) on a failed or skipped one, which the executor will not run."""
    run = instance.get_run_by_id(run_id)
    if run is None or run.execution_plan_snapshot_id is None:
        return False
    plan = instance.get_execution_plan_snapshot(run.execution_plan_snapshot_id)
    to_execute = set(plan.step_keys_to_execute)
    upstream = {
        step.key: {h.step_key for inp in step.inputs for h in inp.upstream_output_handles}
        for step in plan.steps
    }
    doomed = set(facts.failed_steps | facts.skipped_steps)
    changed = True
    while changed:
        changed = False
        for key, deps in upstream.items():
            if key not in doomed and deps & doomed:
                doomed.add(key)
                changed = True
    return not (to_execute - facts.finished_steps - doomed)
