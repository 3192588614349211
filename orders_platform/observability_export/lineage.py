"""OpenLineage run events (START, then COMPLETE or FAIL) built from a run's facts.

The job is the run's asset selection (or the Dagster job's name for a named job) and its
partition; datasets are named where the data lives (`config.Dataset`). Output datasets carry
`schema`, `dataQualityMetrics` (rowCount; for a dead-letter set the rejected rows by reason
code as a custom `orders_platform_rejections` facet), `dataQualityAssertions` (the run's
check results on that asset) and the `outputStatistics` output facet (rowCount written).

This module imports the OpenLineage client at its top: the exporter imports the module
itself only when lineage is configured.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import attr
from dagster import AssetKey
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    data_quality_assertions_dataset,
    data_quality_metrics_dataset,
    error_message_run,
    job_type_job,
    nominal_time_run,
    output_statistics_output_dataset,
    schema_dataset,
)
from openlineage.client.generated.base import DatasetFacet

from orders_platform.observability_export.config import Dataset, ExportConfig
from orders_platform.observability_export.facts import (
    CheckOutcome,
    Materialized,
    RunFacts,
    asset_label,
    plain,
)

# URNs, not URLs: the project has no public home to point at. The facet's JSON schema ships
# with the code (deploy/openlineage/RejectionsDatasetFacet.json, its $id is this URN).
PRODUCER = "urn:orders_platform:observability_export"
REJECTIONS_FACET = "orders_platform_rejections"
REJECTIONS_SCHEMA = (
    "urn:orders_platform:facets:RejectionsDatasetFacet:1-0-0#/$defs/RejectionsDatasetFacet"
)


@attr.define
class RejectionsDatasetFacet(DatasetFacet):
    """Dead-letter rows of the partition by reason code."""

    byReason: dict[str, int] = attr.field(factory=dict)  # noqa: N815 - OpenLineage casing

    @staticmethod
    def _get_schema() -> str:
        return REJECTIONS_SCHEMA


def job_name(dagster_job: str, assets: Iterable[AssetKey], partition: str) -> str:
    """``raw/orders,validated/orders@2026-03-17`` for an asset selection run, the Dagster
    job's name for a named job; the partition (or range) after ``@``."""
    if dagster_job.startswith("__"):  # __ASSET_JOB, __ephemeral_asset_job__: ad hoc selections
        selection = ",".join(sorted(asset_label(k) for k in assets)) or dagster_job
    else:
        selection = dagster_job
    return f"{selection}@{partition}" if partition else selection


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat()


def _nominal(partition: str) -> tuple[str, str] | None:
    first, _, last = partition.partition("...")
    try:
        start, end = date.fromisoformat(first), date.fromisoformat(last or first)
    except ValueError:
        return None
    begin = datetime(start.year, start.month, start.day, tzinfo=UTC)
    finish = datetime(end.year, end.month, end.day, tzinfo=UTC) + timedelta(days=1)
    return begin.isoformat(), finish.isoformat()


def _schema_fields(meta: Mapping[str, Any]) -> list | None:
    schema = meta.get("dagster/column_schema")
    columns = getattr(schema, "columns", None)
    if not columns:
        return None
    return [schema_dataset.SchemaDatasetFacetFields(name=c.name, type=c.type) for c in columns]


def _output(
    dataset: Dataset,
    mats: list[Materialized],
    checks: list[CheckOutcome],
    dead_letter: bool,
):
    facets: dict[str, Any] = {}
    output_facets: dict[str, Any] = {}
    meta: Mapping[str, Any] = mats[-1].metadata if mats else {}
    fields = _schema_fields(meta)
    if fields:
        facets["schema"] = schema_dataset.SchemaDatasetFacet(fields=fields)
    rows = meta.get("dagster/row_count")
    if isinstance(rows, int):
        output_facets["outputStatistics"] = (
            output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(rowCount=rows)
        )
        facets["dataQualityMetrics"] = data_quality_metrics_dataset.DataQualityMetricsDatasetFacet(
            rowCount=rows, columnMetrics={}
        )
    by_reason = plain(meta.get("rejected_by_reason"))
    if dead_letter and isinstance(by_reason, dict):
        facets[REJECTIONS_FACET] = RejectionsDatasetFacet(
            byReason={str(k): int(v) for k, v in by_reason.items()}
        )
    if checks:
        facets["dataQualityAssertions"] = (
            data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                assertions=[
                    data_quality_assertions_dataset.Assertion(
                        assertion=c.check,
                        success=c.passed,
                        severity=c.severity.lower(),
                        name=c.check,
                    )
                    for c in checks
                ]
            )
        )
    return OutputDataset(
        namespace=dataset.namespace,
        name=dataset.name,
        facets=facets or None,
        outputFacets=output_facets or None,
    )


def run_event(
    state: str,
    *,
    run_id: str,
    namespace: str,
    job: str,
    partition: str,
    event_time: float,
    config: ExportConfig,
    planned: Iterable[AssetKey],
    upstream: Mapping[AssetKey, Iterable[AssetKey]],
    dead_letters: frozenset[AssetKey],
    facts: RunFacts | None = None,
    error: str | None = None,
):
    """A RunEvent of `state` (START, COMPLETE, FAIL) for the run."""
    written = sorted(set(planned), key=asset_label)
    inputs_keys = sorted(
        {dep for key in written for dep in upstream.get(key, ()) if dep not in set(written)},
        key=asset_label,
    )
    by_asset: dict[AssetKey, list[Materialized]] = {}
    checks: dict[AssetKey, list[CheckOutcome]] = {}
    if facts is not None:
        for m in facts.materialized:
            by_asset.setdefault(m.asset, []).append(m)
        for c in facts.checks:
            checks.setdefault(c.asset, []).append(c)
    if state == "START":
        outputs = [_output(config.dataset(k), [], [], k in dead_letters) for k in written]
    else:
        outputs = [
            _output(config.dataset(k), by_asset.get(k, []), checks.get(k, []), k in dead_letters)
            for k in written
        ]
    inputs = [
        InputDataset(namespace=config.dataset(k).namespace, name=config.dataset(k).name)
        for k in inputs_keys
    ]
    run_facets: dict[str, Any] = {}
    nominal = _nominal(partition)
    if nominal:
        run_facets["nominalTime"] = nominal_time_run.NominalTimeRunFacet(
            nominalStartTime=nominal[0], nominalEndTime=nominal[1]
        )
    if error:
        run_facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
            message=error, programmingLanguage="python"
        )
    return RunEvent(
        eventType=RunState[state],
        eventTime=_iso(event_time),
        run=Run(runId=run_id, facets=run_facets or None),
        job=Job(
            namespace=namespace,
            name=job,
            facets={
                "jobType": job_type_job.JobTypeJobFacet(
                    processingType="BATCH", integration="DAGSTER", jobType="JOB"
                )
            },
        ),
        inputs=inputs,
        outputs=outputs,
        producer=PRODUCER,
    )
