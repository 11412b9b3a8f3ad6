"""The egress scan with large inputs: its own processing of a big query answer, and the
real queries and timer over a week of raw logs in the Log Analytics emulator.

    .venv/bin/python bench/egress_scan.py [--rows N] [--accounts A] [--raw N] [--repeat R]

Part 1, in this process, no I/O: an answer of the egress_window query with --rows rows
(one per account and caller) over --accounts protected accounts, and a baseline of as many
(account, caller) rows, put through what a scan does with one window's answer:
  decode   the response's JSON text -> the SDK's LogsQueryResult: json.loads, then
           LogsQueryResult._from_generated (what LogsQueryClient.query_workspace calls,
           which parses each row's datetimes)
  rows     containment.adapters.log_analytics.run's conversion to dicts (json.loads of the dynamic
           columns), with a client that hands back that result
  judge    what egress_scan._judge_window does minus its I/O: group by account, then per
           account the resource ID, its protection, containment.plan.registry.judge with the real
           egress rules, and for accounts with findings the window evidence and
           decisions.decide. The ARM GET (arm.read) is a dict lookup of the account
           body; the ledger/queue write (record.conclude) is left out. That glue is
           restated here, ten lines of _judge_account, because the module interleaves it
           with the I/O; the real _judge_window is also timed with those two stubbed, as a
           cross-check that the restatement does the same work.

Part 2, against the emulator (ARM + Log Analytics in a child process, Azurite): --raw raw
StorageBlobLogs rows for one busy protected account, spread over a week, are seeded into
LocalAzure's LogStore; then, through the app's own LogsQueryClient over HTTPS
(containment.adapters.log_analytics.run with the runtime's AzureClients), the egress_baseline query
over the week and one egress_window query, --repeat times each, alternating; the same
request bodies answered by the LogStore directly (engine time, no HTTP); and full
run_egress_scan invocations (the timer, localazure.functions_host.fire_timer) at clocks
where exactly one window is due, half of the windows holding an incident (a SAS caller
outside CONTAINMENT_ALLOWED_CIDRS reading in bulk), half quiet.

Memory: tracemalloc peaks in separate passes (it slows Python down), and each process's
peak resident size (ru_maxrss).
"""
from __future__ import annotations

import argparse
import json
import math
import random
import time
import tracemalloc
import uuid
from datetime import datetime, timedelta, timezone

from _harness import HttpCalls, Stack, apply_settings, max_rss_kib, median, mib, ms, print_machine, print_table, ratio

WORKSPACE = "4f1d3c2b-0a9e-4d8c-8b7a-6f5e4d3c2b1a"
ALLOWED_CIDRS = "10.20.0.0/16"
MB = 1024 * 1024
WINDOW = timedelta(minutes=5)
LAG = timedelta(minutes=10)
# The first window the scans judge; a scan at FIRST_WINDOW + WINDOW + LAG has it due.
FIRST_WINDOW = datetime(2026, 11, 24, 11, 45, tzinfo=timezone.utc)
API_VERSION = "2025-01-05"

# The egress_window query's columns and their Kusto types, as the service sends them.
WINDOW_COLUMNS = [("ResourceId", "string"), ("AccountName", "string"), ("Caller", "string"), ("Bytes", "long"),
                  ("Blobs", "long"), ("Requests", "long"), ("AnonymousRequests", "long"),
                  ("KeyOrSasRequests", "long"), ("AuthenticationTypes", "dynamic"), ("Addresses", "dynamic"),
                  ("SampleUris", "dynamic"), ("FirstRead", "datetime"), ("LastRead", "datetime"),
                  ("Keys", "dynamic"), ("SasSignatures", "dynamic"), ("UnknownKeyRequests", "long"),
                  ("SasPolicyViolations", "long"), ("SasExpiryStatuses", "dynamic")]


def wire_time(moment: datetime) -> str:
    """A datetime as the service writes it (UTC, Z, fraction only when non-zero)."""
    text = moment.astimezone(timezone.utc).replace(tzinfo=None).isoformat()
    return (text.rstrip("0") if moment.microsecond else text) + "Z"


def guid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def inside_address(rng: random.Random) -> str:
    return f"10.20.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def outside_address(rng: random.Random) -> str:
    return f"{rng.choice(('203.0.113', '198.51.100', '192.0.2'))}.{rng.randrange(1, 255)}"


