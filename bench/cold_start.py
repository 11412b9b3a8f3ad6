"""Cold start: what a fresh Functions instance pays before it decides anything.

    .venv/bin/python bench/cold_start.py [--imports N] [--invocations M]

1. Import cost, each in a fresh interpreter, N times: nothing (the interpreter's floor),
   `import function_app` (the app's cold start; it imports the SDKs lazily), and the eleven
   Azure SDKs imported eagerly (what the cold start would be without that).
2. The first invocation of every function in function_app.py, each in a fresh process, M
   times, against a running ARM + Log Analytics emulator and Azurite. CASES says what each
   is handed and how its state is set up (in this process, with the app itself, before
   the child starts): the three Event Grid functions on writes a write event about a fresh
   exposed resource, storage_key_access a listKeys event from a stranger on a fresh
   protected account, guardrail_change the deletion of a blob diagnostic setting seen good; contain a containment request storage_exposure queued; egress_scan a due
   window of StorageBlobLogs holding an anonymous read; drift_sweep a small estate of its
   own subscription; the HTTP functions a request through localazure.functions_host.call_http
   (approve and deny a held decision, release a contained one). Every run has a ledger
   table and queue of its own. Time from process start to the decision, split into
   interpreter start, loading the app and the first invocation (lazy SDK imports, client
   construction, first connections); a second, warm invocation in the same process on the
   same kind of input; peak RSS above a bare interpreter; and the Azure packages the first
   invocation imported. Against the emulator the app authenticates with its local token:
   in Azure, a first invocation also imports azure.identity and fetches managed-identity
   tokens, which 3. measures.
3. The managed identity, each in a fresh process, N times, after loading what a first
   invocation has loaded before it asks for a token (the app, azure.core's pipeline):
   importing azure.identity, building the credential (DefaultAzureCredential as the app
   does, and ManagedIdentityCredential), ARM's and Storage's first tokens and a cached one,
   against a loopback stand-in for the App Service managed-identity endpoint
   (IdentityEndpoint). That measures the client's side; the round trip to the real endpoint
   on an Azure instance, and Entra ID's issuance behind it, are not measured.

Figures are medians and minimums within this run, and ratios between them: the machine is
noisy, so compare ratios across machines, not milliseconds. .pyc files and the OS file
cache are warm (one discarded run of each first): this measures Python's import and
invocation work, not the disk.
"""
from __future__ import annotations

import argparse
import base64
import json
import os
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Callable
from urllib.parse import parse_qs, urlsplit

from _harness import (REPO, Stack, apply_settings, container_event, median, mib, ms, print_machine, print_table,
                      public_containers, ratio, synthetic_account)

from tests.helpers.arm_bodies import (CONTRIBUTOR, STORAGE_BLOB_DATA_READER, SUBSCRIPTION, access_policy, container,
                                      diagnostic_setting, key_vault, nsg, role_assignment, security_rule,
                                      storage_account)
from tests.helpers.events import ACCOUNT_WRITE, CONTAINER_WRITE, LIST_KEYS, action_event, delete_event, write_event
from tests.helpers.arm_bodies import WORKSPACE as DIAGNOSTIC_WORKSPACE
from tests.helpers.operators import operator

CHILD = Path(__file__).with_name("_cold_child.py")
IMPORTS = {"bare": "bare interpreter (floor)", "app": "import function_app", "sdks": "import the eleven SDKs"}


