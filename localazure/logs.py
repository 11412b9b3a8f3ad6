"""The Log Analytics query API of the local emulator, answered by duckdb-kql.

`LogStore` keeps seeded rows per table in DuckDB and answers the body of
`POST {endpoint}/v1/workspaces/{id}/query` (`{"query": ..., "timespan": ...}`) by running the
app's own KQL through duckdb-kql. Nothing here re-implements a query: what duckdb-kql cannot
run comes back as the service's 400 shape, naming the construct.

As the service does, the request's timespan restricts every table on `TimeGenerated` before
the query runs (start inclusive, end exclusive), and `ago()`/`now()` in the query read the
same clock as a bare-duration timespan (the `now` argument: the scenario's clock).

Wire format, as the service sends it and azure-monitor-query 2.0.0 reads it back:
- datetime: ISO 8601 UTC with `Z`, fraction only when non-zero, trailing zeros dropped
  (`2026-11-24T10:01:02Z`, `2026-11-24T10:01:02.5Z`); the SDK parses these to `datetime`.
  DuckDB keeps microseconds, so a seeded 7th fractional digit (100 ns) is dropped.
- dynamic: the value's JSON text in a string (`"{\"a\":1}"`). The SDK passes it through
  untouched; Azure.Monitor.Query for .NET reads it with `GetString()`, which only works
  because the service sends a string.
- timespan: .NET "c" format (`1.02:03:04.5000000`); guid and decimal: strings; long, int,
  real: numbers (non-finite reals as "NaN", "Infinity", "-Infinity"); bool: true/false.

What duckdb-kql 1.1.2 runs and does not, for egress queries (each claim is checked in
tests/test_logs_emulator.py):
- Runs: `let` scalars and a `let` datatable; where, extend, project, distinct, union,
  summarize (count, sum, dcount, make_set, make_list) by `bin(TimeGenerated, 5m)`; join
  (inner, leftanti); `between`; `ago()`; `split`/`extract` to strip the port from
  `CallerIpAddress`; `parse_ipv4`, so a CIDR test can be written as
  `parse_ipv4(ip) between (parse_ipv4("203.0.113.0") .. parse_ipv4("203.0.113.255"))`.
- Does not run: `make-series`, the `parse` operator, `evaluate` (e.g. bag_unpack), and the
  IP functions `ipv4_is_in_range`, `ipv4_is_in_any_range`, `ipv4_is_match`,
  `ipv4_is_private`.

Rows: `seed` validates every row against the table's Kusto schema and rejects the whole
batch, naming table, row index and column, if any value is of the wrong type, or if a
StorageBlobLogs row's AuthenticationHash is not shaped as the service writes it for its
AuthenticationType (_TOKEN_HASH, with its source). Datetimes must
carry `Z` or an offset: a zone-less time in a scenario is ambiguous. A `Type` column, where
the schema has one, defaults to the table name, as the service fills it.
"""
from __future__ import annotations

import json
import math
import re
import reprlib
import threading
import uuid
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any, Callable

import duckdb
import duckdb_kql
from duckdb_kql.types import kusto_type

# Kusto column type -> DuckDB column type: the same mapping duckdb-kql uses for KQL types, so
# the translated SQL sees the types it expects (datetime as a UTC TIMESTAMP, dynamic as JSON).
DUCKDB_TYPES = {
    "bool": "BOOLEAN",
    "datetime": "TIMESTAMP",
    "dynamic": "JSON",
    "int": "INTEGER",
    "long": "BIGINT",
    "real": "DOUBLE",
    "string": "VARCHAR",
    "guid": "UUID",
    "decimal": "DECIMAL(38,9)",
    "timespan": "INTERVAL",
}

# The unrestricted rows live in their own catalog; the tables the query sees are views over
# them, filtered by the request's timespan (DuckDB variables set per query).
_SEEDED = "seeded"
_START, _END = "la_timespan_start", "la_timespan_end"
_NOW = "la_query_now"
# When a row became queryable: KQL's ingestion_time(). A seeded row may name it (a row that
# arrives late); without it, its TimeGenerated. A query sees only rows ingested by its clock
# (https://learn.microsoft.com/azure/azure-monitor/logs/data-ingestion-time). Kept in a hidden
# column that queries reach through ingestion_time() and that answers never show.
INGESTION = "_IngestionTime"
_INGESTION_CALL = re.compile(r"\bingestion_time\(\s*\)")

