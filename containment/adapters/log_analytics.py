"""The Log Analytics adapter: run the package's KQL files with their parameters set.

Each query is a `.kql` file under queries/ that an analyst can paste into Log Analytics:
its parameters are the `let` statements at its top, with example values. The app replaces
those values (typed, rendered here, never spliced from input) and runs the query with a
timespan that covers exactly the window, so a scan never depends on `now()`.

Anything but a complete answer (a partial error, a 400, throttling that outlasts the
retries, a timeout) raises QueryFailed: it must never read as "no anomalies".
"""
from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Mapping

from containment.adapters.clients import AzureClients

QUERIES = Path(__file__).resolve().parent / "queries"


class QueryFailed(RuntimeError):
    """Log Analytics did not give a complete answer; the message says what it said."""


def render(value: Any) -> str:
    """A KQL literal for a typed value."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        return f"datetime({value.astimezone(timezone.utc).strftime('%Y-%m-%dT%H:%M:%S.%fZ')})"
    if isinstance(value, timedelta):
        return f"{int(value.total_seconds())}s"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, tuple):
        return f"dynamic({_json(value)})"
    raise TypeError(f"no KQL literal for {type(value).__name__}")


def _json(value: Any) -> str:
    """An array of strings, whole numbers and such arrays (an address range), as JSON, for a
    dynamic literal. JSON's escapes are KQL's; control characters, which a KQL string literal cannot hold
    on one line, are refused rather than escaped."""
    if isinstance(value, tuple):
        return "[" + ", ".join(_json(item) for item in value) + "]"
    if isinstance(value, str):
        if any(ord(c) < 32 or ord(c) == 127 for c in value):
            raise TypeError("no KQL literal for a string with a control character")
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    raise TypeError(f"no KQL literal for {type(value).__name__} in a dynamic array")


def with_parameters(text: str, **values: Any) -> str:
    """The query with each named `let` parameter set to its value; every one must exist."""
    for name, value in values.items():
        pattern = re.compile(rf"^let {re.escape(name)} = [^;\n]+;$", re.MULTILINE)
        text, found = pattern.subn(f"let {name} = {render(value)};", text, count=1)
        if not found:
            raise KeyError(f"the query declares no parameter {name!r}")
    return text


def checked(rows: list[dict[str, Any]], name: str, columns: dict[str, type | tuple]) -> list[dict[str, Any]]:
    """The rows, if each has every column the app reads with the type it expects;
    QueryFailed naming the first that does not (an answer the app cannot trust is no answer)."""
    for index, row in enumerate(rows):
        for column, kind in columns.items():
            value = row.get(column)
            if column not in row or not isinstance(value, kind) or isinstance(value, bool):  # bool: int to Python
                raise QueryFailed(f"{name}: row {index} column {column!r} is {value!r}, not "
                                  f"{getattr(kind, '__name__', kind)}")
    return rows


def run(clients: AzureClients, workspace_id: str, name: str, start: datetime | None, end: datetime | None,
        **parameters: Any) -> list[dict[str, Any]]:
    """Rows of query `name` (a file in queries/) over the timespan [start, end) of
    TimeGenerated (none: every row), as dicts by column."""
    from azure.core.exceptions import AzureError
    from azure.monitor.query import LogsQueryStatus

    text = with_parameters((QUERIES / f"{name}.kql").read_text(), **parameters)
    try:
        timespan = (start, end) if start is not None else None
        response = clients.logs.query_workspace(workspace_id, text, timespan=timespan, server_timeout=120)
    except AzureError as error:
        raise QueryFailed(f"{name}: {type(error).__name__}: {getattr(error, 'message', None) or error}") from None
    if response.status != LogsQueryStatus.SUCCESS:
        partial = response.partial_error
        details = "; ".join(_innermost(d) for d in getattr(partial, "details", None) or [] if isinstance(d, Mapping))
        raise QueryFailed(f"{name}: partial result: {getattr(partial, 'message', None) or partial}"
                          + (f" ({details})" if details else ""))
    if not response.tables:
        raise QueryFailed(f"{name}: the answer has no table")
    table = response.tables[0]
    dynamic = [kind == "dynamic" for kind in table.columns_types]
    try:  # the service sends dynamic values as JSON text
        return [{column: json.loads(value) if is_dynamic and isinstance(value, str) else value
                 for column, value, is_dynamic in zip(table.columns, row, dynamic)} for row in table.rows]
    except ValueError as error:
        raise QueryFailed(f"{name}: a dynamic value is not JSON: {error}") from None


def service_now(clients: AzureClients, workspace_id: str) -> datetime:
    """The Log Analytics service's clock (queries/service_clock.kql)."""
    [row] = checked(run(clients, workspace_id, "service_clock", None, None), "service_clock", {"Now": datetime})
    return row["Now"]


def _innermost(error: Mapping) -> str:
    """The most specific message of an error detail: the service nests the cause in innererror."""
    while isinstance(error.get("innererror"), Mapping):
        error = error["innererror"]
    return str(error.get("message") or error.get("code") or "")[:500]
