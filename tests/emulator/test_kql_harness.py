"""localazure.kql: the Kusto language service over StorageBlobLogs, and every shipped query."""
from __future__ import annotations

import pytest

from localazure.kql import KqlCheckFailed, check_queries, shipped_queries

EGRESS = """\
let lookback = 1h;
let bin_size = 5m;
let min_bytes = 100000000;
StorageBlobLogs
| where TimeGenerated > ago(lookback)
| where AuthenticationType == "Anonymous" and OperationName == "GetBlob"
| extend CallerIp = tostring(split(CallerIpAddress, ":")[0])
| summarize Bytes = sum(ResponseBodySize), Objects = dcount(ObjectKey)
    by CallerIp, AccountName, bin(TimeGenerated, bin_size)
| where Bytes > min_bytes
"""

# Queries that must fail: (text, code of the failing diagnostic, text its message names).
FAILING = {
    "unknown_column.kql": (
        "StorageBlobLogs | summarize count() by CallerIPAddress", "KS142", "CallerIPAddress"
    ),
    "syntax_error.kql": (
        'StorageBlobLogs | where AuthenticationType == "Anonymous" |',
        "KS176",
        "Query operator expected",
    ),
    "sum_of_string.kql": ("StorageBlobLogs | summarize sum(AccountName)", "KS138", "summable"),
    "long_equals_string.kql": (
        'StorageBlobLogs | where ResponseBodySize == "x"', "KQLCHECK001", "long and string"
    ),
    "string_status_equals_number.kql": (
        "StorageBlobLogs | where StatusCode == 200", "KQLCHECK001", "string and long"
    ),
    "let_parameter_wrong_type.kql": (
        'let min_bytes = "1000";\nStorageBlobLogs | where ResponseBodySize > min_bytes',
        "KS106",
        "long and string",
    ),
    "isnull_on_string.kql": ("StorageBlobLogs | where isnull(CallerIpAddress)", "KS501", "isnull"),
}
TEXTS = {
    "egress.kql": EGRESS,
    "contains.kql": 'StorageBlobLogs | where ObjectKey contains "secret"',
    **{name: text for name, (text, _, _) in FAILING.items()},
}


@pytest.fixture(scope="module")
def results():
    return check_queries(TEXTS)


def failures(diagnostics, text):
    return [d.describe(text) for d in diagnostics if d.fails]


def test_egress_query_type_checks(results):
    assert failures(results["egress.kql"], EGRESS) == []


@pytest.mark.parametrize("name", sorted(FAILING))
def test_bad_query_fails_naming_the_problem(results, name):
    text, code, named = FAILING[name]

    assert any(d.fails and d.code == code and named in d.message for d in results[name]), (
        failures(results[name], text)
    )


def test_diagnostic_points_at_the_offending_text(results):
    text = FAILING["unknown_column.kql"][0]
    (unknown,) = results["unknown_column.kql"]

    assert text[unknown.start : unknown.start + unknown.length] == "CallerIPAddress"
    assert unknown.severity == "Error"


def test_suggestions_are_reported_without_failing(results):
    assert [(d.severity, d.code, d.fails) for d in results["contains.kql"]] == [
        ("Suggestion", "KS500", False)
    ]


def test_unknown_column_type_in_the_schema_is_refused():
    with pytest.raises(KqlCheckFailed, match="bigint"):
        check_queries({"q.kql": "T"}, schema={"T": [{"name": "Bytes", "type": "bigint"}]})


def test_shipped_queries_are_every_kql_file_by_relative_path(tmp_path):
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "egress.kql").write_text(EGRESS)
    (tmp_path / "notes.md").write_text("not a query")

    assert shipped_queries(tmp_path) == {"rules/egress.kql": EGRESS}


@pytest.fixture(scope="module")
def shipped():
    queries = shipped_queries()
    return queries, check_queries(queries)


@pytest.mark.parametrize("name", sorted(shipped_queries()))
def test_shipped_query_type_checks(shipped, name):
    queries, checked = shipped

    assert failures(checked[name], queries[name]) == []


# The queries that parse AuthenticationHash: KQL has no include, so each carries the credential block.
CREDENTIAL_QUERIES = ("adapters/queries/egress_window.kql", "adapters/queries/egress_copy.kql",
                      "adapters/queries/impact_preview.kql")


def credential_expressions(text: str) -> str:
    """The expression lines of a query's credential block (between its two markers), comments left out."""
    block = text.split("// --- the credential block", 1)[1].split("// --- end of the credential block", 1)[0]
    return "\n".join(line.strip() for line in block.splitlines() if line.strip().startswith("|")
                     or line.startswith(" ") and not line.strip().startswith("//"))


def test_authentication_hash_is_parsed_by_the_same_expression_text_in_each_query():
    import re

    from containment.core.findings import ACCOUNT_KEYS

    queries = shipped_queries()
    [expression] = {credential_expressions(queries[name]) for name in CREDENTIAL_QUERIES}
    assert "SigningKey = extract(" in expression and "SasSignature = toupper(extract(" in expression
    assert re.search(r'@"\^\(([^)]*)\)', expression).group(1) == "|".join(ACCOUNT_KEYS)
    others = [name for name, text in queries.items() if "AuthenticationHash" in text and name not in CREDENTIAL_QUERIES]
    assert others == []  # a query that reads it elsewhere must carry the block too