_BAD_REQUEST = "The request had some invalid properties"


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _error(message: str, inner_code: str | None = None, inner_message: str | None = None) -> dict:
    error: dict[str, Any] = {"message": message, "code": "BadArgumentError"}
    if inner_code:
        error["innererror"] = {"code": inner_code, "message": inner_message}
    return {"error": error}


def partial_error(response: dict, message: str) -> dict:
    """`response` (a 200 body) with a PartialError next to its tables, as the service sends
    when a query fails part-way; azure-monitor-query then returns a LogsQueryPartialResult."""
    return {
        **response,
        "error": {
            "code": "PartialError",
            "message": "There were some errors when processing your query.",
            "details": [
                {
                    "code": "EngineError",
                    "message": "Something went wrong processing your query on the server.",
                    # The service puts a numeric Kusto code here; no caller reads it.
                    "innererror": {"code": "PartialQueryFailure", "message": message},
                }
            ],
        },
    }


# -- time ------------------------------------------------------------------------------

_DURATION = re.compile(
    r"P(?:(?P<weeks>\d+(?:\.\d+)?)W)?(?:(?P<days>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<hours>\d+(?:\.\d+)?)H)?(?:(?P<minutes>\d+(?:\.\d+)?)M)?(?:(?P<seconds>\d+(?:\.\d+)?)S)?)?",
    re.IGNORECASE,
)


