"""What the benchmarks share: the local Azure stack, app settings, test resources, HTTP call
accounting, statistics and printing.

Standard library only at import time; the app, the SDKs and the emulator are imported
where they are used.
"""
from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:  # `python bench/x.py` puts bench/, not the repository, on the path
    sys.path.insert(0, str(REPO))


# -- the machine -------------------------------------------------------------------------
def machine() -> list[tuple[str, str]]:
    return [("platform", platform.platform()),
            ("cpus", f"{os.cpu_count()} x {_cpu_model()}"),
            ("python", f"{platform.python_implementation()} {platform.python_version()}")]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def max_rss_kib() -> int:
    """This process's peak resident memory so far, KiB (Linux reports ru_maxrss in KiB)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


# -- statistics and printing -----------------------------------------------------------------
def median(values) -> float:
    return statistics.median(values)


def p95(values) -> float:
    """Nearest-rank 95th percentile: a value that was actually observed."""
    ordered = sorted(values)
    return ordered[max(0, math.ceil(0.95 * len(ordered)) - 1)]


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.1f}"


def mib(kib: float) -> str:
    return f"{kib / 1024:.1f}"


def ratio(numerator: float, denominator: float) -> str:
    return f"{numerator / denominator:.1f}x" if denominator else "n/a"


def print_table(title: str, headers: list[str], rows: list[list[str]]) -> None:
    """A plain table; first column left-aligned, the figures right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(headers, *rows)]

    def line(cells) -> str:
        return "  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    print(f"\n{title}")
    print(line(headers))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))


def print_machine() -> None:
    print("\nMachine")
    for name, value in machine():
        print(f"{name:<9} {value}")


# -- the local Azure stack -------------------------------------------------------------------
def _emulator_main(conn) -> None:
    """The ARM + Log Analytics emulator, in its own process (see EmulatorProcess)."""
    from localazure.server import LocalAzure

    with LocalAzure() as azure:
        conn.send(azure.settings())
        while True:
            op, args = conn.recv()
            if op == "stop":
                break
            try:
                if op == "seed":
                    result = azure.seed(args)
                elif op == "clear_traffic":
                    result = azure.clear_traffic()
                elif op == "applied_writes":  # method, path, status of each write ARM carried out
                    result = list(azure.applied_writes)
                elif op == "traffic":  # method, path, status of each captured exchange
                    result = [(x.method, urlsplit(x.url).path, x.status) for x in list(azure.traffic)]
                elif op == "get":
                    result = azure.arm.get(args)
                elif op == "seed_logs":  # {table: rows}: the seconds LogStore.seed took, in here
                    started = time.perf_counter()
                    azure.seed(logs=args)
                    result = time.perf_counter() - started
                elif op == "logs_query":  # a query request body, answered by the LogStore itself
                    started = time.perf_counter()
                    status, body = azure.logs.query(args, now=azure.clock())
                    elapsed = time.perf_counter() - started
                    result = (elapsed, status, len(body["tables"][0]["rows"]) if status == 200 else body)
                elif op == "throttle":  # on: ARM's documented token buckets; off: none
                    from localazure.throttling import Throttling

                    azure.arm.throttling = Throttling() if args else None
                    result = None
                elif op == "throttled":  # the 429s the buckets answered
                    result = azure.arm.throttling.throttled if azure.arm.throttling else 0
                elif op == "max_rss":
                    result = max_rss_kib()
                else:
                    result = ValueError(f"unknown emulator request {op!r}")
            except Exception as error:  # noqa: BLE001 - handed back to the caller and raised there
                result = RuntimeError(f"emulator {op}: {error!r}")
            conn.send(result)
    conn.send(None)  # stopped, its temporary directory removed
    # Skip interpreter finalization: duckdb's bindings (nanobind) print dozens of "leaked
    # instance" lines there when the emulator ran in a spawned process; nothing is left to flush.
    os._exit(0)


