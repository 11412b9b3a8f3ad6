"""The emulator's Log Analytics query API (localazure/logs.py): the app's KQL run by
duckdb-kql over seeded rows, answered in the service's shapes."""
from __future__ import annotations

import json
import re
import threading
from datetime import datetime, timedelta, timezone

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import HttpResponseError
from azure.core.pipeline.transport import HttpTransport
from azure.core.rest._http_response_impl import HttpResponseImpl
from azure.monitor.query import LogsQueryClient, LogsQueryPartialResult, LogsQueryStatus

from localazure.logs import TABLES, LogStore, partial_error

TABLE = "StorageBlobLogs"
NOW = datetime(2026, 11, 24, 12, 0, tzinfo=timezone.utc)
STRIP_PORT = r'extend CallerIp = extract(@"^(.*):\d+$", 1, CallerIpAddress)'


@pytest.fixture
def store() -> LogStore:
    """A store with the project's StorageBlobLogs columns (localazure/tables/)."""
    return LogStore()


def blob_log(time: str, caller: str = "203.0.113.7:51234", size: int = 0, account: str = "synthtrain01",
             **more) -> dict:
    return {"TimeGenerated": time, "CallerIpAddress": caller, "ResponseBodySize": size, "AccountName": account,
            **more}


def run(store: LogStore, query: str, timespan: str | None = None, now: datetime = NOW) -> list[dict]:
    """The rows of a query that must succeed, as {column: value}."""
    body = {"query": query} if timespan is None else {"query": query, "timespan": timespan}
    status, response = store.query(body, now=now)
    assert status == 200, response
    (table,) = response["tables"]
    assert table["name"] == "PrimaryResult"
    names = [column["name"] for column in table["columns"]]
    return [dict(zip(names, row, strict=True)) for row in table["rows"]]


def failure(store: LogStore, body, now: datetime = NOW) -> dict:
    """The error object of a request that must be refused with 400."""
    status, response = store.query(body, now=now)
    assert status == 400, response
    assert set(response) == {"error"}
    assert response["error"]["code"] == "BadArgumentError"
    return response["error"]