def _utc(value: Any) -> datetime:
    """A zone-carrying ISO 8601 string (or aware datetime) as a naive UTC datetime."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{reprlib.repr(value)} is not an ISO 8601 datetime") from None
    if not isinstance(value, datetime):
        raise ValueError(f"expected an ISO 8601 datetime string, got {reprlib.repr(value)}")
    if value.tzinfo is None:
        raise ValueError(f"{value.isoformat()} has no zone: add 'Z' or an offset")
    return value.astimezone(timezone.utc).replace(tzinfo=None)


def _duration(text: str) -> timedelta:
    match = _DURATION.fullmatch(text)
    if not match or not any(match.groupdict().values()) or text.upper().endswith("T"):
        raise ValueError(
            f"{text!r} is not an ISO 8601 duration in weeks, days, hours, minutes and seconds "
            "(e.g. PT12H, P1D, PT3600.0S)"
        )
    return timedelta(**{unit: float(amount) for unit, amount in match.groupdict().items() if amount})


def _timespan(text: str, now: datetime) -> tuple[datetime, datetime]:
    """`start/end`, `start/duration`, `duration/end` or a duration ending at `now`."""
    parts = text.strip().split("/")
    if len(parts) == 1:
        return now - _duration(parts[0]), now
    if len(parts) != 2:
        raise ValueError(f"{text!r} is not an ISO 8601 interval")
    first, second = parts
    if first[:1].upper() == "P" and second[:1].upper() == "P":
        raise ValueError(f"{text!r} gives two durations and no point in time")
    if first[:1].upper() == "P":
        end = _utc(second)
        start = end - _duration(first)
    else:
        start = _utc(first)
        end = start + _duration(second) if second[:1].upper() == "P" else _utc(second)
    if end < start:
        raise ValueError(f"{text!r} ends before it starts")
    return start, end


# -- seeding: one validator per Kusto type, returning what DuckDB stores -----------------

_TIMESPAN = re.compile(r"(-)?(?:(\d+)\.)?(\d{1,2}):(\d{2}):(\d{2})(?:\.(\d{1,7}))?")


def _integer(bits: int) -> Callable[[Any], int]:
    low, high = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1

    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected an integer, got {reprlib.repr(value)}")
        if not low <= value <= high:
            raise ValueError(f"{value} does not fit in {bits} bits")
        return value

    return check


def _real(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ValueError(f"expected a number, got {reprlib.repr(value)}")
    return float(value)


def _string(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(f"expected a string, got {reprlib.repr(value)}")
    return value


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"expected true or false, got {reprlib.repr(value)}")
    return value


def _dynamic(value: Any) -> str:
    try:
        return json.dumps(value, separators=(",", ":"), allow_nan=False)
    except (TypeError, ValueError):
        raise ValueError(f"{reprlib.repr(value)} is not a JSON value") from None


def _guid(value: Any) -> str:
    try:
        return str(uuid.UUID(str(value)))
    except ValueError:
        raise ValueError(f"{reprlib.repr(value)} is not a GUID") from None


def _decimal(value: Any) -> Decimal:
    try:
        number = Decimal(str(value)) if isinstance(value, (int, float, str, Decimal)) else None
    except InvalidOperation:
        number = None
    if isinstance(value, bool) or number is None or not number.is_finite():
        raise ValueError(f"expected a decimal number, got {reprlib.repr(value)}")
    return number


def _timespan_value(value: Any) -> timedelta:
    if isinstance(value, timedelta):
        return value
    match = _TIMESPAN.fullmatch(value) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"expected a timespan like '1.02:03:04.5', got {reprlib.repr(value)}")
    sign, days, hours, minutes, seconds, fraction = match.groups()
    span = timedelta(
        days=int(days or 0), hours=int(hours), minutes=int(minutes), seconds=int(seconds),
        microseconds=int((fraction or "0").ljust(7, "0")) / 10,
    )
    return -span if sign else span


_SEED: dict[str, Callable[[Any], Any]] = {
    "bool": _bool,
    "datetime": _utc,
    "dynamic": _dynamic,
    "int": _integer(32),
    "long": _integer(64),
    "real": _real,
    "string": _string,
    "guid": _guid,
    "decimal": _decimal,
    "timespan": _timespan_value,
}


# -- answering: DuckDB values -> the service's JSON -------------------------------------

def _datetime_text(value: date) -> str:
    if not isinstance(value, datetime):
        return f"{value.isoformat()}T00:00:00Z"
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    text = value.isoformat()
    # Kusto writes its 100-ns ticks with trailing zeros dropped (.NET "FFFFFFF").
    return (text.rstrip("0") if value.microsecond else text) + "Z"


def _timespan_text(value: timedelta) -> str:
    micros = value // timedelta(microseconds=1)
    days, rest = divmod(abs(micros), 86_400_000_000)
    seconds, fraction = divmod(rest, 1_000_000)
    hours, rest = divmod(seconds, 3600)
    text = ("-" if micros < 0 else "") + (f"{days}." if days else "")
    text += f"{hours:02d}:{rest // 60:02d}:{rest % 60:02d}"
    return text + (f".{fraction * 10:07d}" if fraction else "")


def _json_default(value: Any) -> Any:
    if isinstance(value, date):
        return _datetime_text(value)
    if isinstance(value, timedelta):
        return _timespan_text(value)
    if isinstance(value, (uuid.UUID, Decimal)):
        return str(value)
    raise TypeError(f"{type(value).__name__} has no JSON form")


def _dynamic_text(value: Any) -> str:
    # DuckDB returns a JSON column as its text, a composite one (make_list's LIST) as Python.
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), default=_json_default)


def _real_value(value: float) -> float | str:
    if math.isfinite(value):
        return value
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


# Types whose DuckDB value is already what the service sends (string, long, int, bool) have
# no entry: the rows of a raw scan are copied as they come.
_WIRE: dict[str, Callable[[Any], Any]] = {
    "datetime": _datetime_text,
    "dynamic": _dynamic_text,
    "timespan": _timespan_text,
    "guid": str,
    "decimal": str,
    "real": _real_value,
}


# The tables the emulator knows, one file each, written from Microsoft's table reference
# (each file names its source); tests/conformance checks them against ../shared's schema.
TABLES = Path(__file__).with_name("tables")


def default_schemas() -> dict[str, list[tuple[str, str]]]:
    schemas = {}
    for path in sorted(TABLES.glob("*.json")):
        table = json.loads(path.read_text())
        schemas[table["table"]] = [(name, kind) for name, kind in table["columns"]]
    return schemas


# AuthenticationHash by AuthenticationType, as Microsoft documents identity/tokenHash
# (https://learn.microsoft.com/azure/storage/blobs/monitor-blob-storage-reference, "Fields that
# describe how the operation was authenticated"): "key1 | key2 (SHA256 hash of the key)" for an
# account key; that and ",SasSignature(SHA 256 hash of the SAS token)" for a SAS; "SHA 256 hash of
# the OAuth token" for OAuth; "for other authentication types, there is no tokenHash field". A
# SHA-256 is written as 64 hexadecimal digits (the docs' examples are upper case). A
# user-delegation SAS's is undocumented (README, what is unverified): any value is taken.
_SHA256 = r"[0-9A-Fa-f]{64}"
_TOKEN_HASH = {
    "AccountKey": re.compile(rf"key[12]\({_SHA256}\)"),
    "SAS": re.compile(rf"key[12]\({_SHA256}\),SasSignature\({_SHA256}\)"),
    "OAuth": re.compile(_SHA256),
    "Anonymous": None,
}


def _shape_problem(table: str, row: dict) -> str | None:
    """Why a StorageBlobLogs row's AuthenticationHash is not shaped as the service writes it for
    its AuthenticationType, or None: a scenario whose hash the app could not read as the
    service's would test nothing."""
    value, kind = row.get("AuthenticationHash"), row.get("AuthenticationType")
    if table != "StorageBlobLogs" or value in (None, "") or kind not in _TOKEN_HASH:
        return None
    shape = _TOKEN_HASH[kind]
    if shape is None:
        return f"column 'AuthenticationHash': an {kind} request has none (Microsoft: no tokenHash), got {value!r}"
    if not isinstance(value, str) or not shape.fullmatch(value):
        return (f"column 'AuthenticationHash' of a {kind} request is {reprlib.repr(value)}, not shaped as the service "
                f"writes it ({shape.pattern.replace(_SHA256, '<SHA-256 in hex>')})")
    return None


