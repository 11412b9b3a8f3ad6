"""An event storm through the whole app, in enforce mode, against the ARM emulator and Azurite.

    .venv/bin/python bench/storm.py [--resources N] [--deliveries N] [--singles N] [--drain-every N]

The storm (bench/_harness.storm): N distinct resources, the four families in turn --
storage accounts open to anonymous access, public blob containers, Storage Blob Data
Reader granted to an unknown principal, NSGs that allow the internet in -- every fifth one
compliant instead, and about ten Event Grid deliveries per resource: distinct events of one
to three copies each (Event Grid redelivers), shuffled (out of order). Each delivery goes to
the functions its subscription admits (localazure.functions_host.deliver_event); the
containment queue is drained into `contain` every --drain-every deliveries, as the queue
function runs beside the Event Grid functions; one worker, no concurrency.

What it checks, and fails (exit 1) on: every distinct event has exactly one decision record,
every offending resource exactly one ARM write (a write ARM carried out) and every compliant
one none, and every offending resource ends contained.

Then, on the same stack and warm clients, the same number of single-event runs (one fresh
public container each, delivered and drained on its own, as bench/one_event.py does), so
the storm's time can be compared with handling its resources one event at a time.

The default is the issue's storm: 10,000 deliveries over 1,000 resources, about four
minutes on the 2-core build machine (two and a half for the storm, one for the single
runs). A smaller --resources runs 10 deliveries per resource and extrapolates the measured
rate to the issue's size.
"""
from __future__ import annotations

import argparse
import os
import time
from collections import Counter

from _harness import (STORM_SETTINGS, Stack, apply_settings, container_event, median, ms, p95, print_machine,
                      print_table, public_containers, run_storm, storm, synthetic_account)

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
    from containment.adapters import runtime
    from localazure.functions_host import deliver_event, drain_queue

    the_storm = storm(resources, deliveries, seed=args.seed)
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

    with Stack() as stack:
        apply_settings({**stack.app_settings("storm", mode="enforce"), **STORM_SETTINGS})
        account = synthetic_account("benchsingles01")
        warm = public_containers(account, "warm", 3)
        single = public_containers(account, "one", singles)
        stack.emulator.seed([account, *warm, *single, *the_storm.resources])
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
        rss_before = vm_hwm_kib()

        writes: list[tuple[str, str, int]] = []

        def drain():
            invocations = drain_queue(app, "contain", current.queue, current.max_attempts)
            writes.extend(stack.emulator.applied_writes())
            stack.emulator.clear_traffic()  # the emulator keeps every exchange otherwise: ARM does not
            return invocations

        started = time.perf_counter()
        run = run_storm(the_storm.deliveries, lambda event: deliver_event(app, event), drain,
                        drain_every=args.drain_every)
        storm_seconds = time.perf_counter() - started
        throttled = stack.emulator.throttled()
        stack.emulator.throttle(False)  # the single-event runs below measure the app, not ARM's buckets
        rss_storm = vm_hwm_kib()

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
        rss_end = vm_hwm_kib()
        emulator_rss = stack.emulator.max_rss()
        azurite_rss = vm_hwm_kib(stack.azurite.process.pid)

    distinct = len(the_storm.events)
    single_total = sum(single_times)
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
