"""Run metrics to a Prometheus Pushgateway and OpenLineage run events, from the facts the
assets already report (materialization and check metadata). See README "Observability".

`instrument(assets, config)` is called once in definitions.py, like `apply_policies`: every
asset and asset-check definition gets a Dagster success/failure hook (step end) and its op a
thin prologue (step start). Both travel with the definitions, so runs launched by the CLI, the
UI/daemon or `dagster.materialize()` export the same way, and no asset body changes. With
nothing configured the definitions are returned untouched and nothing is imported.
"""

from __future__ import annotations

from orders_platform.observability_export.config import ExportConfig, export_config
from orders_platform.observability_export.instrument import instrument

__all__ = ["ExportConfig", "export_config", "instrument"]