class LogStore:
    """Seeded Log Analytics tables, queried with KQL. Safe to share between threads."""

    @property
    def tables(self) -> tuple[str, ...]:
        return tuple(self._schemas)

    # The query API returns at most 500,000 rows; past that the answer is cut and carries a
    # partial error (https://learn.microsoft.com/azure/azure-monitor/service-limits#log-queries-and-language).
    # Tests lower it to see the cut without seeding half a million rows.
    max_rows = 500_000

    def __init__(self, schemas: dict[str, list[tuple[str, str]]] | None = None):
        """`schemas`: table -> [(column, Kusto type)]; the tables in localazure/tables if None."""
        if schemas is None:
            schemas = default_schemas()
        self._schemas = {table: list(columns) for table, columns in schemas.items()}
        for table, columns in self._schemas.items():
            types = dict(columns)
            unknown = sorted({kind for kind in types.values() if kind not in DUCKDB_TYPES})
            if unknown:
                raise ValueError(f"{table}: unknown Kusto column types {unknown}; known: {sorted(DUCKDB_TYPES)}")
            if types.get("TimeGenerated") != "datetime":
                raise ValueError(f"{table}: needs a TimeGenerated column of type datetime")
        self._lock = threading.Lock()
        self._con = duckdb_kql.connect()
        self._con.execute(f"ATTACH ':memory:' AS {_SEEDED}")
        self._set_timespan(None, None)
        self._con.execute(f"SET VARIABLE {_NOW} = 'infinity'::TIMESTAMP")
        for table, columns in self._schemas.items():
            name = _ident(table)
            definition = ", ".join(f"{_ident(column)} {DUCKDB_TYPES[kind]}" for column, kind in columns)
            self._con.execute(f"CREATE TABLE {_SEEDED}.{name} ({definition}, {_ident(INGESTION)} TIMESTAMP)")
            self._con.execute(
                f"CREATE VIEW {name} AS SELECT * FROM {_SEEDED}.{name} "
                f"WHERE \"TimeGenerated\" >= getvariable('{_START}') AND \"TimeGenerated\" < getvariable('{_END}') "
                f"AND {_ident(INGESTION)} <= getvariable('{_NOW}')"
            )

    def close(self) -> None:
        """Release the DuckDB connection (left to interpreter exit, its bindings complain)."""
        with self._lock:
            self._con.close()

    def seed(self, table: str, rows: list[dict]) -> None:
        """Append `rows` to `table`. All or nothing: one invalid row rejects the batch."""
        if table not in self._schemas:
            raise ValueError(f"unknown table {table!r}; known: {sorted(self._schemas)}")
        kinds = dict(self._schemas[table])
        values: dict[str, list[Any]] = {}  # column -> one cell per row, for columns given at all
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                raise ValueError(f"{table} row {index}: expected an object, got {reprlib.repr(row)}")
            if row.get("TimeGenerated") is None:
                raise ValueError(f"{table} row {index}: column 'TimeGenerated' is required")
            shaped = _shape_problem(table, row)
            if shaped:
                raise ValueError(f"{table} row {index}: {shaped}")
            for column, value in row.items():
                kind = "datetime" if column == INGESTION else kinds.get(column)
                if kind is None:
                    raise ValueError(f"{table} row {index}: unknown column {column!r}")
                if value is None:
                    continue
                try:
                    value = _SEED[kind](value)
                except ValueError as invalid:
                    raise ValueError(f"{table} row {index}, column {column!r} ({kind}): {invalid}") from None
                cells = values.get(column)
                if cells is None:
                    cells = values[column] = [None] * len(rows)
                cells[index] = value
        if not rows:
            return
        if kinds.get("Type") == "string":
            given = values.get("Type") or [None] * len(rows)
            values["Type"] = [table if cell is None else cell for cell in given]
        ingested = values.get(INGESTION) or [None] * len(rows)
        values[INGESTION] = [cell if cell is not None else generated
                             for cell, generated in zip(ingested, values["TimeGenerated"])]
        # One INSERT of parallel lists: UNNEST zips them row by row, far faster than a
        # statement per row. Dynamic values go in as JSON text, which the JSON column takes.
        columns = [(column, kind) for column, kind in [*self._schemas[table], (INGESTION, "datetime")]
                   if column in values]
        selects = ", ".join(
            f"UNNEST(${position}::{'VARCHAR' if kind == 'dynamic' else DUCKDB_TYPES[kind]}[])"
            for position, (_, kind) in enumerate(columns, start=1)
        )
        names = ", ".join(_ident(column) for column, _ in columns)
        with self._lock:
            self._con.execute(
                f"INSERT INTO {_SEEDED}.{_ident(table)} ({names}) SELECT {selects}",
                [values[column] for column, _ in columns],
            )

    def clear(self) -> None:
        with self._lock:
            for table in self._schemas:
                self._con.execute(f"DELETE FROM {_SEEDED}.{_ident(table)}")

    def query(self, body: dict, *, now: datetime | None = None) -> tuple[int, dict]:
        """(status, JSON body) as the service answers this query request body."""
        if now is None:
            now = datetime.now(timezone.utc)
        elif now.tzinfo is None:
            raise ValueError("now must carry a zone (UTC)")
        clock = now.astimezone(timezone.utc).replace(tzinfo=None)
        if not isinstance(body, dict):
            return 400, _error("The request body must be a JSON object with a 'query' property.")
        text = body.get("query")
        if not isinstance(text, str) or not text.strip():
            return 400, _error("The request property 'query' is required and must be a non-empty string.")
        if body.get("workspaces"):
            return 400, _error(
                "The request property 'workspaces' is not supported: the local emulator has one workspace."
            )
        start = end = None
        if body.get("timespan") is not None:
            try:
                if not isinstance(body["timespan"], str):
                    raise ValueError(f"{reprlib.repr(body['timespan'])} is not a string")
                start, end = _timespan(body["timespan"], clock)
            except (ValueError, OverflowError) as invalid:
                return 400, _error(f"Invalid value for the request property 'timespan': {invalid}")
        with self._lock:
            self._set_timespan(start, end)
            self._con.execute(f"SET VARIABLE {_NOW} = $1::TIMESTAMP", [clock])
            try:
                cursor = duckdb_kql.execute(self._con, _INGESTION_CALL.sub(INGESTION, text), allow_write=False,
                                            query_now=now)
                description = cursor.description
                fetched = cursor.fetchall()
            except duckdb_kql.KqlSyntaxError as error:
                return 400, _error(_BAD_REQUEST, "SyntaxError", str(error))
            except duckdb_kql.KqlUnsupportedError as error:
                return 400, _error(
                    _BAD_REQUEST, "SemanticError",
                    f"The local emulator's KQL engine (duckdb-kql {duckdb_kql.__version__}) "
                    f"cannot run this query: {error}",
                )
            except (duckdb_kql.KqlError, duckdb.Error) as error:
                # DuckDB appends the generated SQL around the fault; the first part names it.
                return 400, _error(_BAD_REQUEST, "SemanticError", str(error).split("\n\nLINE ")[0])
        shown = [index for index, column in enumerate(description) if column[0] != INGESTION]  # hidden
        description = [description[index] for index in shown]
        types = [kusto_type(column[1]) for column in description]
        converters = [(index, _WIRE[kind]) for index, kind in enumerate(types) if kind in _WIRE]
        rows = [[row[index] for index in shown] for row in fetched]
        for row in rows:
            for index, convert in converters:
                if row[index] is not None:
                    row[index] = convert(row[index])
        columns = [{"name": column[0], "type": kind} for column, kind in zip(description, types)]
        answer = {"tables": [{"name": "PrimaryResult", "columns": columns, "rows": rows[:self.max_rows]}]}
        if len(rows) > self.max_rows:
            return 200, partial_error(answer, f"Query result set has exceeded the internal record count limit "
                                              f"{self.max_rows} (E_QUERY_RESULT_SET_TOO_LARGE)")  # unverified text
        return 200, answer

    def _set_timespan(self, start: datetime | None, end: datetime | None) -> None:
        # No timespan in the request: every row, as the service does.
        self._con.execute(f"SET VARIABLE {_START} = COALESCE($1::TIMESTAMP, '-infinity'::TIMESTAMP)", [start])
        self._con.execute(f"SET VARIABLE {_END} = COALESCE($1::TIMESTAMP, 'infinity'::TIMESTAMP)", [end])
