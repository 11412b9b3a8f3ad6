"""The emulator's Log Analytics tables (localazure/tables/, written from Microsoft's table
reference) against the schema in the shared reference material."""
from __future__ import annotations

import json

from localazure.logs import TABLES, default_schemas


def test_storage_blob_logs_has_the_shared_schemas_columns_and_types(shared):
    expected = json.loads((shared / "log-analytics" / "StorageBlobLogs.schema.json").read_text())
    assert default_schemas()["StorageBlobLogs"] == [(column["name"], column["type"]) for column in expected]


def test_every_table_file_names_its_source():
    for path in TABLES.glob("*.json"):
        table = json.loads(path.read_text())
        assert table["source"].startswith("https://learn.microsoft.com/"), path