# -- part 1: a large window answer, judged ----------------------------------------------------
def aggregate_answer(rng: random.Random, rows: int, accounts: list[dict]) -> tuple[str, dict, int]:
    """(the egress_window answer's JSON text as the service sends it, the baseline dict as
    _baseline builds it, how many baseline rows are of callers quiet in this window)."""
    per_account = math.ceil(rows / len(accounts))
    start = FIRST_WINDOW
    table_rows, baseline = [], {}
    for account in accounts:
        resource_id, name = account["id"].lower(), account["name"]
        callers: set[str] = set()
        for _ in range(min(per_account, rows - len(table_rows))):
            kind = rng.choices(("OAuth", "SAS", "AccountKey", "DelegationSas", "Anonymous"),
                               weights=(55, 30, 10, 4.8, 0.2))[0]
            while True:
                address = outside_address(rng) if rng.random() < 0.01 else inside_address(rng)
                caller = guid(rng) if kind == "OAuth" else address
                if caller not in callers:
                    callers.add(caller)
                    break
            addresses = sorted({address, *(inside_address(rng) for _ in range(rng.choice((0, 0, 0, 1, 2))))}) \
                if kind == "OAuth" else [address]
            if rng.random() < 0.003:  # enumeration: more distinct blobs than the default 1000
                requests = rng.randint(1001, 6000)
                blobs = requests
            else:
                requests = max(1, int(rng.lognormvariate(math.log(12), 1.2)))
                blobs = max(1, int(requests * rng.uniform(0.3, 1.0)))
            volume = int(min(rng.lognormvariate(math.log(20 * MB), 1.5), 40 * 1024 * MB))
            uris = [f"https://{name}.blob.core.windows.net/train/part-{rng.randrange(100000):05d}.parquet"
                    + ("" if kind == "OAuth" else f"?sv={API_VERSION}") for _ in range(min(blobs, 4))]
            first = start + timedelta(seconds=rng.uniform(0, 200))
            last = first + timedelta(seconds=rng.uniform(0, 99))
            table_rows.append([
                resource_id, name, caller, volume, blobs, requests,
                requests if kind == "Anonymous" else 0,
                requests if kind in ("SAS", "AccountKey", "DelegationSas") else 0,
                json.dumps([kind]), json.dumps(addresses), json.dumps(sorted(set(uris))),
                wire_time(first), wire_time(last),
                # No AuthenticationHash in these rows: a key or SAS request's key is not known.
                json.dumps([""]), json.dumps([""]), requests if kind in ("SAS", "AccountKey") else 0, 0,
                json.dumps([""]),
            ])
            if rng.random() < 0.9:  # a caller with history; the rest are new
                mean = volume * rng.uniform(0.3, 1.5) * rng.uniform(0.001, 1.0)
                baseline[(resource_id, caller)] = {"ResourceId": resource_id, "Caller": caller, "Mean": mean,
                                                   "StdDev": mean * rng.uniform(0.1, 3.0),
                                                   "ActiveWindows": rng.randint(1, 2016)}
    quiet = 0
    while len(baseline) < rows:  # callers with history that read nothing in this window
        account = rng.choice(accounts)
        key = (account["id"].lower(), guid(rng))
        baseline[key] = {"ResourceId": key[0], "Caller": key[1], "Mean": rng.uniform(1e3, 1e9),
                         "StdDev": rng.uniform(1e3, 1e9), "ActiveWindows": rng.randint(1, 2016)}
        quiet += 1
    body = {"tables": [{"name": "PrimaryResult", "columns": [{"name": n, "type": t} for n, t in WINDOW_COLUMNS],
                        "rows": table_rows}]}
    return json.dumps(body), baseline, quiet


class Answering:
    """An AzureClients stand-in whose Log Analytics client hands back one prepared result
    (no reference cycle: the result goes when the call's frame does, not at the next GC)."""

    def __init__(self, result) -> None:
        self.logs = Logs(result)


class Logs:
    def __init__(self, result) -> None:
        self.result = result

    def query_workspace(self, *args, **kwargs):
        return self.result


