"""Structured logs: one JSON object per line, secrets masked.

`JsonFormatter` turns any `logging.LogRecord` into a single JSON line with ``time`` (UTC,
ISO 8601), ``level``, ``logger`` and ``message``; records that went through Dagster's log
manager (``context.log`` in an asset, or a managed Python logger) carry a ``dagster_meta``
attribute from which it adds ``run_id``, ``job``, ``step``, ``asset``, ``partition`` and
``event`` (the Dagster event type, e.g. ``STEP_FAILURE``), plus ``error`` and
``error_class`` for failure events. For those records ``message`` is the original message,
not Dagster's ``job - run_id - step - ...`` prefix line. Dagster's own events are logged at
DEBUG (materializations, step starts) or ERROR (failures): with ``python_log_level: INFO``
the file gets the user logs, warnings and every failure. Extra attributes given with
``logger.info(..., extra={...})`` are added (as text when not JSON-serialisable).

`RedactSecretsFilter` (and the formatter itself, so a mis-wired handler still cannot leak)
masks the value of every secret environment variable (`orders_platform.secrets`, the one
list and the one redactor) in a message with ``***`` (a password inside a DSN or URL is
masked on its own too). Values are looked up in the environment at each record, so a secret
set or rotated after the handler was configured is masked too.

Wiring (dagster.yaml, the run worker processes): see `DAGSTER_YAML_SNIPPET`.
`JsonLinesFileHandler` expands ``$DAGSTER_HOME`` in its path (``logging.config`` does not)
and creates the directory; it is a `WatchedFileHandler`, so logrotate can move the file.
"""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from orders_platform.secrets import SECRET_ENV_VARS, Redactor, redact

__all__ = [
    "DAGSTER_YAML_SNIPPET",
    "JsonFormatter",
    "JsonLinesFileHandler",
    "RedactSecretsFilter",
    "partition_of",
    "redact",
    "root_error",
]

DAGSTER_YAML_SNIPPET = """\
python_logs:
  python_log_level: INFO
  managed_python_loggers:
    - orders_platform
  dagster_handler_config:
    filters:
      redact_secrets:
        (): orders_platform.automation.logging.RedactSecretsFilter
    formatters:
      json:
        (): orders_platform.automation.logging.JsonFormatter
    handlers:
      jsonl_file:
        (): orders_platform.automation.logging.JsonLinesFileHandler
        path: ${DAGSTER_HOME}/logs/orders_platform.jsonl
        level: INFO
        formatter: json
        filters: [redact_secrets]
"""

# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RESERVED = frozenset(logging.makeLogRecord({}).__dict__) | {"message", "asctime", "dagster_meta"}


class RedactSecretsFilter(logging.Filter):
    """Masks secret values in a record's message (args merged in) and exception text."""

    def __init__(self, name: str = "", names: Iterable[str] = SECRET_ENV_VARS) -> None:
        super().__init__(name)
        self._redact = Redactor(env_names=names)

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = self._redact(message)
        if masked != message:
            record.msg, record.args = masked, None
        meta = getattr(record, "dagster_meta", None)
        if isinstance(meta, dict) and isinstance(meta.get("orig_message"), str):
            meta["orig_message"] = self._redact(meta["orig_message"])
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self._redact(record.exc_text)
        return True


def root_error(error: Any) -> Any:
    """The user's exception inside Dagster's wrappers (a `SerializableErrorInfo` chain):
    a step that raised RuntimeError is reported by Dagster as a
    DagsterExecutionStepExecutionError whose cause is the RuntimeError."""
    while (
        error is not None
        and getattr(error, "cause", None) is not None
        and str(getattr(error, "cls_name", "")).startswith("Dagster")
    ):
        error = error.cause
    return error


def partition_of(tags: Mapping[str, str]) -> str | None:
    """A run's partition from its tags: the key, or ``start...end`` for a range run."""
    if "dagster/partition" in tags:
        return tags["dagster/partition"]
    start = tags.get("dagster/asset_partition_range_start")
    end = tags.get("dagster/asset_partition_range_end")
    if start and end:
        return start if start == end else f"{start}...{end}"
    return None


def _dagster_fields(meta: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if meta.get("run_id"):
        out["run_id"] = meta["run_id"]
    if meta.get("job_name"):
        out["job"] = meta["job_name"]
    if meta.get("step_key"):
        out["step"] = meta["step_key"]
    if meta.get("resource_name"):
        out["resource"] = meta["resource_name"]
    partition = partition_of(meta.get("job_tags") or {})
    event = meta.get("dagster_event")
    if event is not None:
        out["event"] = getattr(event, "event_type_value", None)
        asset_key = getattr(event, "asset_key", None)
        if asset_key is not None:
            out["asset"] = asset_key.to_user_string()
        partition = getattr(event, "partition", None) or partition
        error = root_error(getattr(getattr(event, "event_specific_data", None), "error", None))
        if error is not None:  # STEP_FAILURE, RUN_FAILURE...: the message line omits it
            out["error"] = (getattr(error, "message", None) or str(error)).strip()
            if getattr(error, "cls_name", None):
                out["error_class"] = error.cls_name
    if partition:
        out["partition"] = partition
    return out


def _jsonable(value: Any) -> Any:
    try:
        json.dumps(value)
    except (TypeError, ValueError):
        return str(value)
    return value


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line, secrets masked."""

    def __init__(self, *args: Any, redact_secrets: bool = True, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._redact = Redactor(env_names=SECRET_ENV_VARS) if redact_secrets else None

    def format(self, record: logging.LogRecord) -> str:
        meta = getattr(record, "dagster_meta", None)
        if isinstance(meta, Mapping) and "orig_message" in meta:
            message = str(meta["orig_message"])
        else:
            message = record.getMessage()
        payload: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": message,
        }
        if isinstance(meta, Mapping):
            payload.update(_dagster_fields(meta))
        for key, value in record.__dict__.items():
            if key not in _RESERVED and not key.startswith("_") and key not in payload:
                payload[key] = _jsonable(value)
        if record.exc_info:
            payload["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exception"] = record.exc_text
        line = json.dumps(payload, ensure_ascii=False, default=str)
        # Masking the serialised line also covers extras and exception text; a secret
        # containing JSON-escaped characters is masked by the filter before serialisation.
        return self._redact(line) if self._redact else line


class JsonLinesFileHandler(logging.handlers.WatchedFileHandler):
    """Appends to `path` (``$VARS`` and ``~`` expanded, parent directories created)."""

    def __init__(self, path: str, mode: str = "a", encoding: str = "utf-8") -> None:
        resolved = Path(os.path.expanduser(os.path.expandvars(path)))
        if "$" in str(resolved):
            # A one-off CLI run without DAGSTER_HOME still logs, next to the lake.
            from orders_platform.settings import PROJECT_ROOT

            resolved = PROJECT_ROOT / "data" / "logs" / resolved.name
        resolved.parent.mkdir(parents=True, exist_ok=True)
        super().__init__(str(resolved), mode=mode, encoding=encoding, delay=True)
