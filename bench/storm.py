"""An event storm through the whole app, in enforce mode, against the ARM emulator and Azurite.

    .venv/bin/python bench/storm.py [--resources N] [--deliveries N] [--singles N] [--drain-every N]

The storm (bench/_harness.storm): N distinct resources, the four families in turn --
storage accounts open to anonymous access, public blob containers, Storage Blob Data
Reader granted to an unknown principal, NSGs that allow the internet in -- every fifth one
compliant instead, and about ten Event Grid deliveries per resource: distinct events of one
to three copies each (Event Grid redelivers), shuffled (out of order). Each delivery goes to
the functions its subscription admits (localazure.functions_host.deliver_event); the
containment queue is drained into `contain` every --drain-every deliveries, as the queue
function runs beside the Event Grid functions; one worker, no concurrency. ARM's token
buckets are on (localazure/throttling.py), as in Azure.

What it checks, and fails (exit 1) on: every distinct event has exactly one decision record,
every offending resource exactly one ARM write (a write ARM carried out) and every compliant
one none, and every offending resource ends contained.

What it reports beside the wall time: the ARM reads the Event Grid functions sent per
distinct resource they read (the issue's target: at most 1.2) and the containment worker's
per write, the 429s received, and the storm's time in Azure's terms: a model, the least time
ARM's documented budgets (and the Storage provider's) allow for the requests it sent.

Then, on the same stack and warm clients: a bare SDK path doing the same work a second copy
of the storm needs (one GET per distinct resource, the containment write per offending one,
one Table insert per distinct event, with the app's own clients, under fresh buckets), and
the same number of single-event runs (one fresh public container each, delivered and
drained on its own, as bench/one_event.py does).

The default is the issue's storm: 10,000 deliveries over 1,000 resources. A smaller
--resources runs 10 deliveries per resource and extrapolates the measured rate to the
issue's size.
"""
from __future__ import annotations

import argparse
import os
import time
from collections import Counter, defaultdict
from contextlib import contextmanager
from typing import Iterator

from _harness import (STORM_SETTINGS, HttpCalls, Stack, apply_settings, container_event, median, ms, p95,
                      print_machine, print_table, public_containers, run_storm, storm, synthetic_account)

FULL = (1000, 10000)  # resources, deliveries: the storm


def vm_hwm_kib(pid: int | str = "self") -> int:
    """Peak resident memory of a process, KiB (Linux VmHWM)."""
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmHWM:"))


def key_of_write(path: str, units: dict[str, object]) -> str | None:
    """The storm resource an ARM write belongs to (an NSG's containment writes one of its rules)."""
    key = "/" + path.lower().lstrip("/")
    if key in units:
        return key
    if "/securityrules/" in key:
        nsg = key.split("/securityrules/", 1)[0]
        return nsg if nsg in units else None
    return None


# -- what the app asked of ARM, and what that costs in Azure ---------------------------------------
# ARM's buckets per subscription: burst, refill a second
# (https://learn.microsoft.com/azure/azure-resource-manager/management/request-limits-and-throttling).
ARM_BUDGETS = {"reads": (250, 25.0), "writes": (200, 10.0), "deletes": (200, 10.0)}
# The Storage provider's, per subscription and region: 800 reads and 100 lists per 5 minutes,
# 10 writes a second and 1,200 an hour
# (https://learn.microsoft.com/azure/storage/common/scalability-targets-resource-provider),
# modelled as buckets of that size refilling over their window. Whether a container's GET or
# list counts as a "storage account management operation" read or list is unverified: here a
# GET of one Storage resource is a read and a GET of a collection a list.
STORAGE_BUDGETS = {"reads": [(800, 800 / 300)], "lists": [(100, 100 / 300)],
                   "writes": [(10, 10.0), (1200, 1200 / 3600)]}
_POLLS = ("/operations/", "/operationresults/")  # long-running operations' status reads


def is_collection(path: str) -> bool:
    """Whether a GET is a list: after the last provider namespace, types and names alternate,
    so an odd number of segments ends on a type."""
    lower = path.lower().rstrip("/")
    if "/providers/" not in lower:
        return True  # /subscriptions: the tenant's list
    after = lower.rsplit("/providers/", 1)[1].split("/")[1:]
    return len(after) % 2 == 1


def beyond(count: int, burst: float, refill: float) -> float:
    """Seconds a bucket of `burst` tokens refilling `refill` a second needs to let `count` through."""
    return max(0, count - burst) / refill