class PureScan:
    """The scan's own processing of one window's answer, stage by stage."""

    def __init__(self, settings, accounts: list[dict], text: str, baseline: dict) -> None:
        self.settings, self.text, self.baseline = settings, text, baseline
        self.accounts = {account["id"].lower(): account for account in accounts}  # stands in for the ARM GET

    def json_loads(self):
        return json.loads(self.text)

    def from_generated(self, parsed):
        from azure.monitor.query import LogsQueryResult

        return LogsQueryResult._from_generated(parsed)  # noqa: SLF001 - what query_workspace calls

    def rows(self, result) -> list[dict]:
        from containment.adapters import log_analytics

        return log_analytics.run(Answering(result), WORKSPACE, "egress_window", FIRST_WINDOW, FIRST_WINDOW + WINDOW,
                               window_start=FIRST_WINDOW, window_end=FIRST_WINDOW + WINDOW)

    def judge(self, rows: list[dict]) -> list:
        """_judge_window minus arm.read (a dict lookup here) and conclude (left out):
        (account, decision) for each account with findings."""
        from dataclasses import replace

        from containment.core import clock
        from containment.core.ids import STORAGE_ACCOUNT, parse_resource_id
        from containment.judge.egress import TABLE
        from containment.judge.rule import Context
        from containment.judge.scope import protection_of
        from containment.plan.decisions import decide
        from containment.plan.registry import judge

        start, end = FIRST_WINDOW, FIRST_WINDOW + WINDOW
        by_account: dict[str, list[dict]] = {}
        for row in rows:
            by_account.setdefault(row["ResourceId"], []).append(row)
        decided = []
        for resource_id, callers in sorted(by_account.items()):
            account_id = parse_resource_id(resource_id)
            if not account_id.is_type(STORAGE_ACCOUNT):
                continue
            account = self.accounts[resource_id]
            protection = protection_of(account_id, account.get("tags"), self.settings)
            if not protection.protected:
                continue
            spelled = account.get("id") or account_id.text
            activity = {"id": spelled, "window": {"start": clock.iso(start), "end": clock.iso(end)},
                        "callers": callers}
            findings = judge(TABLE, activity, Context(self.settings, protection, facts={"baseline": self.baseline}))
            if not findings:
                continue
            findings = [replace(f, evidence={**f.evidence, **activity["window"]}) for f in findings]
            decided.append((spelled, decide(findings, self.settings)))
        return decided

    def real_judge_window(self, rows: list[dict]) -> list:
        """The app's own _judge_window, with the ARM read and the ledger/queue write stubbed."""
        from types import SimpleNamespace
        from unittest import mock

        from containment.adapters import arm
        from containment.detect import egress_scan

        def read(clients, account_id):
            return self.accounts[account_id.text.lower()]

        # An empty ledger: no earlier incident on an account, no failure open.
        runtime = SimpleNamespace(settings=self.settings, clients=None,
                                  ledger=SimpleNamespace(for_resource=lambda account_id: [],
                                                         open_repetitions=lambda operation: []))
        stub = SimpleNamespace(read=read, ResourceGone=arm.ResourceGone)
        run = egress_scan.ScanRun(egress_scan.Repeats(runtime, egress_scan.OPERATION, "egress"))
        with mock.patch.object(egress_scan, "arm", stub), \
                mock.patch.object(egress_scan, "conclude", lambda runtime, record, decision, state: (record, decision)):
            return egress_scan._judge_window(runtime, FIRST_WINDOW, FIRST_WINDOW + WINDOW, rows, [], {},
                                              self.baseline, run)


def traced(run, *args):
    """(result, bytes allocated at the peak of run above what was live before it)."""
    tracemalloc.reset_peak()
    live = tracemalloc.get_traced_memory()[0]
    result = run(*args)
    return result, tracemalloc.get_traced_memory()[1] - live


def timed(run, *args):
    started = time.perf_counter()
    result = run(*args)
    return result, time.perf_counter() - started