class EmulatorProcess:
    """localazure.server.LocalAzure run in a child process, driven over a pipe.

    Not in the benchmark's own process, as the tests run it: there its request handling
    would share the app's interpreter (GIL, and tracemalloc's view of the app's memory).
    Real ARM is another machine; another process is the nearer stand-in.
    """

    def __init__(self) -> None:
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # no inherited threads or sockets
        self._conn, child = context.Pipe()
        self._process = context.Process(target=_emulator_main, args=(child,), name="localazure",
                                        daemon=True)
        self._process.start()
        self.settings: dict[str, str] = self._conn.recv()
        self.port = urlsplit(self.settings["LOCAL_AZURE_ENDPOINT"]).port

    def _call(self, op: str, args=None):
        self._conn.send((op, args))
        result = self._conn.recv()
        if isinstance(result, Exception):
            raise result
        return result

    def seed(self, resources: list[dict]) -> None:
        self._call("seed", list(resources))

    def clear_traffic(self) -> None:
        self._call("clear_traffic")

    def traffic(self) -> list[tuple[str, str, int]]:
        return self._call("traffic")

    def applied_writes(self) -> list[tuple[str, str, int]]:
        return self._call("applied_writes")

    def get(self, resource_id: str) -> dict | None:
        return self._call("get", resource_id)

    def seed_logs(self, logs: dict[str, list[dict]]) -> float:
        """Append Log Analytics rows; the seconds the emulator's LogStore.seed took (the
        rows' trip through the pipe is not in it)."""
        return self._call("seed_logs", logs)

    def logs_query(self, body: dict) -> tuple[float, int, object]:
        """A query request body answered by the emulator's LogStore directly, no HTTP:
        (seconds, status, row count or the error body)."""
        return self._call("logs_query", body)

    def throttle(self, on: bool) -> None:
        self._call("throttle", on)

    def throttled(self) -> int:
        return self._call("throttled")

    def max_rss(self) -> int:
        """The emulator process's peak resident memory so far, KiB."""
        return self._call("max_rss")

    def stop(self) -> None:
        if self._process.is_alive():
            try:
                self._call("stop")
            except (EOFError, OSError):
                pass
            self._process.join(timeout=10)
            if self._process.is_alive():
                self._process.terminate()
                self._process.join()


class Stack:
    """The ARM emulator and Azurite, started together and stopped together."""

    def __enter__(self) -> "Stack":
        from localazure.azurite import Azurite

        self.emulator = EmulatorProcess()
        try:
            self.azurite = Azurite().start()
        except BaseException:
            self.emulator.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        try:
            self.azurite.stop()
        finally:
            self.emulator.stop()

    def app_settings(self, name: str, mode: str = "enforce") -> dict[str, str]:
        """The app's settings, as tests/conftest.py's AppUnderTest sets them: this stack, a
        ledger table and containment queue of the benchmark's own."""
        from tests.helpers.arm_bodies import SUBSCRIPTION

        return {**self.emulator.settings, "AzureWebJobsStorage": self.azurite.connection_string,
                "CONTAINMENT_LEDGER_TABLE": "bench" + name, "CONTAINMENT_QUEUE": "bench-" + name,
                "CONTAINMENT_MODE": mode, "CONTAINMENT_SUBSCRIPTIONS": SUBSCRIPTION}

    def services(self) -> dict[int, str]:
        """Which service answers on which loopback port."""
        return {self.emulator.port: "arm", **{port: name for name, port in self.azurite.ports.items()}}


def apply_settings(settings: dict[str, str]) -> None:
    """Make `settings` the app's whole configuration in this process, and forget the
    runtime built from the previous one (as AppUnderTest.configure does)."""
    from containment.adapters import runtime
    from containment.core.settings import SETTINGS

    for setting in SETTINGS:
        os.environ.pop(setting.name, None)
    os.environ.update(settings)
    runtime.reset()


# -- resources the benchmarks judge ------------------------------------------------------------
def synthetic_account(name: str = "benchsynth01") -> dict:
    """A storage account tagged as synthetic data (in scope), private itself."""
    from tests.helpers.arm_bodies import storage_account

    return storage_account(name)


def public_containers(account: dict, prefix: str, count: int) -> list[dict]:
    """`count` fresh containers open to anonymous reads: each one event's worth of work."""
    from tests.helpers.arm_bodies import container

    return [container(account["id"], f"{prefix}{index:03d}", "Container") for index in range(count)]