class ArmCount:
    """The app's ARM requests as its clients sent them (bench/_harness.HttpCalls: every attempt,
    retries included), by who sent them: the Event Grid functions ("detection"), `contain`, or
    the benchmark itself (the bare path)."""

    def __init__(self) -> None:
        self.reads: dict[str, Counter] = defaultdict(Counter)  # origin -> path -> reads ARM answered
        self.throttled: Counter = Counter()  # origin -> 429s received
        self.arm: dict[str, Counter] = defaultdict(Counter)  # subscription -> kind -> requests ARM answered
        self.storage: dict[str, Counter] = defaultdict(Counter)  # the same, of the Storage provider

    def add(self, calls) -> None:
        for call in calls:
            if call.service != "arm" or call.status is None:
                continue
            origin = call.origin if call.origin in ("contain", "bench", "host") else "detection"
            if call.status == 429:
                self.throttled[origin] += 1
                continue
            path = call.path.lower()
            subscription = path.split("/")[2] if path.startswith("/subscriptions/") else "(tenant)"
            method = call.method.upper()
            kind = "reads" if method == "GET" else "deletes" if method == "DELETE" else "writes"
            self.arm[subscription][kind] += 1
            if "/providers/microsoft.storage/" in path:
                self.storage[subscription]["lists" if kind == "reads" and is_collection(path) else
                                           "reads" if kind == "reads" else "writes"] += 1
            if kind == "reads" and not any(poll in path for poll in _POLLS):
                self.reads[origin][path] += 1

    def per_distinct(self, origin: str) -> tuple[int, int]:
        """(reads ARM answered, distinct resources and collections they read)."""
        return sum(self.reads[origin].values()), len(self.reads[origin])

    def azure_seconds(self) -> tuple[float, str]:
        """The least time ARM's and the Storage provider's budgets allow for these requests,
        the slowest subscription's, and which budget binds."""
        bounds = [(0.0, "none: within every burst")]
        for subscription, kinds in self.arm.items():
            bounds += [(beyond(kinds[kind], *ARM_BUDGETS[kind]), f"ARM {kind} ({kinds[kind]:,})") for kind in ARM_BUDGETS]
            storage = self.storage[subscription]
            bounds += [(beyond(storage[kind], *budget), f"Storage provider {kind} ({storage[kind]:,})")
                       for kind, budgets in STORAGE_BUDGETS.items() for budget in budgets]
        return max(bounds)


@contextmanager
def waits_noted(into: list[float]) -> Iterator[None]:
    """The seconds each re-read or list waited for ARM's read reserve (containment.adapters.arm_limits)."""
    from containment.adapters.arm_limits import LIMITS

    sleep = LIMITS.sleep
    LIMITS.sleep = lambda seconds: (into.append(seconds), sleep(seconds))
    try:
        yield
    finally:
        LIMITS.sleep = sleep