def part_one(args) -> None:
    from tests.helpers.arm_bodies import storage_account
    from tests.helpers.settings import load_settings

    settings = load_settings({"CONTAINMENT_MODE": "enforce", "CONTAINMENT_ALLOWED_CIDRS": ALLOWED_CIDRS,
                              "CONTAINMENT_LOG_WORKSPACE_ID": WORKSPACE})
    accounts = [storage_account(f"synthbench{index:03d}") for index in range(args.accounts)]
    rng = random.Random(20261124)
    started = time.perf_counter()
    text, baseline, quiet = aggregate_answer(rng, args.rows, accounts)
    made = time.perf_counter() - started
    scan = PureScan(settings, accounts, text, baseline)
    # Warm-up on a small answer of its own: the imports and first calls are not the stages' cost.
    small_text, small_baseline, _ = aggregate_answer(random.Random(1), 500, accounts[:5])
    small = PureScan(settings, accounts, small_text, small_baseline)
    small_rows = small.rows(small.from_generated(small.json_loads()))
    small.judge(small_rows)
    small.real_judge_window(small_rows)

    stages = ("json.loads", "from_generated", "rows", "judge", "real _judge_window")
    seconds: dict[str, list[float]] = {stage: [] for stage in stages}
    for _ in range(args.pure_repeat):
        parsed, elapsed = timed(scan.json_loads)
        seconds["json.loads"].append(elapsed)
        result, elapsed = timed(scan.from_generated, parsed)
        seconds["from_generated"].append(elapsed)
        del parsed
        rows, elapsed = timed(scan.rows, result)
        seconds["rows"].append(elapsed)
        del result
        decided, elapsed = timed(scan.judge, rows)
        seconds["judge"].append(elapsed)
        written, elapsed = timed(scan.real_judge_window, rows)
        seconds["real _judge_window"].append(elapsed)
        del rows
    if len(decided) != len(written) or [d[0] for d in decided] != [w[0].resource_id for w in written]:
        raise RuntimeError(f"the restated judge decided {len(decided)} accounts, _judge_window {len(written)}")

    # Memory, in one pass of its own: each stage's peak above what was live before it (its
    # input, the answer's text, the baseline); the whole's peak is the highest of the
    # stages' above what was live before the first (the intermediates are dropped as the
    # timed runs drop them).
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    highest = 0

    def stage(run, *inputs):
        nonlocal highest
        live = tracemalloc.get_traced_memory()[0]
        result, peak = traced(run, *inputs)
        highest = max(highest, live + peak)
        return result, peak

    parsed, peak_loads = stage(scan.json_loads)
    result, peak_generated = stage(scan.from_generated, parsed)
    del parsed
    rows, peak_rows = stage(scan.rows, result)
    del result
    _, peak_judge = stage(scan.judge, rows)
    peak_whole = highest - before
    _, peak_real = traced(scan.real_judge_window, rows)
    del _
    rows_bytes = tracemalloc.get_traced_memory()[0]
    del rows
    rows_bytes -= tracemalloc.get_traced_memory()[0]  # what the converted rows hold, alive
    tracemalloc.stop()

    n = args.rows
    findings = [f for _, decision in decided for f in decision.findings]
    per_rule: dict[str, int] = {}
    for finding in findings:
        per_rule[finding.rule] = per_rule.get(finding.rule, 0) + len(finding.evidence.get("callers", []))
    outcomes: dict[str, int] = {}
    for _, decision in decided:
        outcomes[decision.outcome] = outcomes.get(decision.outcome, 0) + 1

    print(f"Part 1: one window's answer of {n:,} aggregate rows over {len(accounts)} protected accounts "
          f"({n // len(accounts):,} callers each), baseline of {len(baseline):,} (account, caller) rows "
          f"({quiet:,} of callers quiet in the window); answer text {len(text) / MB:.1f} MiB; "
          f"inputs made in {made:.1f} s, not counted")
    labels = {
        "json.loads": "decode: json.loads of the answer (azure-core)",
        "from_generated": "decode: LogsQueryResult._from_generated (SDK)",
        "rows": "log_analytics.run: rows -> dicts, dynamic json.loads",
        "judge": "group + per account: protection, judge, decide",
        "real _judge_window": "cross-check: real _judge_window, I/O stubbed",
    }
    peaks = {"json.loads": peak_loads, "from_generated": peak_generated, "rows": peak_rows, "judge": peak_judge,
             "real _judge_window": peak_real}
    table = []
    for stage in stages:
        values = seconds[stage]
        table.append([labels[stage], ms(median(values)), ms(min(values)), f"{n / median(values):,.0f}",
                      mib(peaks[stage] / 1024)])
    total = [sum(seconds[s][i] for s in stages[:4]) for i in range(args.pure_repeat)]
    table.append(["whole: text -> decisions (first four)", ms(median(total)), ms(min(total)),
                  f"{n / median(total):,.0f}", mib(peak_whole / 1024)])
    print_table(f"The scan's own processing of the answer ({args.pure_repeat} runs; gc on)",
                ["", "median ms", "min ms", "rows/s", "traced peak MiB"], table)
    print(f"traced peak = tracemalloc peak above what was live before the stage (separate pass); the converted "
          f"rows alone hold {mib(rows_bytes / 1024)} MiB while alive")
    print(f"judged: {len(decided)} of {len(accounts)} accounts have findings "
          f"({', '.join(f'{k}: {v}' for k, v in sorted(outcomes.items()))}); "
          f"callers in evidence per rule: {', '.join(f'{k} {v}' for k, v in sorted(per_rule.items()))}")
    print(f"shares of the whole: decode "
          f"{(median(seconds['json.loads']) + median(seconds['from_generated'])) / median(total):.0%}, "
          f"rows {median(seconds['rows']) / median(total):.0%}, judge {median(seconds['judge']) / median(total):.0%}; "
          "real _judge_window / restated judge: "
          f"{ratio(median(seconds['real _judge_window']), median(seconds['judge']))}")