def container_event(container: dict, actor: str | None = None) -> dict:
    """The Event Grid event ARM sends when someone (`actor`: an object ID) writes the container
    (a fresh event ID), timed now: nothing the app read before it shows it."""
    from tests.helpers.events import ANALYST, CONTAINER_WRITE, happened_now, write_event

    return happened_now(write_event(container["id"], CONTAINER_WRITE, actor=actor or ANALYST))


# -- HTTP call accounting --------------------------------------------------------------------
@dataclass(frozen=True)
class Call:
    origin: str   # the app function that made it (storage_exposure, contain), "host" or "bench"
    service: str  # arm, topic, table, queue
    method: str
    path: str
    seconds: float
    entity: str = ""  # for Table calls: the ledger entity's kind, from its PartitionKey
    started: float = 0.0  # perf_counter when it was sent: calls that overlap were issued together
    status: int | None = None  # the answer's HTTP status; None when none came (a dropped connection)

    def describe(self) -> str:
        """What the call did, without the names that differ per event."""
        parts = [unquote(p) for p in self.path.strip("/").split("/")]
        if self.service == "arm":
            what = parts[-2] if len(parts) >= 2 else self.path  # the type segment: storageAccounts, containers
        elif self.service == "table":
            what = "create table" if parts[-1] == "Tables" else (self.entity or "entity")
        elif self.service == "topic":
            what = "notification"
        else:
            what = "message" if len(parts) >= 4 else (parts[-1] if parts[-1] == "messages" else "queue")
        return f"{self.service} {self.method} {what}"


# The ledger's entity kinds by PartitionKey prefix (containment/adapters/ledger.py's table).
_LEDGER_KINDS = {"resource": "decision", "day": "by-day index", "claim": "claim", "bare": "record",
                 "budget": "blast-radius budget", "exemption": "exemptions"}


def _ledger_entity(path: str, body) -> str:
    """The kind of ledger entity a Table call is about: from the key in the URL
    (`table(PartitionKey='claim ...',RowKey='...')`), else from the inserted body."""
    key = ""
    path = unquote(path)
    if "PartitionKey='" in path:
        key = path.split("PartitionKey='", 1)[1]
    elif body:
        try:
            key = json.loads(body).get("PartitionKey", "")
        except (ValueError, AttributeError, TypeError):
            key = ""
    return _LEDGER_KINDS.get(key.split(" ", 1)[0], "") if key else ""


class HttpCalls:
    """Counts every HTTP request this process's Azure SDK clients send, times it, and notes
    who sent it.

    A pass-through wrapper around azure-core's RequestsTransport.send, the one place every
    SDK call goes through (the clients' default transport): the request still goes out and
    its answer comes back unchanged. The time includes reading the response body, which
    azure-core does inside send (requests' own HTTPAdapter.send returns before it). It is the
    only way to see the app's Table and Queue calls, which the ARM emulator's traffic list
    does not hold (they go to Azurite).
    """

    def __init__(self, services: dict[int, str]) -> None:
        self.services = services
        self.calls: list[Call] = []
        self._original = None
        self._lock = threading.Lock()

    def __enter__(self) -> "HttpCalls":
        from azure.core.pipeline.transport import RequestsTransport

        original = self._original = RequestsTransport.send
        counter = self

        def send(transport, request, *args, **kwargs):
            started, response = time.perf_counter(), None
            try:
                response = original(transport, request, *args, **kwargs)
                return response
            finally:
                counter._note(request, started, time.perf_counter() - started, getattr(response, "status_code", None))

        RequestsTransport.send = send
        return self

    def __exit__(self, *exc) -> None:
        from azure.core.pipeline.transport import RequestsTransport

        RequestsTransport.send = self._original

    def take(self) -> list[Call]:
        """The calls since the last take."""
        calls, self.calls = self.calls, []
        return calls

    def _note(self, request, started: float, seconds: float, status: int | None = None) -> None:
        url = urlsplit(request.url)
        service = self.services.get(url.port, f"port {url.port}")
        if service == "arm" and url.path.startswith("/api/events"):
            service = "topic"  # the emulator also stands in for the notifications' Event Grid topic
        content = getattr(request, "content", None)
        entity = (_ledger_entity(url.path, content) if service == "table"
                  else _query_name(content) if url.path.lower().startswith("/v1/workspaces/") else "")
        with self._lock:  # the app issues some calls together, from its thread pool
            self.calls.append(Call(_origin(), service, request.method, url.path, seconds, entity, started, status))


