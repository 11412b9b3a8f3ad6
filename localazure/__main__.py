"""Local Azure from the command line.

    python -m localazure smoke   # start everything, one round trip through every client, stop
    python -m localazure serve [--seed SCENARIO.json ...]   # keep them running for `func start`
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
from datetime import datetime, timedelta, timezone


def _smoke_account(subscription: str) -> dict:
    return {
        "id": f"/subscriptions/{subscription}/resourceGroups/rg-smoke/providers/Microsoft.Storage/storageAccounts/smokesynth",
        "name": "smokesynth", "type": "Microsoft.Storage/storageAccounts", "location": "westeurope",
        "kind": "StorageV2", "sku": {"name": "Standard_LRS", "tier": "Standard"},
        "tags": {"data-classification": "synthetic"},
        "properties": {"allowBlobPublicAccess": True, "minimumTlsVersion": "TLS1_2"},
    }


def smoke() -> dict:
    """One round trip through the real clients: ARM GET + PATCH, a Log Analytics query,
    a table insert and read, a queue send and receive."""
    from containment.adapters.clients import AzureClients
    from containment.core.settings import load_settings
    from containment.plan.registry import VOCABULARY
    from localazure.azurite import Azurite
    from localazure.server import LocalAzure

    subscription = "00000000-0000-4000-8000-00000000cafe"
    now = datetime.now(timezone.utc).replace(microsecond=0)
    with LocalAzure() as azure, Azurite() as storage:
        azure.seed([_smoke_account(subscription)], {"StorageBlobLogs": [{
            "TimeGenerated": (now - timedelta(minutes=5)).isoformat().replace("+00:00", "Z"),
            "AccountName": "smokesynth", "OperationName": "GetBlob", "AuthenticationType": "Anonymous",
            "CallerIpAddress": "203.0.113.7:51234", "ResponseBodySize": 1048576, "StatusCode": "200",
        }]})
        previous = os.environ.get("AzureWebJobsStorage")
        os.environ["AzureWebJobsStorage"] = storage.connection_string  # as the host's setting would be
        try:
            return _round_trip(AzureClients(load_settings(azure.settings(), VOCABULARY)), subscription, now)
        finally:
            if previous is None:
                os.environ.pop("AzureWebJobsStorage")
            else:
                os.environ["AzureWebJobsStorage"] = previous


def _round_trip(clients, subscription: str, now: datetime) -> dict:
    from azure.mgmt.storage.models import StorageAccountUpdateParameters

    accounts = clients.storage(subscription).storage_accounts
    before = accounts.get_properties("rg-smoke", "smokesynth").allow_blob_public_access
    after = accounts.update("rg-smoke", "smokesynth",
                            StorageAccountUpdateParameters(allow_blob_public_access=False)).allow_blob_public_access
    result = clients.logs.query_workspace(
        "00000000-0000-4000-8000-0000000000aa",
        "StorageBlobLogs | summarize Bytes = sum(ResponseBodySize) by AuthenticationType",
        timespan=(now - timedelta(hours=1), now))
    tables = clients.table_service()
    table = tables.create_table_if_not_exists("smoke")
    table.upsert_entity({"PartitionKey": "smoke", "RowKey": "1", "outcome": "contained"})
    queue = clients.queue("smoke")
    queue.create_queue()
    queue.send_message("hello")
    received = [message.content for message in queue.receive_messages()]
    return {
        "arm": {"allowBlobPublicAccess": {"before": before, "after": after}},
        "log_analytics": [list(row) for row in result.tables[0].rows],
        "table": table.get_entity("smoke", "1")["outcome"],
        "queue": received,
    }


def serve(scenarios: list[str]) -> None:
    """Run until interrupted; print the settings that point `func start` at this machine.
    The resources and log rows of the given scenario files are seeded first."""
    from localazure.azurite import Azurite
    from localazure.scenario import load_scenario
    from localazure.server import LocalAzure

    with LocalAzure() as azure, Azurite() as storage:
        for file in scenarios:
            scenario = load_scenario(file)
            azure.seed(scenario.resources, scenario.logs)
        settings = {**azure.settings(), "AzureWebJobsStorage": storage.connection_string}
        print(json.dumps(settings, indent=2), flush=True)
        print("Put these in local.settings.json 'Values'; Ctrl-C stops.", file=sys.stderr, flush=True)
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m localazure", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["smoke", "serve"])
    parser.add_argument("--seed", nargs="*", default=[], metavar="SCENARIO.json",
                        help="serve: seed the resources and log rows of these scenarios")
    args = parser.parse_args(argv)
    if args.command == "smoke":
        print(json.dumps(smoke(), indent=2))
    else:
        serve(args.seed)
    return 0


if __name__ == "__main__":
    sys.exit(main())