# -- part 2: a week of raw logs in the emulator ----------------------------------------------
class Traffic:
    """The busy account's callers and what they do; deterministic."""

    OPERATIONS = (("GetBlob", 78), ("GetBlobProperties", 10), ("ListBlobs", 4), ("PutBlob", 5),
                  ("GetContainerProperties", 3))

    def __init__(self, rng: random.Random, account: dict) -> None:
        self.rng, self.account = rng, account
        self.name, self.resource_id = account["name"], account["id"].lower()
        self.subscription = account["id"].split("/")[2]
        tenant = "72f988bf-86f1-41af-91ab-2d7cd011db47"
        callers = []
        for index in range(24):  # principals: pipelines, notebooks, people
            callers.append({"auth": "OAuth", "oid": guid(rng), "tenant": tenant,
                            "upn": f"user{index:02d}@contoso.example" if index % 3 == 0 else None,
                            "ips": [inside_address(rng) for _ in range(rng.choice((1, 1, 2)))],
                            "agent": "azsdk-python-storage-blob/12.26.0 Python/3.11.9 (Linux)"})
        for auth, count in (("SAS", 6), ("AccountKey", 3), ("DelegationSas", 1)):  # from the allowed network
            callers += [{"auth": auth, "ips": [inside_address(rng)], "agent": "AzCopy/10.27.1 Linux"}
                        for _ in range(count)]
        for _ in range(2):  # anonymous probes: the account is private, so they fail
            callers.append({"auth": "Anonymous", "ips": [outside_address(rng)], "agent": "curl/8.5.0", "probe": True})
        self.callers = callers
        self.weights = [1 / (rank + 1) ** 0.8 for rank in range(len(callers))]  # a few heavy, a long tail
        self.operations = [name for name, _ in self.OPERATIONS]
        self.operation_weights = [weight for _, weight in self.OPERATIONS]

    def row(self, at: datetime, caller: dict | None = None, operation: str | None = None,
            size: int | None = None, blob: str | None = None) -> dict:
        rng = self.rng
        caller = caller or rng.choices(self.callers, self.weights)[0]
        operation = operation or ("GetBlob" if caller.get("probe") else
                                  rng.choices(self.operations, self.operation_weights)[0])
        blob = blob or f"train/shard-{rng.randrange(4000):04d}/part-{rng.randrange(64):02d}.parquet"
        write = operation == "PutBlob"
        if caller.get("probe"):
            status, text = "409", "PublicAccessNotPermitted"
        elif operation == "GetBlob":
            status, text = rng.choices((("200", "Success"), ("206", "Success"), ("404", "BlobNotFound")),
                                       (90, 8, 2))[0]
        else:
            status, text = ("201", "Success") if write else ("200", "Success")
        if size is None and operation == "GetBlob" and status in ("200", "206"):
            size = int(rng.lognormvariate(math.log(2 * MB), 1.3))
        elif size is None:
            size = rng.randrange(200, 4000)
        oauth = caller["auth"] == "OAuth"
        query = "" if oauth or caller["auth"] == "Anonymous" else f"?sv={API_VERSION}&ss=b&srt=o&sp=r&sig=XXXXX"
        duration = round(rng.uniform(2, 40) + size / (50 * MB) * 1000, 1)
        path = blob if operation in ("GetBlob", "GetBlobProperties", "PutBlob") else "train"
        return {
            "TimeGenerated": wire_time(at), "AccountName": self.name, "_ResourceId": self.resource_id,
            "_SubscriptionId": self.subscription, "Location": "westeurope",
            "Category": "StorageWrite" if write else "StorageRead",
            "OperationName": operation, "OperationVersion": API_VERSION, "SchemaVersion": "1.0",
            "StatusCode": status, "StatusText": text, "DurationMs": duration,
            "ServerLatencyMs": round(duration * rng.uniform(0.3, 0.9), 1), "AuthenticationType": caller["auth"],
            "RequesterObjectId": caller.get("oid"), "RequesterTenantId": caller.get("tenant"),
            "RequesterUpn": caller.get("upn"),
            "CallerIpAddress": f"{rng.choice(caller['ips'])}:{rng.randrange(1024, 65535)}",
            "UserAgentHeader": caller["agent"], "Protocol": "HTTPS", "TlsVersion": "TLS 1.2", "ServiceType": "blob",
            "Uri": f"https://{self.name}.blob.core.windows.net:443/{path}{query}",
            "ObjectKey": f"/{self.name}/{path}", "ResponseBodySize": 0 if write else size,
            "RequestBodySize": size if write else 0, "CorrelationId": guid(rng),
        }

    def incident(self, window_start: datetime, reads: int) -> list[dict]:
        """A leaked SAS used from outside the allowed network: bulk reads in one window."""
        caller = {"auth": "SAS", "ips": ["203.0.113.77"], "agent": "python-requests/2.32.3"}
        return [self.row(window_start + timedelta(seconds=30 + index * 200 / reads), caller, "GetBlob",
                         size=48 * MB, blob=f"train/shard-{index:04d}/part-00.parquet") for index in range(reads)]