def _query_name(content) -> str:
    """Which shipped query (containment/adapters/queries/*.kql) a Log Analytics request
    carries: the one whose last line of KQL its query holds (the app sets only `let` values)."""
    try:
        query = json.loads(content)["query"]
    except (TypeError, ValueError, KeyError):
        return ""
    return next((name for name, last in _QUERY_ENDINGS.items() if last in query), "")


def _last_line(path: Path) -> str:
    return [line for line in path.read_text().splitlines() if line.strip() and not line.strip().startswith("//")][-1]


_QUERY_ENDINGS = {path.stem: _last_line(path).strip()
                  for path in sorted((REPO / "containment" / "adapters" / "queries").glob("*.kql"))}


_FUNCTION_APP = str(REPO / "function_app.py")
_FUNCTIONS_HOST = str(REPO / "localazure" / "functions_host.py")


def _origin() -> str:
    """The app function on the stack (its entry point in function_app.py), else the local
    Functions host, else the benchmark itself. A call from the app's thread pool
    (containment.adapters.runtime.together) is the function's the main thread is running."""
    frame, host = sys._getframe(2), False
    if threading.current_thread() is not threading.main_thread():
        frame = sys._current_frames().get(threading.main_thread().ident)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename == _FUNCTION_APP:
            return frame.f_code.co_name
        host = host or filename == _FUNCTIONS_HOST
        frame = frame.f_back
    return "host" if host else "bench"


# -- the storm: many resources of every family, many events about each, out of order ----------
# bench/storm.py runs it at scale; tests/test_reliability.py runs small ones under faults.
STORM_FAMILIES = ("account", "container", "role", "nsg")
STORM_SETTINGS = {
    "CONTAINMENT_MODE": "enforce",
    "CONTAINMENT_ALLOWED_CIDRS": "10.20.0.0/16",  # the compliant NSG rules admit only this
    "CONTAINMENT_MAX_ACTIONS_PER_HOUR": "1000000",  # the storm measures containment, not the limit
}
_STRANGER = "6f1e2d3c-4b5a-4978-8a6b-5c4d3e2f1a0b"  # a principal on no allowlist
_READER = "acdd72a7-3385-48ef-bd42-f606fba81ae7"  # Reader: no path to blob data
_PER_HOST = 50  # containers (or role assignments) per supporting storage account


@dataclass
class StormUnit:
    """One distinct resource the storm's events are about."""

    family: str  # account, container, role, nsg
    resource_id: str  # what the events name (for an NSG, the NSG itself)
    offending: bool  # exposed when the storm starts: exactly one containment write expected

    def owns_write(self, path: str) -> bool:
        """Whether an ARM write to `path` (no query) is containment of this unit (an NSG's
        containment writes one of its rules)."""
        key, path = self.resource_id.lower(), "/" + path.lower().lstrip("/")
        return path == key or (self.family == "nsg" and path.startswith(key + "/securityrules/"))


@dataclass
class Storm:
    resources: list[dict]  # ARM bodies to seed
    units: list[StormUnit]
    events: list[dict]  # the distinct events, in the order they happened
    deliveries: list[dict]  # what Event Grid delivers: each event 1 to 3 times, shuffled


