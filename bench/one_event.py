"""One event, end to end, in enforce mode, against the ARM emulator and Azurite.

    .venv/bin/python bench/one_event.py [--events N] [--memory M]

The app: an Event Grid event that made a blob container public is delivered to
storage_exposure (localazure.functions_host.deliver_event), and the containment queue is
drained into contain (drain_queue): event -> decision -> contained -> recorded. Each event
is about a fresh public container.

The bare path: the least the same work needs, with the app's own clients -- the
container's GET, the PATCH that makes it private, one Table insert of the record.

The two alternate, event by event, on the same stack and the same warm clients, so the
ratio holds even when the machine is noisy. The first invocations are left out (a few
discarded warm-up events): bench/cold_start.py measures those. Memory is measured in a
separate pass, as tracemalloc slows Python down.
"""
from __future__ import annotations

import argparse
import json
import time
import tracemalloc
import uuid
from collections import Counter

from _harness import (HttpCalls, Stack, apply_settings, container_event, median, ms, p95, print_machine,
                      print_table, public_containers, ratio, synthetic_account)

WARMUP = 3


class Bench:
    def __init__(self, stack: Stack, account: dict):
        import function_app
        from containment import runtime
        from tests.arm_bodies import SUBSCRIPTION

        self.stack, self.app, self.account = stack, function_app.app, account
        self.runtime = runtime.current()  # the one the functions use: built once per process
        # The bare path uses the app's own clients: same connection pools, same configuration.
        self.storage = self.runtime.clients.storage(SUBSCRIPTION)
        self.table = self.runtime.ledger.table

    def app_event(self, container: dict) -> float:
        """The app handles one event; the seconds it took, once checked that it did the work."""
        from localazure.functions_host import deliver_event, drain_queue

        event = container_event(container)
        started = time.perf_counter()
        handled = deliver_event(self.app, event)
        handled += drain_queue(self.app, "contain", self.runtime.queue, self.runtime.max_attempts)
        elapsed = time.perf_counter() - started
        failed = [f"{i.function}: {i.error!r}" for i in handled if i.error]
        record = self.runtime.ledger.find(container["id"], event["id"])
        if failed or record is None or record.outcome != "contained" or not self._private(container):
            raise RuntimeError(f"the app did not contain {container['name']}: {failed or record}")
        return elapsed

    def bare_event(self, container: dict) -> float:
        """The same work as bare SDK calls: GET, PATCH, one insert."""
        group, account, name = container["id"].split("/")[4], self.account["name"], container["name"]
        started = time.perf_counter()
        before = self.storage.blob_containers.get(group, account, name).as_dict()
        after = self.storage.blob_containers.update(group, account, name, {"properties": {"publicAccess": "None"}})
        self.table.create_entity({"PartitionKey": "bare " + container["id"].lower().replace("/", "|"),
                                  "RowKey": str(uuid.uuid4()), "outcome": "contained",
                                  "before": json.dumps(before), "after": json.dumps(after.as_dict())})
        elapsed = time.perf_counter() - started
        if not self._private(container):
            raise RuntimeError(f"the bare path did not make {name} private")
        return elapsed

    def _private(self, container: dict) -> bool:
        return self.stack.emulator.get(container["id"])["properties"]["publicAccess"] == "None"


def traced_peak(run, container: dict) -> int:
    """Bytes allocated by Python at the peak of one run, above what was live before it."""
    tracemalloc.reset_peak()
    live = tracemalloc.get_traced_memory()[0]
    run(container)
    return tracemalloc.get_traced_memory()[1] - live


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=50, help="measured events per path")
    parser.add_argument("--memory", type=int, default=5, help="events per path in the tracemalloc pass")
    args = parser.parse_args()
    began = time.monotonic()

    with Stack() as stack:
        apply_settings(stack.app_settings("oneevent", mode="enforce"))
        account = synthetic_account()
        count = WARMUP + args.events + args.memory
        app_containers = public_containers(account, "app", count)
        bare_containers = public_containers(account, "bare", count)
        stack.emulator.seed([account, *app_containers, *bare_containers])
        bench = Bench(stack, account)

        with HttpCalls(stack.services()) as http:
            timings: dict[str, list[float]] = {"app": [], "bare": []}
            per_event: list[list] = []  # the app's HTTP calls, event by event
            arm_traffic: list[int] = []  # ARM exchanges per app event, as the emulator saw them
            bare_calls: list[int] = []
            for index in range(WARMUP + args.events):
                measured = index >= WARMUP
                # Alternate which path goes first, so neither always follows the other.
                for path in (("app", "bare") if index % 2 == 0 else ("bare", "app")):
                    stack.emulator.clear_traffic()
                    http.take()
                    if path == "app":
                        elapsed = bench.app_event(app_containers[index])
                        calls = http.take()
                        if measured:
                            per_event.append(calls)
                            arm_traffic.append(len(stack.emulator.traffic()))
                    else:
                        elapsed = bench.bare_event(bare_containers[index])
                        calls = http.take()
                        if measured:
                            bare_calls.append(len(calls))
                    if measured:
                        timings[path].append(elapsed)

            http.take()
            tracemalloc.start()
            peaks: dict[str, list[int]] = {"app": [], "bare": []}
            for index in range(WARMUP + args.events, count):
                peaks["app"].append(traced_peak(bench.app_event, app_containers[index]))
                peaks["bare"].append(traced_peak(bench.bare_event, bare_containers[index]))
            tracemalloc.stop()

    report(timings, per_event, arm_traffic, bare_calls, peaks)
    print_machine()
    print(f"\n(ran in {time.monotonic() - began:.0f} s)")