def seed_week(stack: Stack, traffic: Traffic, rows: int, until: datetime, incident_windows: list[datetime],
              chunk: int) -> dict[str, float]:
    """Seed `rows` raw rows uniformly from a week before the first scanned window to
    `until`, in chunks: seconds making rows here, seconds of the seed calls (the pipe
    included), seconds of LogStore.seed in the emulator."""
    start = FIRST_WINDOW - timedelta(days=7)
    span = (until - start).total_seconds()
    making = sending = storing = 0.0
    incident = [row for window in incident_windows for row in traffic.incident(window, reads=60)]
    left = rows - len(incident)
    batch = incident
    while left > 0 or batch:
        began = time.perf_counter()
        count = min(chunk, left)
        batch += [traffic.row(start + timedelta(seconds=traffic.rng.uniform(0, span))) for _ in range(count)]
        left -= count
        making += time.perf_counter() - began
        began = time.perf_counter()
        storing += stack.emulator.seed_logs({"StorageBlobLogs": batch})
        sending += time.perf_counter() - began
        batch = []
    return {"making": making, "sending": sending, "storing": storing, "start": start}


def classify(call) -> str:
    if call.path.lower().startswith("/v1/workspaces/"):
        return "Log Analytics"
    return {"arm": "ARM", "table": "Table", "queue": "Queue"}.get(call.service, call.service)