def storm(resources: int, deliveries: int | None = None, *, seed: int = 9, compliant_every: int = 5,
          prefix: str = "") -> Storm:
    """`resources` distinct resources, the four families in turn (every `compliant_every`-th
    one compliant, the rest exposed), and `deliveries` Event Grid deliveries about them
    (default 10 per resource): distinct events of one to three copies each, spread round the
    resources, shuffled. Deterministic for a seed."""
    import random
    import uuid

    from tests.helpers import arm_bodies as b
    from tests.helpers.events import ACCOUNT_WRITE, CONTAINER_WRITE, write_event

    rng = random.Random(seed)
    deliveries = 10 * resources if deliveries is None else deliveries
    bodies: list[dict] = []
    units: list[StormUnit] = []
    hosts: dict[tuple[str, int], dict] = {}

    def host(kind: str, number: int) -> dict:
        if (kind, number) not in hosts:
            account = b.storage_account(f"st{prefix}{kind}{number:04d}"[:24])  # tagged, private
            hosts[kind, number] = account
            bodies.append(account)
        return hosts[kind, number]

    for index in range(resources):
        family = STORM_FAMILIES[index % len(STORM_FAMILIES)]
        offending = compliant_every <= 0 or index % compliant_every != compliant_every - 1
        if family == "account":
            body = b.storage_account(f"st{prefix}acct{index:05d}"[:24], allowBlobPublicAccess=offending)
        elif family == "container":
            body = b.container(host("c", index // _PER_HOST)["id"], f"c{index:05d}",
                               "Container" if offending else "None")
        elif family == "role":
            scope = host("r", index // _PER_HOST)["id"]
            body = b.role_assignment(scope, _STRANGER, b.STORAGE_BLOB_DATA_READER if offending else _READER,
                                     name=str(uuid.UUID(int=rng.getrandbits(128), version=4)))
        else:
            rule = b.security_rule("allow-any", 300, source="Internet" if offending else "10.20.0.0/16", port="*")
            body = b.nsg(f"nsg-{prefix}storm-{index:05d}", [rule])
        bodies.append(body)
        units.append(StormUnit(family, body["id"], offending))

    operations = {"account": ACCOUNT_WRITE, "container": CONTAINER_WRITE,
                  "role": "Microsoft.Authorization/roleAssignments/write",
                  "nsg": "Microsoft.Network/networkSecurityGroups/write"}
    events: list[dict] = []
    delivered: list[dict] = []
    while len(delivered) < deliveries:
        unit = units[len(events) % len(units)]
        second = len(events)  # event times move on: a later event is a later write
        event = write_event(unit.resource_id, operations[unit.family],
                            event_id=str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                            time=f"2026-11-24T{10 + second // 3600 % 12:02d}:{second // 60 % 60:02d}:"
                                 f"{second % 60:02d}.0000000Z")
        events.append(event)
        copies = min(rng.randint(1, 3), deliveries - len(delivered))
        delivered += [event] * copies
    rng.shuffle(delivered)
    return Storm(bodies, units, events, delivered)


@dataclass
class StormRun:
    """What the host saw while the storm ran."""

    deliveries: int = 0  # Event Grid deliveries made, retries included
    failed_deliveries: int = 0  # invocations that raised (Event Grid delivers those again)
    contain_invocations: int = 0
    failed_contain_invocations: int = 0  # raised (the queue delivers those again, then poisons)
    undelivered: int = 0  # events whose every delivery failed (Event Grid would dead-letter them)


def run_storm(deliveries: list[dict], deliver, drain, *, drain_every: int = 25, max_attempts: int = 30,
              before_delivery=None) -> StormRun:
    """Deliver the storm as Event Grid and the Functions host would: each delivery to the
    functions it subscribes to; the containment queue drained every `drain_every` deliveries
    (the queue function runs beside the Event Grid functions); a delivery whose invocation
    raised is delivered again later (Event Grid retries), at most `max_attempts` times.

    deliver(event) -> [Invocation]; drain() -> [Invocation]; before_delivery(n) is called
    before the n-th delivery (0-based), for a test to break something mid-run."""
    run = StormRun()
    pending = [(event, 1) for event in deliveries]
    since_drain = 0

    def drained() -> None:
        invocations = drain()
        run.contain_invocations += len(invocations)
        run.failed_contain_invocations += sum(1 for i in invocations if i.error)

    while pending:
        retry = []
        for event, attempt in pending:
            if before_delivery is not None:
                before_delivery(run.deliveries)
            run.deliveries += 1
            invocations = deliver(event)
            if any(i.error for i in invocations):
                run.failed_deliveries += 1
                if attempt < max_attempts:
                    retry.append((event, attempt + 1))
                else:
                    run.undelivered += 1
            since_drain += 1
            if since_drain >= drain_every:
                drained()
                since_drain = 0
        drained()
        since_drain = 0
        pending = retry
    return run