def report(timings, per_event, arm_traffic, bare_calls, peaks) -> None:
    app, bare = timings["app"], timings["bare"]
    app_calls = [[c for c in calls if c.origin != "host"] for calls in per_event]
    host_calls = [[c for c in calls if c.origin == "host"] for calls in per_event]
    n_app = median([len(c) for c in app_calls])
    n_host = median([len(c) for c in host_calls])
    n_bare = median(bare_calls)
    peak_app, peak_bare = median(peaks["app"]) / 1024, median(peaks["bare"]) / 1024

    print_table(f"One event end to end, enforce mode ({len(app)} events per path, alternating)",
                ["", "median ms", "p95 ms", "min ms", "HTTP calls/event", "traced peak KiB"],
                [["app: deliver_event + drain_queue", ms(median(app)), ms(p95(app)), ms(min(app)),
                  f"{n_app:.0f} (+{n_host:.0f} host)", f"{peak_app:.0f}"],
                 ["bare: GET + PATCH + 1 insert", ms(median(bare)), ms(p95(bare)), ms(min(bare)),
                  f"{n_bare:.0f}", f"{peak_bare:.0f}"],
                 ["ratio app / bare", ratio(median(app), median(bare)), ratio(p95(app), p95(bare)),
                  ratio(min(app), min(bare)), ratio(n_app, n_bare), ratio(peak_app, peak_bare)]])
    print("host = the local Functions host's own queue calls (receive, delete), which the app does not make; "
          f"traced peak = tracemalloc, median of {len(peaks['app'])} events")

    # Where the app's time goes: waiting on each service, and everything else (Python).
    waits = {key: [] for key in ("arm", "table", "queue", "host", "python")}
    for calls, elapsed in zip(per_event, app):
        for service in ("arm", "table", "queue"):
            waits[service].append(sum(c.seconds for c in calls if c.origin != "host" and c.service == service))
        waits["host"].append(sum(c.seconds for c in calls if c.origin == "host"))
        waits["python"].append(elapsed - sum(c.seconds for c in calls))
    print_table("Where one app event's time goes (medians)", ["", "ms", "share"],
                [[label, ms(median(waits[key])), f"{median(waits[key]) / median(app):.0%}"] for key, label in
                 (("arm", "waiting on ARM (app)"), ("table", "waiting on Table storage (app)"),
                  ("queue", "waiting on the queue (app)"), ("host", "waiting on the queue (host)"),
                  ("python", "in-process Python, everything else"))])

    # What the calls are: the same for every event, else say so.
    shapes = Counter(tuple((c.origin, c.describe()) for c in calls) for calls in per_event)
    sequence, times = shapes.most_common(1)[0]
    print(f"\nHTTP calls of one app event, in order ({times} of {len(per_event)} events had exactly these; "
          f"the ARM emulator's traffic counted {min(arm_traffic)}-{max(arm_traffic)} ARM calls per event)")
    for number, (origin, what) in enumerate(sequence, 1):
        print(f"{number:>3}  {origin:<17} {what}")
    by_origin = Counter(origin for origin, _ in sequence)
    by_service = Counter(what.split()[0] for origin, what in sequence if origin != "host")
    print("per function: " + ", ".join(f"{origin} {n}" for origin, n in by_origin.items())
          + " | app calls per service: " + ", ".join(f"{service} {n}" for service, n in by_service.items()))


if __name__ == "__main__":
    main()