def part_two(args) -> dict:
    from azure.monitor.query._helpers import construct_iso8601

    import function_app
    from containment.adapters import log_analytics
    from containment.adapters import runtime as runtime_module
    from containment.core import clock
    from containment.detect import egress_scan
    from localazure.functions_host import fire_timer
    from tests.helpers.arm_bodies import storage_account

    account = storage_account("busysynth01")
    windows = 2 * args.repeat  # scanned by the measured scans: half with an incident
    # The scans: a first one (the ledger table and the queue made) at window 0, measured ones
    # at 1..windows, then one under tracemalloc; each sees exactly one window due. Windows
    # 0, 1, 3, 5, ... hold an incident.
    last_window = FIRST_WINDOW + (windows + 1) * WINDOW
    incident_windows = [FIRST_WINDOW + k * WINDOW for k in range(windows + 2) if k == 0 or k % 2 == 1]
    report: dict = {}
    with Stack() as stack, HttpCalls(stack.services()) as http:
        stack.emulator.seed([account])
        seeding = seed_week(stack, Traffic(random.Random(7), account), args.raw, last_window + WINDOW,
                            incident_windows, args.chunk)
        report["seed"] = seeding
        settings = stack.app_settings("egressscan", mode="enforce")
        settings.update({"CONTAINMENT_LOG_WORKSPACE_ID": WORKSPACE, "CONTAINMENT_ALLOWED_CIDRS": ALLOWED_CIDRS,
                         "CONTAINMENT_EGRESS_WINDOW_MINUTES": str(int(WINDOW.total_seconds() // 60)),
                         "CONTAINMENT_EGRESS_LAG_MINUTES": str(int(LAG.total_seconds() // 60))})
        apply_settings(settings)
        runtime = runtime_module.current()
        config = runtime.settings
        lookback = timedelta(days=config.egress_baseline_days)

        def baseline_query(start):
            return log_analytics.run(runtime.clients, WORKSPACE, "egress_baseline", start - lookback, start,
                                   lookback_start=start - lookback, lookback_end=start, window=WINDOW,
                                   windows=int(lookback / WINDOW))

        def window_query(start):
            return log_analytics.run(runtime.clients, WORKSPACE, "egress_window", start, start + WINDOW,
                                   window_start=start, window_end=start + WINDOW)

        def body(name, start, end, **values):
            text = log_analytics.with_parameters((log_analytics.QUERIES / f"{name}.kql").read_text(), **values)
            return {"query": text, "timespan": construct_iso8601((start, end))}

        window_query(FIRST_WINDOW)  # warm-up: the client built, its TLS connection opened
        http.take()
        queries = {"baseline": [], "window": []}
        engine = {"baseline": [], "window": []}
        answered = {}
        for index in range(args.repeat):
            for name in (("baseline", "window") if index % 2 == 0 else ("window", "baseline")):
                run = baseline_query if name == "baseline" else window_query
                started = time.perf_counter()
                rows = run(FIRST_WINDOW)
                elapsed = time.perf_counter() - started
                calls = http.take()
                queries[name].append((elapsed, sum(c.seconds for c in calls), len(calls)))
                answered[name] = len(rows)
        requests = {"baseline": body("egress_baseline", FIRST_WINDOW - lookback, FIRST_WINDOW,
                                     lookback_start=FIRST_WINDOW - lookback, lookback_end=FIRST_WINDOW,
                                     window=WINDOW, windows=int(lookback / WINDOW)),
                    "window": body("egress_window", FIRST_WINDOW, FIRST_WINDOW + WINDOW,
                                   window_start=FIRST_WINDOW, window_end=FIRST_WINDOW + WINDOW)}
        for _ in range(args.repeat):
            for name in ("baseline", "window"):
                seconds, status, count = stack.emulator.logs_query(requests[name])
                if status != 200:
                    raise RuntimeError(f"the emulator answered the {name} query {status}: {count}")
                engine[name].append(seconds)
        report["queries"], report["engine"], report["answered"] = queries, engine, answered

        def scan_at(window_start: datetime):
            """One timer invocation at the clock where `window_start`'s window is due."""
            at = window_start + WINDOW + LAG
            clock.set_source(lambda: at)
            try:
                started = time.perf_counter()
                invocation = fire_timer(function_app.app, "egress_scan")
                elapsed = time.perf_counter() - started
            finally:
                clock.set_source(None)
            calls = http.take()
            if invocation.error is not None:
                raise RuntimeError(f"the scan failed: {invocation.error!r}")
            position = runtime.ledger.checkpoint(egress_scan.CHECKPOINT)[0]
            if not position or not position.startswith(clock.iso(window_start + WINDOW)[:16]):
                raise RuntimeError(f"the scan at {clock.iso(at)} left the checkpoint at {position}")
            return elapsed, calls

        def checked_scan(k: int):
            if k % 4 == 2:  # every other quiet window: as the first scan of an hour, query the baseline
                runtime.egress_baseline = None  # and the watch (the accounts listed, the arrival of their logs)
                runtime.egress_watch = None
            elapsed, calls = scan_at(FIRST_WINDOW + k * WINDOW)
            kind = "incident" if FIRST_WINDOW + k * WINDOW in incident_windows else "quiet"
            queued = sum(1 for c in calls if c.service == "queue" and c.method == "POST")
            if queued != (1 if kind == "incident" else 0):
                raise RuntimeError(f"the scan of window {k} ({kind}) queued {queued} containment requests")
            queries = [c.entity for c in calls if classify(c) == "Log Analytics"]
            if "" in queries:
                raise RuntimeError(f"the scan of window {k} sent a Log Analytics query that is none of the shipped ones")
            return (kind, "queried" if "egress_baseline" in queries else "reused"), elapsed, calls

        _, *first = checked_scan(0)
        scans: dict = {}
        for k in range(1, windows + 1):
            kind, elapsed, calls = checked_scan(k)
            scans.setdefault(kind, []).append((elapsed, calls))
        tracemalloc.start()
        (_, _), scan_peak = traced(scan_at, FIRST_WINDOW + (windows + 1) * WINDOW)
        tracemalloc.stop()
        report.update(first=first, scans=scans, scan_peak=scan_peak, windows=windows,
                      bench_rss=max_rss_kib(), emulator_rss=stack.emulator.max_rss(),
                      incident_reads=60, span=(seeding["start"], last_window + WINDOW))
    runtime_module.reset()
    return report


def print_part_two(args, report: dict) -> None:
    seed = report["seed"]
    start, end = report["span"]
    n = args.raw
    print(f"\nPart 2: {n:,} raw StorageBlobLogs rows for one busy protected account, {clock_text(start)} to "
          f"{clock_text(end)} ({(end - start) / timedelta(days=1):.2f} days, ~{n / ((end - start) / WINDOW):.0f} rows "
          "per 5-minute window), 36 callers (24 OAuth principals, 6 SAS, 3 account-key, 1 delegation-SAS, "
          "2 failing anonymous probes); incident windows add 60 bulk SAS reads from 203.0.113.77")
    print_table("Seeding the emulator's LogStore (not part of a scan)", ["", "s", "rows/s"], [
        ["making the row dicts (this process)", f"{seed['making']:.2f}", f"{n / seed['making']:,.0f}"],
        ["seed calls, incl. pickling through the pipe", f"{seed['sending']:.2f}", f"{n / seed['sending']:,.0f}"],
        ["  of which LogStore.seed in the emulator", f"{seed['storing']:.2f}", f"{n / seed['storing']:,.0f}"],
    ])

    rows = []
    for name, label in (("baseline", "egress_baseline, 7-day lookback"), ("window", "egress_window, one 5-min window")):
        runs = report["queries"][name]
        total, http = [r[0] for r in runs], [r[1] for r in runs]
        engine = report["engine"][name]
        rows.append([label, ms(median(total)), ms(min(total)), ms(median(http)), ms(median(engine)),
                     ms(median(total) - median(http)), f"{report['answered'][name]}",
                     f"{runs[0][2]}"])
    print_table(f"The queries through the app's LogsQueryClient over HTTPS (log_analytics.run; {args.repeat} each, "
                "alternating, after one warm-up)",
                ["", "median ms", "min ms", "HTTP ms", "engine ms", "client Python ms", "rows", "HTTP calls"], rows)
    print("HTTP = request sent to body read at the SDK's transport (includes the emulator's work); engine = the "
          "same request body answered by LogStore.query inside the emulator process, no HTTP (duckdb-kql "
          "translation + DuckDB + JSON shaping); client Python = median total - median HTTP")

    rows = []
    first_elapsed, first_calls = report["first"]
    entries = [("first scan (ledger table + queue made; incident)", [first_elapsed], [first_calls])]
    for (kind, baseline), runs in sorted(report["scans"].items(), key=lambda item: (item[0][0] != "quiet", item[0])):
        what = "quiet window" if kind == "quiet" else "window with an incident: claim + enqueue"
        how = ("baseline and watch queried (the first scan of an hour)" if baseline == "queried"
               else "baseline and watch reused (the hour's other scans)")
        entries.append((f"{what}, {how}", [e for e, _ in runs], [c for _, c in runs]))
    for label, elapsed, calls in entries:
        la = median([sum(c.seconds for c in made if classify(c) == "Log Analytics") for made in calls])
        other = median([sum(c.seconds for c in made if classify(c) != "Log Analytics") for made in calls])
        counts = {}
        for made in calls:
            for c in made:
                counts[classify(c)] = counts.get(classify(c), 0) + 1
        described = ", ".join(f"{k} {v / len(calls):.0f}" for k, v in sorted(counts.items()))
        rest = median([t - sum(c.seconds for c in made) for t, made in zip(elapsed, calls)])
        rows.append([label, str(len(elapsed)), ms(median(elapsed)), ms(min(elapsed)), ms(la), ms(other), ms(rest),
                     described])
    print_table("One full run_egress_scan (timer via fire_timer), one window due, enforce mode",
                ["", "scans", "median ms", "min ms", "Log Analytics ms", "other HTTP ms", "rest ms",
                 "HTTP calls/scan"], rows)
    print("HTTP columns: medians of each scan's summed call times at the SDKs' transport; rest = the scan's "
          "Python outside HTTP calls (the app, the SDK pipelines, the call counting), median over scans")
    print(f"each measured scan's clock = its window end + the {LAG.seconds // 60}-minute lag; the checkpoint is "
          "checked to have moved one window; the incident scans' containment requests are queued, not drained "
          "(contain is bench/one_event.py's subject)")
    print(f"traced peak of one scan (incident window, separate pass): {mib(report['scan_peak'] / 1024)} MiB")
    print_table("Peak resident memory (ru_maxrss)", ["", "MiB"], [
        ["bench process after part 2 (app, SDKs, row making)", mib(report["bench_rss"])],
        ["emulator process (ARM + LogStore/DuckDB, HTTPS server)", mib(report["emulator_rss"])],
    ])


def clock_text(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000, help="aggregate rows in part 1's window answer")
    parser.add_argument("--accounts", type=int, default=50, help="protected accounts in part 1")
    parser.add_argument("--pure-repeat", type=int, default=3, help="runs of part 1's stages")
    parser.add_argument("--raw", type=int, default=150_000, help="raw StorageBlobLogs rows seeded in part 2")
    parser.add_argument("--repeat", type=int, default=5, help="runs of each query; quiet and incident scans each")
    parser.add_argument("--chunk", type=int, default=25_000, help="rows per seed call in part 2")
    args = parser.parse_args()
    began = time.monotonic()

    # Part 2 first, so that its process peak is not part 1's 100k-row answer.
    report = part_two(args)
    between = time.monotonic()
    part_one(args)
    phases = f"part 2 {between - began:.0f} s, part 1 {time.monotonic() - between:.0f} s"
    print_part_two(args, report)
    print(f"\nbench process peak resident memory after part 1 as well: {mib(max_rss_kib())} MiB (includes making "
          f"part 1's inputs and holding them: the answer's text, its row lists, {args.rows:,} baseline dicts)")
    print_machine()
    print(f"\n(ran in {time.monotonic() - began:.0f} s: {phases})")


if __name__ == "__main__":
    main()