def bare_path(clients, table, the_storm) -> float:
    """The storm's work with nothing of the app around it: one GET per distinct resource, the
    containment write per offending one (what the app writes: the container or account
    property, the assignment deleted, the open rule set to Deny), one Table insert per distinct
    event; the app's clients. Seconds."""
    from containment.core.ids import parse_resource_id

    started = time.perf_counter()
    for unit in the_storm.units:
        target = parse_resource_id(unit.resource_id)
        group, name = target.resource_group, target.name
        if unit.family == "account":
            accounts = clients.storage(target.subscription).storage_accounts
            accounts.get_properties(group, name)
            if unit.offending:
                accounts.update(group, name, {"properties": {"allowBlobPublicAccess": False}})
        elif unit.family == "container":
            containers = clients.storage(target.subscription).blob_containers
            containers.get(group, target.names[0], name)
            if unit.offending:
                containers.update(group, target.names[0], name, {"properties": {"publicAccess": "None"}})
        elif unit.family == "role":
            assignments = clients.authorization(target.subscription).role_assignments
            assignments.get_by_id(unit.resource_id)
            if unit.offending:
                assignments.delete_by_id(unit.resource_id)
        else:
            network = clients.network(target.subscription)
            nsg = network.network_security_groups.get(group, name)
            if unit.offending:
                rule = next(rule for rule in nsg.security_rules if rule.name == "allow-any")
                rule.access = "Deny"
                network.security_rules.begin_create_or_update(group, name, rule.name, rule).result()
    for event in the_storm.events:
        table.create_entity({"PartitionKey": "bare", "RowKey": event["id"], "resource": event["subject"]})
    return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resources", type=int, default=FULL[0], help=f"distinct resources (default {FULL[0]:,})")
    parser.add_argument("--deliveries", type=int, default=None, help="Event Grid deliveries (default 10 per resource)")
    parser.add_argument("--singles", type=int, default=None, help="single-event runs to compare with "
                        "(default: one per storm resource)")
    parser.add_argument("--drain-every", type=int, default=25, help="deliveries between queue drains (default 25)")
    parser.add_argument("--seed", type=int, default=9)
    parser.add_argument("--no-arm-throttling", action="store_true",
                        help="without ARM's token buckets (localazure/throttling.py), which the storm runs under "
                             "by default: ARM's read bucket then bounds the storm as in Azure")
    args = parser.parse_args()
    resources, deliveries = args.resources, args.deliveries or 10 * args.resources
    singles = resources if args.singles is None else args.singles
    began = time.monotonic()

    import function_app
    from containment.adapters import arm_limits, runtime
    from localazure.functions_host import deliver_event, drain_queue

    the_storm = storm(resources, deliveries, seed=args.seed)
    twin = storm(resources, deliveries, seed=args.seed, prefix="b")  # the bare path's own copy
    copies = Counter(Counter(e["id"] for e in the_storm.deliveries).values())
    units = {unit.resource_id.lower(): unit for unit in the_storm.units}
    print(f"Storm: {len(the_storm.deliveries)} deliveries of {len(the_storm.events)} distinct events about "
          f"{resources} resources ({', '.join(f'{n} {f}s' for f, n in Counter(u.family for u in the_storm.units).items())}; "
          f"{sum(u.offending for u in the_storm.units)} exposed, {sum(not u.offending for u in the_storm.units)} "
          f"compliant); copies per event: {', '.join(f'{k}x {v}' for k, v in sorted(copies.items()))}; "
          f"shuffled (seed {args.seed}); queue drained every {args.drain_every} deliveries")
    if (resources, deliveries) != FULL:
        print(f"(the issue's storm is {FULL[1]:,} deliveries over {FULL[0]:,} resources, the default; this run is "
              f"{deliveries / FULL[1]:.0%} of it, extrapolated below)")

    with Stack() as stack, HttpCalls(stack.services()) as http:
        apply_settings({**stack.app_settings("storm", mode="enforce"), **STORM_SETTINGS})
        account = synthetic_account("benchsingles01")
        warm = public_containers(account, "warm", 3)
        single = public_containers(account, "one", singles)
        stack.emulator.seed([account, *warm, *single, *the_storm.resources, *twin.resources])
        app, current = function_app.app, runtime.current()

        def one(container: dict) -> float:
            started = time.perf_counter()
            failed = [i for i in deliver_event(app, container_event(container)) if i.error]
            failed += [i for i in drain_queue(app, "contain", current.queue, current.max_attempts) if i.error]
            elapsed = time.perf_counter() - started
            if failed:
                raise RuntimeError(f"single event on {container['name']} failed: {failed}")
            return elapsed

        for container in warm:  # first invocations (imports, clients, connections): cold_start.py's subject
            one(container)
        stack.emulator.clear_traffic()
        stack.emulator.throttle(not args.no_arm_throttling)
        http.take()
        rss_before = vm_hwm_kib()

        writes: list[tuple[str, str, int]] = []
        count = ArmCount()

        def deliver(event):
            return deliver_event(app, event)

        def drain():
            invocations = drain_queue(app, "contain", current.queue, current.max_attempts)
            writes.extend(stack.emulator.applied_writes())
            stack.emulator.clear_traffic()  # the emulator keeps every exchange otherwise: ARM does not
            count.add(http.take())  # so does the call count
            return invocations

        waited: list[float] = []
        started = time.perf_counter()
        with waits_noted(waited):
            run = run_storm(the_storm.deliveries, deliver, drain, drain_every=args.drain_every)
        storm_seconds = time.perf_counter() - started
        throttled = stack.emulator.throttled()
        rss_storm = vm_hwm_kib()

        # The bare path under fresh buckets, as the storm began (and the app's note of them forgotten).
        stack.emulator.throttle(not args.no_arm_throttling)
        arm_limits.LIMITS.forget()
        table = current.clients.table_service().create_table_if_not_exists("benchbare")
        http.take()
        bare_waited: list[float] = []
        with waits_noted(bare_waited):
            bare_seconds = bare_path(current.clients, table, twin)
        bare = ArmCount()
        bare.add(http.take())
        bare_throttled = stack.emulator.throttled()
        stack.emulator.throttle(False)  # the single-event runs below measure the app, not ARM's buckets
        stack.emulator.clear_traffic()

        ids = {e["id"] for e in the_storm.events}
        records = [r for r in current.ledger.decisions() if r.event_id in ids]  # not the warm-up's
        per_event = Counter(r.event_id for r in records)
        per_unit = Counter(key_of_write(path, units) for _, path, _ in writes)
        stray = per_unit.pop(None, 0)
        exposed = [k for k, u in units.items() if u.offending]
        compliant = [k for k, u in units.items() if not u.offending]
        write_counts = Counter(per_unit.get(k, 0) for k in exposed)
        still_exposed = [k for k in exposed if not _contained(stack.emulator.get(units[k].resource_id), units[k])]
        record_counts = Counter(per_event.get(e["id"], 0) for e in the_storm.events)
        outcomes = Counter(r.outcome for r in records)

        # The singles get a ledger of their own (a fresh runtime, warmed up again): the blast-radius
        # budget entity lives in the ledger and overflows a table property past about 1,700
        # actions an hour (see the report), which the storm and the singles together would reach.
        apply_settings({**stack.app_settings("stormsingles", mode="enforce"), **STORM_SETTINGS})
        current = runtime.current()
        for container in public_containers(account, "rewarm", 3):
            stack.emulator.seed([container])
            one(container)
        single_times = [one(container) for container in single]
        http.take()
        rss_end = vm_hwm_kib()
        emulator_rss = stack.emulator.max_rss()
        azurite_rss = vm_hwm_kib(stack.azurite.process.pid)

    distinct = len(the_storm.events)
    single_total = sum(single_times)
    detection_reads, detection_read = count.per_distinct("detection")
    contain_reads, _ = count.per_distinct("contain")
    azure_seconds, bound = count.azure_seconds()
    bare_azure, bare_bound = bare.azure_seconds()
    print_table("Storm, enforce mode, one worker", ["", "value"], [
        ["ARM throttling", "off" if args.no_arm_throttling else
         f"ARM's token buckets (reads 250 + 25/s, writes 200 + 10/s): {throttled} requests answered 429"],
        ["wall time", f"{storm_seconds:.1f} s"],
        ["deliveries (Event Grid retries included)", f"{run.deliveries}"],
        ["deliveries per second", f"{run.deliveries / storm_seconds:.1f}"],
        ["distinct events per second", f"{distinct / storm_seconds:.1f}"],
        ["ms per delivery", ms(storm_seconds / run.deliveries)],
        ["failed invocations (Event Grid, queue)", f"{run.failed_deliveries}, {run.failed_contain_invocations}"],
        ["contain invocations", f"{run.contain_invocations}"],
        ["decision records", f"{len(records)} ({', '.join(f'{v} {k}' for k, v in outcomes.most_common())})"],
    ])
    ok = (set(record_counts) == {1} and set(write_counts) == {1} and not any(per_unit.get(k) for k in compliant)
          and not stray and not still_exposed)
    print_table("Invariants (must all hold)", ["", "found", "must be"], [
        ["ledger records per distinct event", _spread(record_counts), "exactly 1"],
        ["ARM writes per offending resource", _spread(write_counts), "exactly 1"],
        ["ARM writes to compliant resources", f"{sum(per_unit.get(k, 0) for k in compliant)}", "0"],
        ["ARM writes to anything else", f"{stray}", "0"],
        ["offending resources still exposed", f"{len(still_exposed)}", "0"],
        ["records lost", f"{sum(1 for e in the_storm.events if e['id'] not in per_event)}", "0"],
    ])
    print_table("ARM, as the app asked it (every request its clients sent, retries included)", ["", "value"], [
        ["reads by the Event Grid functions / distinct resources (and lists) they read",
         f"{detection_reads:,} / {detection_read:,} = {detection_reads / max(1, detection_read):.2f} (target <= 1.2)"],
        ["reads by the Event Grid functions per storm resource",
         f"{detection_reads / resources:.2f} ({resources} resources; their accounts, role definitions, listings too)"],
        ["reads by `contain` per ARM write it made", f"{contain_reads:,} / {len(writes):,} = "
                                                      f"{contain_reads / max(1, len(writes)):.2f}"],
        ["re-reads and lists that waited for the read reserve, and how long in all",
         f"{len(waited)}, {sum(waited):.1f} s (reads left below {arm_limits.RESERVE}; the worker's reads never wait "
         "once it marks them)"],
        ["429s received (Event Grid functions, contain)",
         f"{count.throttled['detection']}, {count.throttled['contain']} (ARM answered {throttled})"],
        ["ARM requests answered, per subscription", "; ".join(
            f"{sub[:8]}: {', '.join(f'{n:,} {k}' for k, n in sorted(kinds.items()))}" for sub, kinds in count.arm.items())],
        ["the storm's time in Azure's terms (a model: the least time ARM's and the Storage provider's "
         "documented budgets allow for these requests)", f"{azure_seconds:.1f} s, bound by {bound}"],
        ["the storm's local wall time (the emulator's buckets: ARM's, not the Storage provider's)",
         f"{storm_seconds:.1f} s"],
    ])
    print_table("The storm against a bare SDK path doing the same reads and writes (its own copy of the storm, "
                "fresh buckets, the app's clients)", ["", "storm (the app)", "bare SDK path"], [
        ["wall time", f"{storm_seconds:.1f} s", f"{bare_seconds:.1f} s"],
        ["distinct events per second", f"{distinct / storm_seconds:.1f}", f"{distinct / bare_seconds:.1f}"],
        ["deliveries per second", f"{run.deliveries / storm_seconds:.1f}", f"{run.deliveries / bare_seconds:.1f}"],
        ["ARM reads answered", f"{sum(k['reads'] for k in count.arm.values()):,}",
         f"{sum(k['reads'] for k in bare.arm.values()):,}"],
        ["429s received", f"{sum(count.throttled.values())}", f"{sum(bare.throttled.values())} (ARM answered "
                                                                f"{bare_throttled})"],
        ["reads that waited for the reserve (seconds in all)", f"{len(waited)} ({sum(waited):.1f} s)",
         f"{len(bare_waited)} ({sum(bare_waited):.1f} s)"],
        ["time in Azure's terms (the model above)", f"{azure_seconds:.1f} s", f"{bare_azure:.1f} s ({bare_bound})"],
        ["the storm's time / the bare path's", f"{storm_seconds / bare_seconds:.2f}x", ""],
    ])
    print_table(f"The storm against {singles} single-event runs (one fresh public container each, same stack)",
                ["", "value"], [
        ["single event: median, p95", f"{ms(median(single_times))} ms, {ms(p95(single_times))} ms"],
        [f"{singles} single events, one after another", f"{single_total:.1f} s"],
        [f"storm ({resources} resources, {run.deliveries} deliveries)", f"{storm_seconds:.1f} s"],
        ["storm / single-event runs, same number of resources",
         f"{storm_seconds / (median(single_times) * resources):.1f}x"],
        ["storm time per delivery / single event", f"{storm_seconds / run.deliveries / median(single_times):.2f}"],
        ["storm time per distinct event / single event", f"{storm_seconds / distinct / median(single_times):.2f}"],
    ])
    print("(single events all contain; most storm deliveries are redeliveries or later events about a resource "
          "already contained, which cost a ledger lookup or a re-read and no write)")
    print_table("Peak resident memory (VmHWM)", ["", "MiB"], [
        ["benchmark process (app + local host), before the storm", f"{rss_before / 1024:.1f}"],
        ["benchmark process, after the storm", f"{rss_storm / 1024:.1f}"],
        ["benchmark process, at the end (all records read back to check them, the single runs)",
         f"{rss_end / 1024:.1f}"],
        ["ARM emulator process (traffic cleared every drain)", f"{emulator_rss / 1024:.1f}"],
        ["Azurite (node, in memory: the whole ledger and queue)", f"{azurite_rss / 1024:.1f}"],
    ])
    if (resources, deliveries) != FULL:
        per_delivery = storm_seconds / run.deliveries
        print(f"\nExtrapolation to the issue's storm ({FULL[1]:,} deliveries, {FULL[0]:,} resources) at the measured "
              f"{per_delivery * 1000:.1f} ms per delivery: about {per_delivery * FULL[1] / 60:.1f} minutes "
              f"(linear: the ledger and the emulator answer by key, so the cost per delivery should not grow "
              f"with the estate; run without --resources to measure it)")
    print_machine()
    print(f"\n(ran in {time.monotonic() - began:.0f} s, pid {os.getpid()})")
    if not ok:
        print("\nINVARIANT VIOLATED: see the table above")
    return 0 if ok else 1


def _contained(body: dict | None, unit) -> bool:
    if unit.family == "role":
        return body is None
    properties = (body or {}).get("properties") or {}
    if unit.family == "account":
        return properties.get("allowBlobPublicAccess") is False
    if unit.family == "container":
        return properties.get("publicAccess") == "None"
    rules = {r["name"]: r["properties"] for r in properties.get("securityRules", [])}
    deny = rules.get("deny-untrusted-allow-any")
    return rules["allow-any"]["access"] == "Deny" or (deny is not None and deny["access"] == "Deny")


def _spread(counts: Counter) -> str:
    """'min..max (n values)' of a Counter of per-item counts."""
    if not counts:
        return "none"
    low, high = min(counts), max(counts)
    total = sum(counts.values())
    return f"{low}" + (f"..{high}" if high != low else "") + f" (over {total})"


if __name__ == "__main__":
    raise SystemExit(main())