def key_shape(value):
    """The nesting of keys in a JSON document, without its values."""
    if isinstance(value, dict):
        return {key: key_shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [key_shape(value[0])] if value else []
    return None


# -- schema ----------------------------------------------------------------------------

def test_a_query_answers_with_the_tables_columns_and_kusto_types(store):
    """The answer's columns are the table's, as the service sends them (the columns
    themselves are compared with ../shared's schema in tests/conformance/test_tables.py)."""
    expected = json.loads((TABLES / "StorageBlobLogs.json").read_text())["columns"]
    status, response = store.query({"query": f"{TABLE} | take 0"}, now=NOW)
    assert status == 200
    assert response["tables"][0]["columns"] == [{"name": name, "type": kind} for name, kind in expected]


def test_schema_needs_known_types_and_a_datetime_time_generated():
    with pytest.raises(ValueError, match="Events.*'text'"):
        LogStore({"Events": [("TimeGenerated", "datetime"), ("Body", "text")]})
    with pytest.raises(ValueError, match="Events.*TimeGenerated"):
        LogStore({"Events": [("Body", "string")]})


# -- timespan --------------------------------------------------------------------------

@pytest.mark.parametrize(
    "timespan",
    [
        "2026-11-24T10:00:00Z/2026-11-24T11:00:00Z",
        "2026-11-24T10:00:00Z/PT1H",
        "PT1H/2026-11-24T11:00:00Z",
        "2026-11-24T11:00:00+01:00/2026-11-24T12:00:00+01:00",
        "2026-11-24T10:00:00.000Z/PT3600.0S",  # what azure-monitor-query sends
    ],
)
def test_timespan_keeps_start_and_drops_end(store, timespan):
    store.seed(TABLE, [
        blob_log("2026-11-24T09:59:59.999999Z", size=1),
        blob_log("2026-11-24T10:00:00Z", size=2),
        blob_log("2026-11-24T10:59:59.999999Z", size=4),
        blob_log("2026-11-24T11:00:00Z", size=8),
    ])
    rows = run(store, f"{TABLE} | project ResponseBodySize", timespan)
    assert sorted(row["ResponseBodySize"] for row in rows) == [2, 4]


@pytest.mark.parametrize("timespan, sizes", [("PT1H", [8]), ("PT2H", [2, 4, 8]), ("P1D", [1, 2, 4, 8])])
def test_a_bare_duration_ends_at_now(store, timespan, sizes):
    store.seed(TABLE, [
        blob_log("2026-11-24T09:59:59Z", size=1),
        blob_log("2026-11-24T10:00:00Z", size=2),
        blob_log("2026-11-24T10:30:00Z", size=4),
        blob_log("2026-11-24T11:00:00Z", size=8),
        blob_log("2026-11-24T12:00:00Z", size=16),  # at now: the end is exclusive
    ])
    rows = run(store, f"{TABLE} | project ResponseBodySize", timespan)
    assert sorted(row["ResponseBodySize"] for row in rows) == sizes


def test_without_timespan_every_row_is_seen(store):
    store.seed(TABLE, [blob_log("2020-01-01T00:00:00Z"), blob_log("2026-11-24T11:59:00Z")])
    assert run(store, f"{TABLE} | count") == [{"Count": 2}]
    status, response = store.query({"query": f"{TABLE} | count", "timespan": None}, now=NOW)
    assert (status, response["tables"][0]["rows"]) == (200, [[2]])


def test_timespan_restricts_rows_before_the_query_runs(store):
    store.seed(TABLE, [blob_log("2026-11-24T09:00:00Z"), blob_log("2026-11-24T10:30:00Z")])
    query = f"{TABLE} | where TimeGenerated < datetime(2026-11-24T10:00:00Z) | count"
    assert run(store, query) == [{"Count": 1}]
    assert run(store, query, "2026-11-24T10:00:00Z/PT1H") == [{"Count": 0}]
    # ...including inside subqueries: each reference to the table is restricted.
    joined = f"{TABLE} | union ({TABLE} | where AccountName == 'synthtrain01') | count"
    assert run(store, joined, "2026-11-24T10:00:00Z/PT1H") == [{"Count": 2}]


def test_timespan_restricts_every_table_the_query_references():
    store = LogStore({
        "Reads": [("TimeGenerated", "datetime"), ("Caller", "string")],
        "Writes": [("TimeGenerated", "datetime"), ("Caller", "string")],
    })
    store.seed("Reads", [{"TimeGenerated": "2026-11-24T10:10:00Z", "Caller": "a"},
                         {"TimeGenerated": "2026-11-24T08:00:00Z", "Caller": "b"}])
    store.seed("Writes", [{"TimeGenerated": "2026-11-24T10:20:00Z", "Caller": "a"},
                          {"TimeGenerated": "2026-11-24T08:00:00Z", "Caller": "b"}])
    query = "Reads | join kind=inner (Writes) on Caller | project Caller"
    assert sorted(row["Caller"] for row in run(store, query)) == ["a", "b"]
    assert run(store, query, "PT3H") == [{"Caller": "a"}]


def test_ago_reads_the_request_clock(store):
    store.seed(TABLE, [blob_log("2026-11-24T10:30:00Z"), blob_log("2026-11-24T11:30:00Z")])
    query = f"{TABLE} | where TimeGenerated > ago(1h) | count"
    assert run(store, query, now=NOW) == [{"Count": 1}]
    # An hour earlier the 11:30 row had not been ingested yet: only the 10:30 one is seen.
    assert run(store, query, now=NOW - timedelta(hours=1)) == [{"Count": 1}]
    assert run(store, query, now=NOW + timedelta(hours=2)) == [{"Count": 0}]


def test_a_query_sees_only_rows_ingested_by_its_clock_and_reads_their_ingestion_time(store):
    late = {**blob_log("2026-11-24T11:00:00Z", size=7), "_IngestionTime": "2026-11-24T11:40:00Z"}
    store.seed(TABLE, [blob_log("2026-11-24T11:00:00Z", size=1), late])
    sizes = f"{TABLE} | project ResponseBodySize, Ingested = ingestion_time() | order by ResponseBodySize asc"
    assert run(store, sizes, now=NOW - timedelta(minutes=30)) == [
        {"ResponseBodySize": 1, "Ingested": "2026-11-24T11:00:00Z"}]
    assert run(store, sizes, now=NOW) == [{"ResponseBodySize": 1, "Ingested": "2026-11-24T11:00:00Z"},
                                          {"ResponseBodySize": 7, "Ingested": "2026-11-24T11:40:00Z"}]
    # The hidden column is reached through ingestion_time() only: an answer never shows it.
    [row] = run(store, f"{TABLE} | where ResponseBodySize == 7", now=NOW)
    assert "_IngestionTime" not in row


# -- what a security analyst's egress queries use ---------------------------------------

def seed_egress(store: LogStore) -> None:
    store.seed(TABLE, [
        blob_log("2026-11-24T10:01:00Z", "203.0.113.7:51234", 100),
        blob_log("2026-11-24T10:02:00Z", "203.0.113.7:51235", 250),
        blob_log("2026-11-24T10:06:00Z", "203.0.113.7:51236", 1000),
        blob_log("2026-11-24T10:03:00Z", "198.51.100.2:443", 50),
        blob_log("2026-11-24T10:04:00Z", "198.51.100.2:443", 5, account="other01"),
        blob_log("2026-11-24T10:05:00Z", "[2001:db8::1]:443", 70),
    ])


def test_summarize_by_caller_with_the_port_stripped(store):
    seed_egress(store)
    rows = run(store, f"""
        {TABLE}
        | {STRIP_PORT}
        | summarize BytesOut = sum(ResponseBodySize), Requests = count(), Ports = dcount(CallerIpAddress),
                    Accounts = make_set(AccountName) by CallerIp
    """)
    by_caller = {
        row["CallerIp"]: (row["BytesOut"], row["Requests"], row["Ports"], sorted(json.loads(row["Accounts"])))
        for row in rows
    }
    assert by_caller == {
        "203.0.113.7": (1350, 3, 3, ["synthtrain01"]),
        "198.51.100.2": (55, 2, 1, ["other01", "synthtrain01"]),
        "[2001:db8::1]": (70, 1, 1, ["synthtrain01"]),
    }


def test_split_strips_an_ipv4_port_the_same_way(store):
    seed_egress(store)
    rows = run(store, f"""
        {TABLE} | where CallerIpAddress !startswith "["
        | {STRIP_PORT} | extend BySplit = tostring(split(CallerIpAddress, ":")[0])
        | project CallerIp, BySplit
    """)
    assert len(rows) == 5
    assert all(row["CallerIp"] == row["BySplit"] for row in rows)


def test_summarize_by_five_minute_bins(store):
    seed_egress(store)
    rows = run(store, f"""
        {TABLE} | where AccountName == "synthtrain01"
        | summarize BytesOut = sum(ResponseBodySize) by bin(TimeGenerated, 5m)
        | order by TimeGenerated asc
    """)
    assert rows == [
        {"TimeGenerated": "2026-11-24T10:00:00Z", "BytesOut": 400},
        {"TimeGenerated": "2026-11-24T10:05:00Z", "BytesOut": 1070},
    ]


@pytest.mark.parametrize("threshold, callers", [(100, ["203.0.113.7"]), (60, ["203.0.113.7", "[2001:db8::1]"])])
def test_let_parameters(store, threshold, callers):
    seed_egress(store)
    rows = run(store, f"""
        let threshold = {threshold};
        let window = 10m;
        {TABLE}
        | {STRIP_PORT}
        | summarize BytesOut = sum(ResponseBodySize) by CallerIp, bin(TimeGenerated, window)
        | where BytesOut > threshold
    """)
    assert sorted(row["CallerIp"] for row in rows) == callers


def test_dcount_of_callers_per_account(store):
    seed_egress(store)
    rows = run(store, f"{TABLE} | {STRIP_PORT} | summarize Callers = dcount(CallerIp) by AccountName")
    assert {row["AccountName"]: row["Callers"] for row in rows} == {"synthtrain01": 3, "other01": 1}


def test_join_callers_to_their_account_totals(store):
    seed_egress(store)
    rows = run(store, f"""
        {TABLE}
        | {STRIP_PORT}
        | summarize CallerBytes = sum(ResponseBodySize) by AccountName, CallerIp
        | join kind=inner ({TABLE} | summarize AccountBytes = sum(ResponseBodySize) by AccountName) on AccountName
        | project AccountName, CallerIp, Share = todouble(CallerBytes) / AccountBytes
    """)
    shares = {(row["AccountName"], row["CallerIp"]): row["Share"] for row in rows}
    assert shares == {
        ("synthtrain01", "203.0.113.7"): 1350 / 1470,
        ("synthtrain01", "198.51.100.2"): 50 / 1470,
        ("synthtrain01", "[2001:db8::1]"): 70 / 1470,
        ("other01", "198.51.100.2"): 1.0,
    }


def test_leftanti_join_keeps_callers_off_the_allow_list(store):
    seed_egress(store)
    rows = run(store, f"""
        let allowed = datatable(ip: string) ["203.0.113.7", "[2001:db8::1]"];
        {TABLE} | {STRIP_PORT}
        | join kind=leftanti (allowed) on $left.CallerIp == $right.ip
        | distinct CallerIp
    """)
    assert rows == [{"CallerIp": "198.51.100.2"}]


def test_between_runs(store):
    seed_egress(store)
    assert run(store, f"{TABLE} | where ResponseBodySize between (50 .. 250) | count") == [{"Count": 4}]


def test_a_cidr_test_written_with_parse_ipv4(store):
    seed_egress(store)
    rows = run(store, f"""
        {TABLE} | {STRIP_PORT}
        | where parse_ipv4(CallerIp) between (parse_ipv4("203.0.113.0") .. parse_ipv4("203.0.113.255"))
        | count
    """)
    assert rows == [{"Count": 3}]


@pytest.mark.parametrize(
    "query, construct",
    [
        (f"{TABLE} | make-series n = count() on TimeGenerated step 5m", "MakeSeriesOperator"),
        (f'{TABLE} | parse CallerIpAddress with ip ":" port:int', "parse"),
        (f"{TABLE} | evaluate bag_unpack(AuthorizationDetails)", "EvaluateOperator"),
        (f'{TABLE} | where ipv4_is_in_range(CallerIpAddress, "203.0.113.0/24")', "ipv4_is_in_range"),
        (f'{TABLE} | where ipv4_is_in_any_range(CallerIpAddress, dynamic(["203.0.113.0/24"]))', "ipv4_is_in_any_range"),
        (f'{TABLE} | where ipv4_is_match(CallerIpAddress, "203.0.113.0/24")', "ipv4_is_match"),
        (f"{TABLE} | where ipv4_is_private(CallerIpAddress)", "ipv4_is_private"),
    ],
)
def test_what_duckdb_kql_cannot_run_is_refused_naming_it(store, query, construct):
    seed_egress(store)
    error = failure(store, {"query": query})
    assert error["innererror"]["code"] == "SemanticError"
    assert "duckdb-kql" in error["innererror"]["message"]
    assert re.search(rf"'(function:)?{construct}'", error["innererror"]["message"])


# -- errors ----------------------------------------------------------------------------

def test_a_syntax_error_has_the_service_shape(store, shared):
    documented = json.loads((shared / "log-analytics" / "la-query-syntax-error.docs.json").read_text())
    status, response = store.query({"query": f"{TABLE} | wherex ResponseBodySize > 1"}, now=NOW)
    assert status == 400
    assert key_shape(response) == key_shape(documented)
    assert response["error"]["code"] == documented["error"]["code"]
    assert response["error"]["innererror"]["code"] == "SyntaxError"
    assert "1:" in response["error"]["innererror"]["message"]  # the engine's position


@pytest.mark.parametrize(
    "query, named",
    [(f"{TABLE} | where NoSuchColumn > 1", "NoSuchColumn"), ("NoSuchTable | take 1", "NoSuchTable")],
)
def test_an_unknown_name_is_a_semantic_error_naming_it(store, query, named):
    error = failure(store, {"query": query})
    assert error["innererror"]["code"] == "SemanticError"
    assert named in error["innererror"]["message"]
    assert "LINE" not in error["innererror"]["message"]  # no generated SQL in the diagnostic


def test_queries_cannot_write(store):
    store.seed(TABLE, [blob_log("2026-11-24T10:00:00Z")])
    failure(store, {"query": f".set-or-replace Copied <| {TABLE}"})
    assert "Copied" in failure(store, {"query": "Copied | count"})["innererror"]["message"]


@pytest.mark.parametrize(
    "body, field",
    [
        ([], "query"),
        ({}, "query"),
        ({"query": 42}, "query"),
        ({"query": "  "}, "query"),
        ({"query": f"{TABLE}", "timespan": "yesterday"}, "timespan"),
        ({"query": f"{TABLE}", "timespan": "PT"}, "timespan"),
        ({"query": f"{TABLE}", "timespan": "P1M"}, "timespan"),
        ({"query": f"{TABLE}", "timespan": "P1D/PT1H"}, "timespan"),
        ({"query": f"{TABLE}", "timespan": "2026-11-24T10:00:00/PT1H"}, "timespan"),  # no zone
        ({"query": f"{TABLE}", "timespan": "2026-11-24T11:00:00Z/2026-11-24T10:00:00Z"}, "timespan"),
        ({"query": f"{TABLE}", "timespan": "2026-11-24T10:00:00Z/PT1H/PT2H"}, "timespan"),
        ({"query": f"{TABLE}", "timespan": 3600}, "timespan"),
        ({"query": f"{TABLE}", "timespan": "P999999999999D"}, "timespan"),
        ({"query": f"{TABLE}", "workspaces": ["other"]}, "workspaces"),
    ],
)
def test_a_malformed_request_names_the_field(store, body, field):
    error = failure(store, body)
    assert f"'{field}'" in error["message"]


def test_now_must_carry_a_zone(store):
    with pytest.raises(ValueError, match="zone"):
        store.query({"query": TABLE}, now=datetime(2026, 11, 24, 12))


# -- seeding ---------------------------------------------------------------------------

@pytest.mark.parametrize(
    "bad, column",
    [
        ({"ResponseBodySize": "100"}, "ResponseBodySize"),
        ({"ResponseBodySize": True}, "ResponseBodySize"),
        ({"ResponseBodySize": 1.5}, "ResponseBodySize"),
        ({"OperationCount": 2**31}, "OperationCount"),
        ({"DurationMs": "fast"}, "DurationMs"),
        ({"AccountName": 7}, "AccountName"),
        ({"LastModifiedTime": "last tuesday"}, "LastModifiedTime"),
        ({"TimeGenerated": "2026-11-24T10:00:00"}, "TimeGenerated"),  # no zone
        ({"TimeGenerated": 1764000000}, "TimeGenerated"),
        ({"AuthorizationDetails": {"at": datetime(2026, 11, 24)}}, "AuthorizationDetails"),
        ({"Nonexistent": "x"}, "Nonexistent"),
    ],
)
def test_an_invalid_row_is_refused_naming_table_row_and_column(store, bad, column):
    rows = [blob_log("2026-11-24T10:00:00Z"), {**blob_log("2026-11-24T10:01:00Z"), **bad}]
    with pytest.raises(ValueError) as refused:
        store.seed(TABLE, rows)
    message = str(refused.value)
    assert TABLE in message and "row 1" in message and column in message
    # All or nothing: the valid first row was not stored either.
    assert run(store, f"{TABLE} | count") == [{"Count": 0}]


def test_seed_refuses_unknown_tables_rows_that_are_not_objects_and_rows_without_time(store):
    with pytest.raises(ValueError, match="unknown table 'StorageFileLogs'"):
        store.seed("StorageFileLogs", [blob_log("2026-11-24T10:00:00Z")])
    with pytest.raises(ValueError, match=f"{TABLE} row 0: expected an object"):
        store.seed(TABLE, ["2026-11-24T10:00:00Z"])
    with pytest.raises(ValueError, match=f"{TABLE} row 0: column 'TimeGenerated' is required"):
        store.seed(TABLE, [{"AccountName": "synthtrain01"}])


def test_missing_columns_are_null_and_type_is_the_table(store):
    store.seed(TABLE, [{"TimeGenerated": "2026-11-24T10:00:00Z"}])
    rows = run(store, f"{TABLE} | project AccountName, ResponseBodySize, AuthorizationDetails, Type, "
                      "NoSize = isnull(ResponseBodySize)")
    assert rows == [{"AccountName": None, "ResponseBodySize": None, "AuthorizationDetails": None,
                     "Type": TABLE, "NoSize": True}]


def test_seed_appends_and_clear_empties(store):
    store.seed(TABLE, [blob_log("2026-11-24T10:00:00Z")])
    store.seed(TABLE, [blob_log("2026-11-24T10:01:00Z"), blob_log("2026-11-24T10:02:00Z")])
    assert run(store, f"{TABLE} | count") == [{"Count": 3}]
    store.clear()
    assert run(store, f"{TABLE} | count") == [{"Count": 0}]
    store.seed(TABLE, [blob_log("2026-11-24T10:00:00Z")])
    assert run(store, f"{TABLE} | count") == [{"Count": 1}]


# -- serialisation ---------------------------------------------------------------------

def test_datetimes_are_utc_iso_strings_with_z(store):
    store.seed(TABLE, [
        blob_log("2026-11-24T10:01:02Z", size=1),
        blob_log("2026-11-24T10:01:02.1234567Z", size=2),  # 100 ns ticks: DuckDB keeps µs
        blob_log("2026-11-24T11:01:02.5+01:00", size=3, LastModifiedTime="2026-11-23T00:00:00-05:00"),
    ])
    rows = run(store, f"{TABLE} | order by ResponseBodySize asc | project TimeGenerated, LastModifiedTime")
    assert rows == [
        {"TimeGenerated": "2026-11-24T10:01:02Z", "LastModifiedTime": None},
        {"TimeGenerated": "2026-11-24T10:01:02.123456Z", "LastModifiedTime": None},
        {"TimeGenerated": "2026-11-24T10:01:02.5Z", "LastModifiedTime": "2026-11-23T05:00:00Z"},
    ]


def test_dynamic_values_are_sent_as_their_json_text(store):
    details = {"action": "read", "roles": ["Storage Blob Data Reader"], "nested": {"n": 1.5, "ok": True}}
    store.seed(TABLE, [blob_log("2026-11-24T10:00:00Z", AuthorizationDetails=details)])
    (row,) = run(store, f"{TABLE} | project AuthorizationDetails, Action = AuthorizationDetails.action")
    assert isinstance(row["AuthorizationDetails"], str)
    assert json.loads(row["AuthorizationDetails"]) == details
    assert json.loads(row["Action"]) == "read"
    (listed,) = run(store, f"{TABLE} | summarize Times = make_list(TimeGenerated)")
    assert json.loads(listed["Times"]) == ["2026-11-24T10:00:00Z"]


def test_every_kusto_type_has_its_wire_form():
    store = LogStore({"Kinds": [
        ("TimeGenerated", "datetime"), ("Flag", "bool"), ("Id", "guid"), ("Span", "timespan"),
        ("Amount", "decimal"), ("Small", "int"), ("Big", "long"), ("Ratio", "real"),
    ]})
    store.seed("Kinds", [{
        "TimeGenerated": "2026-11-24T10:00:00Z", "Flag": True, "Id": "0F8FAD5B-D9CB-469F-A165-70867728950E",
        "Span": "1.02:03:04.5", "Amount": "12.5", "Small": 7, "Big": 2**40, "Ratio": 0.25,
    }])
    status, response = store.query({"query": "Kinds | extend Minus = -Span, Nan = real(nan)"}, now=NOW)
    assert status == 200
    table = response["tables"][0]
    assert [column["type"] for column in table["columns"]] == [
        "datetime", "bool", "guid", "timespan", "decimal", "int", "long", "real", "timespan", "real"]
    (row,) = table["rows"]
    assert row[1:4] == [True, "0f8fad5b-d9cb-469f-a165-70867728950e", "1.02:03:04.5000000"]
    assert float(row[4]) == 12.5 and isinstance(row[4], str)
    assert row[5:] == [7, 2**40, 0.25, "-1.02:03:04.5000000", "NaN"]
    json.dumps(response, allow_nan=False)  # strict JSON, as the service sends


@pytest.mark.parametrize(
    "column, bad",
    [("Flag", "true"), ("Id", "not-a-guid"), ("Span", "5 minutes"), ("Amount", "lots"), ("Amount", float("inf"))],
)
def test_other_kusto_types_are_validated_too(column, bad):
    store = LogStore({"Kinds": [("TimeGenerated", "datetime"), ("Flag", "bool"), ("Id", "guid"),
                                ("Span", "timespan"), ("Amount", "decimal")]})
    with pytest.raises(ValueError, match=f"Kinds row 0, column '{column}'"):
        store.seed("Kinds", [{"TimeGenerated": "2026-11-24T10:00:00Z", column: bad}])


def test_partial_error_has_the_service_shape(shared):
    derived = json.loads((shared / "log-analytics" / "derived-la-query-partial-error.json").read_text())
    response = {"tables": [{"name": "PrimaryResult", "columns": [{"name": "n", "type": "long"}], "rows": [[1]]}]}
    partial = partial_error(response, "the query ran out of memory on one shard")
    assert key_shape(partial) == key_shape(derived)
    assert partial["error"]["code"] == "PartialError"
    assert partial["tables"] == response["tables"]
    assert partial["error"]["details"][0]["innererror"]["message"] == "the query ran out of memory on one shard"
    assert "error" not in response  # the 200 body it was given is left as it was


# -- the SDK reads it back ---------------------------------------------------------------

class _Credential:
    def get_token(self, *scopes, **kwargs) -> AccessToken:
        return AccessToken("local", 2**31 - 1)


class _Connection:
    def close(self) -> None:
        pass


class _StoreTransport(HttpTransport):
    """Hands the SDK's request body to the store and its answer back, with no network, so
    azure-monitor-query's own request building and response processing run end to end."""

    def __init__(self, store: LogStore, partial: str | None = None):
        self.store, self.partial, self.sent = store, partial, []

    def send(self, request, **kwargs):
        body = json.loads(request.content)
        self.sent.append(body)
        status, answer = self.store.query(body, now=NOW)
        if self.partial:
            answer = partial_error(answer, self.partial)
        payload = json.dumps(answer).encode()
        response = HttpResponseImpl(
            request=request, internal_response=_Connection(), status_code=status, reason="",
            content_type="application/json", headers={"Content-Type": "application/json"},
            stream_download_generator=lambda **_: iter([payload]),
        )
        response.read()
        return response

    def open(self) -> None:
        pass

    def close(self) -> None:
        pass

    def __exit__(self, *args) -> None:
        pass


def test_azure_monitor_query_parses_the_answer(store):
    details = {"action": "read"}
    store.seed(TABLE, [
        blob_log("2026-11-24T10:01:02.5Z", size=100, AuthorizationDetails=details, DurationMs=1.5),
        blob_log("2026-11-24T09:00:00Z", size=999),  # outside the two hours asked for
    ])
    transport = _StoreTransport(store)
    client = LogsQueryClient(_Credential(), transport=transport)
    result = client.query_workspace(
        "00000000-0000-0000-0000-000000000000",
        f"{TABLE} | project TimeGenerated, AuthorizationDetails, ResponseBodySize, DurationMs, Window = 5m",
        timespan=timedelta(hours=2),
    )
    assert transport.sent[0]["timespan"] == "PT7200.0S"
    assert result.status == LogsQueryStatus.SUCCESS
    (table,) = result.tables
    assert table.columns_types == ["datetime", "dynamic", "long", "real", "timespan"]
    (row,) = table.rows
    assert isinstance(row["TimeGenerated"], datetime)
    assert row["TimeGenerated"] == datetime(2026, 11, 24, 10, 1, 2, 500000, tzinfo=timezone.utc)
    assert json.loads(row["AuthorizationDetails"]) == details
    assert (row["ResponseBodySize"], row["DurationMs"], row["Window"]) == (100, 1.5, "00:05:00")


def test_azure_monitor_query_raises_the_engine_diagnostic(store):
    client = LogsQueryClient(_Credential(), transport=_StoreTransport(store))
    with pytest.raises(HttpResponseError) as raised:
        client.query_workspace("ws", f"{TABLE} | where NoSuchColumn > 1", timespan=None)
    assert raised.value.status_code == 400
    assert "NoSuchColumn" in str(raised.value)


def test_azure_monitor_query_returns_a_partial_result(store):
    store.seed(TABLE, [blob_log("2026-11-24T10:00:00Z")])
    client = LogsQueryClient(_Credential(), transport=_StoreTransport(store, partial="one shard failed"))
    result = client.query_workspace("ws", f"{TABLE} | count", timespan=None)
    assert isinstance(result, LogsQueryPartialResult)
    assert result.partial_error.code == "PartialError"
    assert result.partial_error.details[0]["innererror"]["message"] == "one shard failed"
    assert list(result.partial_data[0].rows[0]) == [1]


# -- threads ---------------------------------------------------------------------------

def test_concurrent_queries_each_see_their_own_timespan(store):
    # One row per hour: a query over the last k hours must count exactly k rows.
    store.seed(TABLE, [blob_log(f"2026-11-24T{hour:02d}:30:00Z") for hour in range(12)])
    mismatches: list[tuple[int, object]] = []

    def ask(hours: int) -> None:
        for _ in range(15):
            try:
                status, response = store.query({"query": f"{TABLE} | count", "timespan": f"PT{hours}H"}, now=NOW)
                answer = (status, response["tables"][0]["rows"] if status == 200 else response)
            except Exception as error:  # raised in a thread, it would only be a warning
                answer = error
            if answer != (200, [[hours]]):
                mismatches.append((hours, answer))

    threads = [threading.Thread(target=ask, args=(hours,)) for hours in range(1, 9)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert mismatches == []


def test_an_answer_past_the_row_limit_is_cut_with_a_partial_error(store):
    store.max_rows = 2
    store.seed(TABLE, [blob_log("2026-11-24T11:00:00Z", size=n) for n in range(3)])
    status, response = store.query({"query": f"{TABLE} | project ResponseBodySize"}, now=NOW)
    assert status == 200 and len(response["tables"][0]["rows"]) == 2
    assert response["error"]["code"] == "PartialError"
    assert "E_QUERY_RESULT_SET_TOO_LARGE" in response["error"]["details"][0]["innererror"]["message"]


SHA = "04D64C2B3A704145C9F1664F201123467A74D72DA72751A9137DDAA732FA03CF"


@pytest.mark.parametrize("kind, value, accepted", [
    ("AccountKey", f"key2({SHA})", True),
    ("SAS", f"key1({SHA}),SasSignature({SHA.lower()})", True),
    ("OAuth", SHA, True),
    ("DelegationSas", "whatever the service writes", True),  # undocumented: taken as given
    ("SAS", f"key1({SHA})", False),  # a SAS names its signature's hash too
    ("SAS", "key1(abc),SasSignature(def)", False),  # not SHA-256 hashes
    ("AccountKey", f"key3({SHA})", False),
    ("Anonymous", SHA, False),  # no credential, no hash
])
def test_an_authentication_hash_is_shaped_as_the_service_writes_it_for_its_type(store, kind, value, accepted):
    row = {"TimeGenerated": "2026-11-24T10:00:00Z", "AuthenticationType": kind, "AuthenticationHash": value}
    if accepted:
        store.seed("StorageBlobLogs", [row])
    else:
        with pytest.raises(ValueError, match="row 0: column 'AuthenticationHash'"):
            store.seed("StorageBlobLogs", [row])
