"""One rule for turning a JSON value into source text, shared by every JSON source.

The API and the landing zone's NDJSON deliver the same record as the same raw text:
strings as they are, numbers exactly as written (``1234.50`` stays ``1234.50``: money is
never round-tripped through a float), ``true``/``false`` as JSON spells them, ``null`` as
null, and nested arrays/objects as compact JSON (numbers in them as written too).
Decode with `loads_exact` (or a decoder built with `EXACT_NUMBER_HOOKS`) so numbers arrive
as `JsonNumber`.
"""

from __future__ import annotations

import json
from typing import Any

__all__ = ["EXACT_NUMBER_HOOKS", "JsonNumber", "json_text", "loads_exact"]


class JsonNumber(str):
    """A JSON number kept as the exact text the producer wrote."""

    __slots__ = ()


# json.loads / json.JSONDecoder keyword arguments that keep numbers (and NaN/Infinity) as text
EXACT_NUMBER_HOOKS: dict[str, Any] = {
    "parse_float": JsonNumber,
    "parse_int": JsonNumber,
    "parse_constant": JsonNumber,
}


def loads_exact(text: str | bytes) -> Any:
    """`json.loads` with numbers kept as `JsonNumber` text."""
    return json.loads(text, **EXACT_NUMBER_HOOKS)


def json_text(value: Any) -> str | None:
    """A decoded JSON value as source text (None for JSON null)."""
    if value is None or value.__class__ is str:
        return value
    if isinstance(value, str):  # a JsonNumber: its literal text
        return str(value)
    return _compact(value)


def _compact(value: Any) -> str:
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if type(value) is JsonNumber:
        return str(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, dict):
        items = (
            json.dumps(str(k), ensure_ascii=False) + ":" + _compact(v) for k, v in value.items()
        )
        return "{" + ",".join(items) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_compact(v) for v in value) + "]"
    # a value a caller decoded some other way (a float, say): JSON's spelling of it
    return json.dumps(value, ensure_ascii=False, default=str)