def run_child(mode: str, payload: dict | None = None, env: dict | None = None) -> dict:
    """Start a fresh interpreter on _cold_child.py; its measurements plus when it was spawned."""
    spawned = time.monotonic()
    done = subprocess.run([sys.executable, str(CHILD), mode], input=json.dumps(payload) if payload else None,
                          capture_output=True, text=True, env=env, cwd=REPO, timeout=120)
    if done.returncode != 0:
        raise RuntimeError(f"the {mode} child failed (exit {done.returncode}):\n{done.stderr}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    result["startup"] = result["started"] - spawned  # exec, interpreter init, site
    result["spawned"] = spawned
    return result


# -- 1. import cost --------------------------------------------------------------------------
def measure_imports(rounds: int) -> dict[str, list[dict]]:
    for mode in IMPORTS:  # discarded: compiles any missing .pyc, warms the file cache
        run_child(mode)
    results: dict[str, list[dict]] = {mode: [] for mode in IMPORTS}
    modes = list(IMPORTS)
    for index in range(rounds):
        # Rotate the order so that no variant always runs right after another (drift, caches).
        for mode in modes[index % 3:] + modes[:index % 3]:
            results[mode].append(run_child(mode))
    return results


def report_imports(results: dict[str, list[dict]]) -> dict[str, float]:
    floor = median([r["peak_kib"] for r in results["bare"]])
    rows, summary = [], {"floor": floor}
    for mode, label in IMPORTS.items():
        imports = [r["import"] for r in results[mode]]
        peak = median([r["peak_kib"] for r in results[mode]])
        summary[mode] = median(imports)
        summary[mode + "_min"] = min(imports)
        summary[mode + "_rss"] = peak - floor
        rows.append([label, ms(median(imports)), ms(min(imports)), ms(median([r["startup"] for r in results[mode]])),
                     mib(peak), mib(peak - floor)])
    print_table(f"Import cost in a fresh process ({len(results['app'])} runs each)",
                ["", "import ms (median)", "import ms (min)", "interpreter start ms", "peak RSS MiB",
                 "RSS above floor MiB"], rows)
    print(f"eager SDK imports vs import function_app: {ratio(summary['sdks'], summary['app'])} the time (median), "
          f"{ratio(summary['sdks_min'], summary['app_min'])} (min), "
          f"{ratio(summary['sdks_rss'], summary['app_rss'])} the memory above the floor")
    return summary


# -- 2. first invocations --------------------------------------------------------------------
WARMUP = 1  # discarded runs of every function: compile the containment package's .pyc files, warm the file cache
OPERATOR = operator()  # as App Service Authentication presents the person
STRANGER = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"  # a principal on no allowlist
READER = "8c9d0e1f-2a3b-4c5d-8e6f-7a8b9c0d1e2f"  # the egress accounts' usual OAuth reader
ALLOWED_NETWORK = "10.20.0.0/16"
WORKSPACE = "4f1d3c2b-0a9e-4d8c-8b7a-6f5e4d3c2b1a"
# The drift sweep lists whole subscriptions: its estate has one of its own, untouched by the other runs.
DRIFT_SUBSCRIPTION = "3d2c1b0a-9f8e-4d7c-8b6a-5f4e3d2c1b0a"
DRIFT_FINDINGS = 3  # the estate's exposed container, NSG and grant (drift_estate)
ROLE_WRITE = "Microsoft.Authorization/roleAssignments/write"
NSG_WRITE = "Microsoft.Network/networkSecurityGroups/write"
VAULT_WRITE = "Microsoft.KeyVault/vaults/accessPolicies/write"


def child_env(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment with the app's settings, and no stray ones of our own."""
    from containment.core.settings import SETTINGS

    env = {name: value for name, value in os.environ.items() if name not in {s.name for s in SETTINGS}}
    return {**env, **settings}


class Bench:
    """The parent's side of the runs: the stack, what every run shares (the protected
    account, the drift sweep's estate, the egress scan's hours), and the app in this process
    under one run's settings, to set up ledger state before a child and check it after."""

    def __init__(self, stack: Stack, runs: int) -> None:
        self.stack = stack
        self.account = synthetic_account()
        stack.emulator.seed([self.account, *drift_estate()])
        # Each egress run scans an hour of its own, all of them past the ingestion lag.
        self.egress_first_hour = (datetime.now(timezone.utc).replace(minute=0, second=0, microsecond=0)
                                  - timedelta(hours=runs + 1))

    def configure(self, function: str, run: int, extra: dict[str, str]) -> dict[str, str]:
        """The run's settings, made the app's in this process: a ledger table and a queue of
        the run's own, so each run starts from what its setup wrote, and both exist before
        the child starts, as in Azure (infra/ creates them)."""
        settings = {**self.stack.app_settings(function.replace("_", "") + str(run)),
                    "CONTAINMENT_ALLOWED_CIDRS": ALLOWED_NETWORK, **extra}
        apply_settings(settings)
        _ = self.runtime.ledger, self.runtime.queue  # opening them creates them
        return settings

    @property
    def runtime(self):
        from containment.adapters import runtime

        return runtime.current()

    def seed(self, bodies: list[dict]) -> None:
        self.stack.emulator.seed(bodies)

    def deliver(self, event: dict) -> str:
        """Deliver an event to the app in this process, as the host would; the event's ID."""
        import function_app
        from localazure.functions_host import deliver_event

        invocations = deliver_event(function_app.app, event)
        if not invocations or any(i.error for i in invocations):
            raise RuntimeError(f"setup: event {event['id']} failed: {[i.error for i in invocations]}")
        return event["id"]

    def drain(self) -> None:
        """Run the containment requests waiting on the queue, in this process."""
        import function_app
        from localazure.functions_host import drain_queue

        failed = [i.error for i in drain_queue(function_app.app, "contain", self.runtime.queue,
                                                    self.runtime.max_attempts) if i.error]
        if failed:
            raise RuntimeError(f"setup: containment failed: {failed}")

    def queued(self) -> int:
        return len(self.runtime.queue.peek_messages(max_messages=32))


@dataclass(frozen=True)
class Run:
    """What one child is handed, and what must hold after it for its figures to count."""

    first: dict  # the triggers, as _cold_child.py takes them
    second: dict
    check: Callable[[Bench, list], None]  # (bench, the two HTTP answers or Nones); raises if the work was not done


@dataclass(frozen=True)
class Case:
    decision: str  # what the invocation has done when it returns
    prepare: Callable[[Bench, int], Run]  # the resources and ledger state of run n, under its settings
    settings: dict[str, str] = field(default_factory=dict)


def http(method: str, route: str, body: dict | None = None) -> dict:
    return {"kind": "http", "method": method, "route": route, "body": body, "headers": OPERATOR}


def requests_queued(count: int) -> Callable[[Bench, list], None]:
    def check(bench: Bench, answers: list) -> None:
        if bench.queued() != count:
            raise RuntimeError(f"expected {count} containment requests on the queue, found {bench.queued()}")
    return check


def answered(status: int, queued: int) -> Callable[[Bench, list], None]:
    def check(bench: Bench, answers: list) -> None:
        if [a["status"] for a in answers] != [status, status]:
            raise RuntimeError(f"expected two {status} answers, got {answers}")
        requests_queued(queued)(bench, answers)
    return check


# -- what each function is handed: two of everything, so that the warm invocation does the same work
def event_grid(operation: str, exposed: Callable[[Bench, int], list[dict]]) -> Callable[[Bench, int], Run]:
    """Two fresh exposed resources and a write event about each: the full decision path
    (re-read, judge, record, request containment)."""
    def prepare(bench: Bench, run: int) -> Run:
        bodies = exposed(bench, run)
        bench.seed(bodies)
        first, second = ({"kind": "event", "event": write_event(body["id"], operation)} for body in bodies)
        return Run(first, second, requests_queued(2))
    return prepare


def public_container_pair(bench: Bench, run: int) -> list[dict]:
    return public_containers(bench.account, f"se{run:02d}-", 2)


def reader_grants(bench: Bench, run: int) -> list[dict]:
    return [grant(bench.account["id"], STORAGE_BLOB_DATA_READER) for _ in range(2)]


def open_nsgs(bench: Bench, run: int) -> list[dict]:
    return [nsg(f"nsg-cold-{run:02d}-{index}", [security_rule("allow-https", 300, source="Internet")])
            for index in range(2)]


def stranger_vaults(bench: Bench, run: int) -> list[dict]:
    """Two tagged vaults whose access policy lets a stranger unwrap their keys."""
    return [key_vault(f"kv-cold-{run:02d}-{index}", tags={"data-classification": "synthetic"},
                      policies=[access_policy(STRANGER, ["get", "unwrapKey"])]) for index in range(2)]


def key_listings(bench: Bench, run: int) -> Run:
    """Two fresh protected accounts whose keys a stranger listed: the full decision path
    (read the account, judge the event, record the rotation held for a person)."""
    accounts = [storage_account(f"coldkeys{run:02d}{index}") for index in range(2)]
    bench.seed(accounts)
    first, second = ({"kind": "event", "event": action_event(account["id"], LIST_KEYS)} for account in accounts)

    def check(bench: Bench, answers: list) -> None:
        held = {p["resource_id"].lower() for p in bench.runtime.ledger.pending()}
        if held != {account["id"].lower() for account in accounts}:
            raise RuntimeError(f"expected the two accounts' key rotations held for approval, found {held}")

    return Run(first, second, check)


def deleted_settings(bench: Bench, run: int) -> Run:
    """Two fresh protected accounts whose blob diagnostic setting was deleted after the app
    kept its last good body: the full decision path (read the setting, gone, and its account;
    judge it against the last good body; queue the restoration)."""
    accounts = [storage_account(f"colddiag{run:02d}{index}") for index in range(2)]
    settings = [diagnostic_setting(account["id"]) for account in accounts]
    bench.seed(accounts)
    for setting in settings:
        bench.runtime.ledger.keep_guardrail(setting)
    first, second = ({"kind": "event", "event": delete_event(setting["id"], "Microsoft.Insights/diagnosticSettings/delete")}
                     for setting in settings)
    return Run(first, second, requests_queued(2))


def grant(scope: str, role: str) -> dict:
    return role_assignment(scope, STRANGER, role, name=str(uuid.uuid4()))


def contain_requests(bench: Bench, run: int) -> Run:
    """Two containment requests, written by storage_exposure in this process and received
    as the host receives them; the child carries them out."""
    containers = public_containers(bench.account, f"ct{run:02d}-", 2)
    bench.seed(containers)
    keys = [bench.deliver(container_event(c)) for c in containers]
    messages = take_messages(bench.runtime.queue, 2)

    def check(bench: Bench, answers: list) -> None:
        for body, key in zip(containers, keys):
            record = bench.runtime.ledger.find(body["id"], key)
            access = bench.stack.emulator.get(body["id"])["properties"]["publicAccess"]
            if record is None or record.outcome != "contained" or access != "None":
                raise RuntimeError(f"{body['id']} was not contained and recorded "
                                   f"(record {record and record.outcome}, publicAccess {access})")
        for message in messages:  # the invocations succeeded: the host deletes the messages
            bench.runtime.queue.delete_message(message)

    return Run({"kind": "message", "message": as_trigger(messages[0])},
               {"kind": "message", "message": as_trigger(messages[1])}, check)


def egress_windows(bench: Bench, run: int) -> Run:
    """Two windows due since the checkpoint (one per invocation), each with an anonymous
    read of a fresh protected account (critical: contained), after a day of the accounts'
    usual reads for the baseline query. The warm scan reuses the hour's baseline, as an
    instance does."""
    from containment.core import clock
    from containment.detect.egress_scan import CHECKPOINT

    start = bench.egress_first_hour + timedelta(hours=run)
    accounts = [storage_account(f"coldegress{run:02d}{index}") for index in range(2)]
    rows = [blob_read(account, start - timedelta(hours=hours), "OAuth", "10.20.1.5")
            for account in accounts for hours in range(1, 25)]
    rows += [blob_read(account, start + timedelta(minutes=5 * index + 1), "Anonymous", "198.51.100.20")
             for index, account in enumerate(accounts)]
    bench.seed(accounts)
    bench.stack.emulator.seed_logs({"StorageBlobLogs": rows})
    bench.runtime.ledger.advance(CHECKPOINT, clock.iso(start), None)
    return Run({"kind": "timer"}, {"kind": "timer"}, requests_queued(2))


def blob_read(account: dict, at: datetime, auth: str, address: str) -> dict:
    """A StorageBlobLogs row: one 1 MiB GetBlob (the shape tests/test_egress.py seeds)."""
    name = account["name"]
    return {"TimeGenerated": at.isoformat().replace("+00:00", "Z"), "AccountName": name,
            "_ResourceId": account["id"].lower(), "Category": "StorageRead", "OperationName": "GetBlob",
            "StatusCode": "200", "AuthenticationType": auth, "RequesterObjectId": READER if auth == "OAuth" else None,
            "CallerIpAddress": f"{address}:52311", "ResponseBodySize": 1024 * 1024,
            "ObjectKey": f"/{name}/train/part-0", "Uri": f"https://{name}.blob.core.windows.net/train/part-0"}


def drift_estate() -> list[dict]:
    """A small estate, as tests/test_drift_sweep.py's: a protected account with a public
    container, an open NSG, a grant to a stranger, a compliant account and an exposed one
    that is not ours; in DRIFT_SUBSCRIPTION."""
    account = storage_account("colddrift01")
    estate = [account, container(account["id"], "training", "Container"),
              nsg(rules=[security_rule("allow-https", 300, source="Internet")]),
              grant(account["id"], STORAGE_BLOB_DATA_READER), storage_account("colddrift02"),
              storage_account("colddrift03", tags={}, allowBlobPublicAccess=True)]
    return json.loads(json.dumps(estate).replace(SUBSCRIPTION, DRIFT_SUBSCRIPTION))


def estate_sweep(bench: Bench, run: int) -> Run:
    """The estate, judged afresh (the run's ledger is new); the warm sweep finds its
    findings recorded already and writes nothing, as the next hourly sweep would."""
    return Run({"kind": "timer"}, {"kind": "timer"}, requests_queued(DRIFT_FINDINGS))


def held_decisions(bench: Bench, count: int) -> list[str]:
    """`count` subscription-scope grants to a stranger, delivered to role_assignment_grant
    in this process: deleting such a grant waits for a person. The pending decisions' keys."""
    grants = [grant(f"/subscriptions/{SUBSCRIPTION}", CONTRIBUTOR) for _ in range(count)]
    bench.seed(grants)
    keys = [bench.deliver(write_event(g["id"], ROLE_WRITE)) for g in grants]
    if set(keys) - {p["key"] for p in bench.runtime.ledger.pending()}:
        raise RuntimeError("setup: the subscription-scope grants are not waiting for approval")
    return keys


def pending_list(bench: Bench, run: int) -> Run:
    [key] = held_decisions(bench, 1)

    def check(bench: Bench, answers: list) -> None:
        answered(200, 0)(bench, answers)
        if any(key not in [p["key"] for p in a["body"]["pending"]] for a in answers):
            raise RuntimeError(f"decision {key} is not listed as pending: {answers}")

    return Run(http("GET", "decisions/pending"), http("GET", "decisions/pending"), check)


def settle(verb: str, status: int, queued: int) -> Callable[[Bench, int], Run]:
    """Approve or deny two held decisions."""
    def prepare(bench: Bench, run: int) -> Run:
        first, second = (http("POST", f"decisions/{key}/{verb}") for key in held_decisions(bench, 2))
        return Run(first, second, answered(status, queued))
    return prepare


def open_accounts(bench: Bench, run: int) -> Run:
    """Contain two fresh open accounts with what one operator may do alone (a key rotation
    waits for a second operator, so it is not asked)."""
    accounts = [storage_account(f"coldbreak{run:02d}{index}", allowBlobPublicAccess=True, allowSharedKeyAccess=True)
                for index in range(2)]
    bench.seed(accounts)
    alone = ["disable_blob_public_access", "lock_account_network", "disable_shared_key_access",
             "revoke_user_delegation_keys"]
    first, second = (http("POST", "contain", {"resourceId": a["id"], "reason": "suspected key leak", "actions": alone})
                     for a in accounts)
    return Run(first, second, answered(202, 2))


def contained_containers(bench: Bench, run: int) -> Run:
    """Release two containers contained in this process (storage_exposure, then contain)."""
    containers = public_containers(bench.account, f"rl{run:02d}-", 2)
    bench.seed(containers)
    keys = [bench.deliver(container_event(c)) for c in containers]
    bench.drain()
    if any(bench.runtime.ledger.find(c["id"], key).outcome != "contained" for c, key in zip(containers, keys)):
        raise RuntimeError("setup: the containers to release were not contained")
    first, second = (http("POST", "release", {"resourceId": c["id"], "decision": key})
                     for c, key in zip(containers, keys))
    return Run(first, second, answered(202, 2))


def new_exemptions(bench: Bench, run: int) -> Run:
    """Add two exemptions (the write; listing them is a single query)."""
    from containment.core import clock

    expires = clock.iso(datetime.now(timezone.utc) + timedelta(days=2))
    scopes = [f"{bench.account['id']}/blobServices/default/containers/ex{run:02d}-{index}" for index in range(2)]
    first, second = (http("POST", "exemptions", {"scope": scope, "reason": "public benchmark subset",
                                                 "owner": "ml-platform", "expires": expires}) for scope in scopes)

    def check(bench: Bench, answers: list) -> None:
        answered(201, 0)(bench, answers)
        if set(scopes) - {e["scope"] for e in bench.runtime.ledger.exemptions()}:
            raise RuntimeError(f"the exemptions were not written: {answers}")

    return Run(first, second, check)


def contained_incidents(bench: Bench, run: int) -> list[str]:
    """Two incidents: two containers made public by two people, contained in this process."""
    containers = public_containers(bench.account, f"in{run:02d}-", 2)
    bench.seed(containers)
    incidents = []
    for index, body in enumerate(containers):
        event = write_event(body["id"], CONTAINER_WRITE, actor=str(uuid.UUID(int=run * 10 + index + 1)))
        key = bench.deliver(event)
        bench.drain()
        incidents.append(bench.runtime.ledger.find(body["id"], key).incident)
    if len(set(incidents)) != 2 or None in incidents:
        raise RuntimeError(f"setup: expected two incidents, got {incidents}")
    return incidents


def incident_list(bench: Bench, run: int) -> Run:
    incidents = contained_incidents(bench, run)

    def check(bench: Bench, answers: list) -> None:
        answered(200, 0)(bench, answers)
        if any(set(incidents) - {i["incident"] for i in a["body"]["incidents"]} for a in answers):
            raise RuntimeError(f"the incidents {incidents} are not listed: {answers}")

    return Run(http("GET", "incidents"), http("GET", "incidents"), check)


def incident_views(bench: Bench, run: int) -> Run:
    first, second = (http("GET", f"incidents/{incident}") for incident in contained_incidents(bench, run))
    return Run(first, second, answered(200, 0))


def incident_assessments(bench: Bench, run: int) -> Run:
    """Assess two incidents not notifiable (the record written, the clock stopped)."""
    first, second = (http("POST", f"incidents/{incident}/assess", {
        "notifiable": False, "high_risk": False, "reason": "no read in the blob logs"})
        for incident in contained_incidents(bench, run))
    return Run(first, second, answered(200, 0))


def new_mutes(bench: Bench, run: int) -> Run:
    """Mute two rules' notifications on two fresh scopes (the write, as for exemptions)."""
    from containment.core import clock

    expires = clock.iso(datetime.now(timezone.utc) + timedelta(days=2))
    scopes = [f"{bench.account['id']}/blobServices/default/containers/mu{run:02d}-{index}" for index in range(2)]
    first, second = (http("POST", "mutes", {"rule": "storage_container_public_access", "scope": scope,
                                            "reason": "rehearsal", "owner": "ml-platform", "expires": expires})
                     for scope in scopes)

    def check(bench: Bench, answers: list) -> None:
        answered(201, 0)(bench, answers)
        if set(scopes) - {m["scope"] for m in bench.runtime.ledger.mutes()}:
            raise RuntimeError(f"the mutes were not written: {answers}")

    return Run(first, second, check)


def digest_due(bench: Bench, run: int) -> Run:
    """Two findings recorded `reported` (an account that allows shared keys), waiting for the
    hourly digest: the first invocation publishes it; the warm one, in the same hour, finds
    it sent (at most one an hour) and sends nothing."""
    accounts = [storage_account(f"colddigest{run:02d}{index}", allowSharedKeyAccess=True) for index in range(2)]
    bench.seed(accounts)
    for account in accounts:
        bench.deliver(write_event(account["id"], ACCOUNT_WRITE))

    def check(bench: Bench, answers: list) -> None:
        if list(bench.runtime.ledger.table.query_entities("PartitionKey eq 'digest'")):
            raise RuntimeError("the reported findings are still waiting for a digest")

    return Run({"kind": "timer"}, {"kind": "timer"}, check)


# Every function in function_app.py, in its order.
CASES: dict[str, Case] = {
    "storage_exposure": Case("request queued", event_grid(CONTAINER_WRITE, public_container_pair)),
    "role_assignment_grant": Case("request queued", event_grid(ROLE_WRITE, reader_grants)),
    "nsg_exposure": Case("request queued", event_grid(NSG_WRITE, open_nsgs)),
    "storage_key_access": Case("rotation held", key_listings),
    "guardrail_change": Case("request queued", deleted_settings,
                             {"CONTAINMENT_LOG_WORKSPACE_RESOURCE_ID": DIAGNOSTIC_WORKSPACE}),
    "key_vault_write": Case("request queued", event_grid(VAULT_WRITE, stranger_vaults)),
    "egress_scan": Case("request queued", egress_windows,
                        {"CONTAINMENT_LOG_WORKSPACE_ID": WORKSPACE, "CONTAINMENT_EGRESS_MAX_WINDOWS": "1"}),
    "drift_sweep": Case(f"{DRIFT_FINDINGS} requests queued", estate_sweep,
                        {"CONTAINMENT_SUBSCRIPTIONS": DRIFT_SUBSCRIPTION}),
    "notifications": Case("digest published", digest_due),
    "contain": Case("record written", contain_requests),
    "pending_approvals": Case("list answered", pending_list),
    "approve": Case("request queued", settle("approve", 202, 2)),
    "deny": Case("denial recorded", settle("deny", 200, 0)),
    "break_glass": Case("request queued", open_accounts),
    "release": Case("request queued", contained_containers),
    "exemptions": Case("exemption written", new_exemptions),
    "mutes": Case("mute written", new_mutes),
    "incidents": Case("list answered", incident_list),
    "incident": Case("incident answered", incident_views),
    "incident_decision": Case("assessment recorded", incident_assessments),
}


def take_messages(queue, count: int) -> list:
    """The host's side of the queue trigger: receive the requests detection wrote."""
    messages, deadline = [], time.monotonic() + 10
    while len(messages) < count and time.monotonic() < deadline:
        messages += list(queue.receive_messages(messages_per_page=count, visibility_timeout=300))
    if len(messages) != count:
        raise RuntimeError(f"expected {count} containment requests on the queue, found {len(messages)}")
    return messages


def as_trigger(message) -> dict:
    return {"id": message.id, "dequeue_count": message.dequeue_count, "pop_receipt": message.pop_receipt,
            "body": base64.b64decode(message.content).decode()}  # the app writes base64 (host default)


def measure_invocations(rounds: int) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {function: [] for function in CASES}
    functions = list(CASES)
    with Stack() as stack:
        bench = Bench(stack, WARMUP + rounds)
        for run in range(WARMUP + rounds):
            shift = run % len(functions)  # rotated, as the import variants are
            for function in functions[shift:] + functions[:shift]:
                case = CASES[function]
                settings = bench.configure(function, run, case.settings)
                prepared = case.prepare(bench, run)
                result = run_child("invoke", {"function": function, "first": prepared.first,
                                              "second": prepared.second}, child_env(settings))
                try:  # the figures count only if the work was done
                    prepared.check(bench, result["answers"])
                except RuntimeError as error:
                    raise RuntimeError(f"{function}: {error}") from None
                if run >= WARMUP:
                    results[function].append(result)
    return results


def report_invocations(results: dict[str, list[dict]], floor: float) -> dict[str, dict[str, float]]:
    rows, summary = [], {}
    for function, runs in results.items():
        startup = [r["startup"] for r in runs]
        load = [r["loaded"] - r["began"] - r["host_import"] for r in runs]
        first = [r["first"] - r["loaded"] for r in runs]
        total = [r["first"] - r["spawned"] for r in runs]
        warm = [r["second"] - r["first"] for r in runs]
        above_floor = [r["peak_after_first_kib"] - floor for r in runs]
        summary[function] = {"total": median(total), "rss": median(above_floor)}
        rows.append([f"{function} ({CASES[function].decision})", ms(median(startup)), ms(median(load)),
                     ms(median(first)), f"{ms(median(total))} / {ms(min(total))}", ms(median(warm)),
                     ratio(median(first), median(warm)), mib(median(above_floor)),
                     f"{median([r['modules_by_first'] for r in runs]):.0f}", len(runs[0]["azure_by_first"])])
    any_runs = next(iter(results.values()))
    print_table(f"First invocation in a fresh process ({len(any_runs)} runs each, medians)",
                ["function (decision)", "interpreter ms", "load app ms", "1st invocation ms",
                 "start->decision ms (med/min)", "warm 2nd ms", "1st/warm", "RSS above floor MiB",
                 "modules by 1st", "azure pkgs by 1st"], rows)
    host_import = median([r["host_import"] for runs in results.values() for r in runs])
    print("load app = import function_app + index its functions (as the worker does); 1st invocation includes "
          "the lazy SDK imports, settings, client construction and first connections; start->decision also holds "
          f"the local host's own import ({ms(host_import)} ms), in no column")
    print("warm 2nd: the same work (on fresh resources where it changes them), except drift_sweep (the next "
          "sweep: the same estate, its findings on record already) and egress_scan (the next window: the hour's "
          "baseline kept)")
    print("RSS above floor: peak resident memory after the 1st invocation, above a bare interpreter's")
    print("not measured here: importing azure.identity and fetching managed-identity tokens, which each 1st "
          "invocation adds in Azure (against the emulator the app uses a local token and a connection string): "
          "see the managed identity below")
    print("Azure packages each first invocation imported (azure.functions came with the app):")
    for function, runs in results.items():
        print(f"  {function}: {', '.join(runs[0]['azure_by_first']) or 'none'}")
    return summary


# -- 3. the managed identity -----------------------------------------------------------------
CREDENTIALS = {"default": "DefaultAzureCredential (the app's)", "managed": "ManagedIdentityCredential"}
TOKEN_RESOURCES = ["https://management.azure.com", "https://storage.azure.com"]  # _cold_child.identity's, in order


class IdentityEndpoint:
    """A loopback stand-in for the App Service managed-identity endpoint, answering as its
    REST reference says (https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference):
    a GET with api-version 2019-08-01, the token's `resource` and the user-assigned
    identity's `client_id`, the instance's secret in X-IDENTITY-HEADER; a JSON answer with
    access_token, expires_on (epoch seconds, a string), resource, token_type and client_id.
    Anything else is refused. It keeps the resources asked for: a run counts only if its
    first tokens came from here and its cached one did not."""

    SECRET = "cold-start-identity-header"
    CLIENT_ID = "0c8e4f6a-2b1d-4e3f-9a7b-5d6c8e0f1a2b"

    def __init__(self) -> None:
        self.asked: list[str] = []

    def __enter__(self) -> "IdentityEndpoint":
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a client may use it
            # Headers and body go out in two writes: without this, Nagle holds the body for the
            # client's delayed ACK (~40 ms on Linux), a cost of this stand-in, not of the client.
            disable_nagle_algorithm = True

            def do_GET(self) -> None:
                url = urlsplit(self.path)
                query = {name: values[0] for name, values in parse_qs(url.query).items()}
                if (url.path != "/msi/token" or self.headers.get("X-IDENTITY-HEADER") != endpoint.SECRET
                        or query.get("api-version") != "2019-08-01" or query.get("client_id") != endpoint.CLIENT_ID
                        or not query.get("resource")):
                    self._answer(400, {"statusCode": 400, "message": f"refused: {self.path}"})
                    return
                endpoint.asked.append(query["resource"])
                self._answer(200, {"access_token": f"stand-in-token-for-{query['resource']}",
                                   "expires_on": str(int(time.time()) + 24 * 3600), "resource": query["resource"],
                                   "token_type": "Bearer", "client_id": endpoint.CLIENT_ID})

            def _answer(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:  # quiet
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def child_env(self) -> dict[str, str]:
        """This environment as an App Service instance's: the endpoint, its secret, the
        user-assigned identity; no other credential source (no AZURE_* secrets, no proxies)."""
        env = {name: value for name, value in os.environ.items()
               if not name.upper().startswith(("AZURE_", "IDENTITY_", "MSI_", "IMDS_"))
               and name.lower() not in {"http_proxy", "https_proxy", "all_proxy", "no_proxy"}}
        return {**env, "IDENTITY_ENDPOINT": f"http://127.0.0.1:{self.server.server_port}/msi/token",
                "IDENTITY_HEADER": self.SECRET, "AZURE_CLIENT_ID": self.CLIENT_ID}


def measure_identity(rounds: int) -> dict[str, list[dict]]:
    results: dict[str, list[dict]] = {credential: [] for credential in CREDENTIALS}
    with IdentityEndpoint() as endpoint:
        for run in range(WARMUP + rounds):
            for credential in (list(CREDENTIALS) if run % 2 == 0 else list(CREDENTIALS)[::-1]):
                endpoint.asked.clear()
                result = run_child("identity", {"credential": credential}, endpoint.child_env())
                if endpoint.asked != TOKEN_RESOURCES:  # the figures count only if the tokens came from here
                    raise RuntimeError(f"{credential}: the endpoint was asked for {endpoint.asked}, "
                                       f"expected {TOKEN_RESOURCES} (the third token from the cache)")
                if run >= WARMUP:
                    results[credential].append(result)
    return results


def report_identity(results: dict[str, list[dict]], imports: dict[str, float],
                    invocations: dict[str, dict[str, float]] | None = None) -> dict[str, float]:
    rows = []
    for credential, label in CREDENTIALS.items():
        runs = results[credential]
        rows.append([label] + [ms(median([r[key] for r in runs]))
                               for key in ("import", "build", "arm_token", "storage_token", "cached_token")]
                    + [mib(median([r["import_kib"] + r["tokens_kib"] for r in runs]))])
    print_table(f"Managed identity on a first invocation, in a fresh process ({len(results['default'])} runs each, "
                "medians)", ["credential", "import azure.identity ms", "build ms", "1st ARM token ms",
                             "1st Storage token ms", "cached token ms", "peak RSS added MiB"], rows)
    runs = results["default"]
    summary = {"import": median([r["import"] for r in runs]),
               "first": median([r["import"] + r["build"] + r["arm_token"] + r["storage_token"] for r in runs]),
               "rss": median([r["import_kib"] + r["tokens_kib"] for r in runs])}
    print(f"the app's credential (DefaultAzureCredential), import to both first tokens: {ms(summary['first'])} ms, "
          f"{mib(summary['rss'])} MiB; importing azure.identity is {ratio(summary['import'], imports['app'])} "
          f"the time of import function_app, the identity's memory {ratio(summary['rss'], imports['app_rss'])} "
          "its memory above the floor")
    if invocations:
        slowest = max(invocations, key=lambda f: invocations[f]["total"])
        for function in ("storage_exposure", "contain", slowest):
            print(f"  against {function}'s start -> decision: {ratio(summary['first'], invocations[function]['total'])}"
                  f" the time, {ratio(summary['rss'], invocations[function]['rss'])} the memory above the floor")
    print("measured after the app and azure.core's pipeline are loaded (as on a first invocation); the tokens come "
          "from a loopback stand-in for the App Service identity endpoint: the client's work only. Not measured: "
          "the round trip to the real endpoint on an Azure instance, and Entra ID's issuance behind it")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imports", type=int, default=10, help="fresh processes per import variant")
    parser.add_argument("--invocations", type=int, default=5, help="fresh processes per function")
    args = parser.parse_args()

    began = time.monotonic()
    imports = report_imports(measure_imports(args.imports))
    invocations = report_invocations(measure_invocations(args.invocations), imports["floor"])
    identity = report_identity(measure_identity(args.imports), imports, invocations)

    rows = [["import function_app", ms(imports["app"]), mib(imports["app_rss"])],
            ["import the eleven SDKs eagerly", ms(imports["sdks"]), mib(imports["sdks_rss"])],
            ["  ratio eager / function_app", ratio(imports["sdks"], imports["app"]),
             ratio(imports["sdks_rss"], imports["app_rss"])]]
    for function, figures in invocations.items():
        rows.append([f"{function}: start -> decision", ms(figures["total"]), mib(figures["rss"])])
    rows.append(["managed identity: import azure.identity to both first tokens", ms(identity["first"]),
                 mib(identity["rss"])])
    print_table("Summary (medians; memory is peak RSS above a bare interpreter)", ["", "ms / ratio", "MiB / ratio"],
                rows)
    print_machine()
    print(f"\n(ran in {time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
