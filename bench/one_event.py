"""One event, end to end, in enforce mode, against the ARM emulator and Azurite.

    .venv/bin/python bench/one_event.py [--events N] [--memory M]

The app: an Event Grid event that made a blob container public is delivered to
storage_exposure (localazure.functions_host.deliver_event), and the containment queue is
drained into contain (drain_queue): event -> decision -> contained -> recorded. Each event
is about a fresh public container in an account of its own, made public by someone of its
own, timed now: an incident of its own, nothing of it read before.

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

from _harness import (HttpCalls, Stack, apply_settings, container_event, median, ms, p95, print_machine, print_table,
                      public_containers, ratio, synthetic_account)

WARMUP = 3


class Bench:
    def __init__(self, stack: Stack, account: dict, http: HttpCalls):
        import function_app
        from containment.adapters import runtime
        from tests.helpers.arm_bodies import SUBSCRIPTION

        self.stack, self.app, self.account, self.http = stack, function_app.app, account, http
        self.runtime = runtime.current()  # the one the functions use: built once per process
        # The bare path uses the app's own clients: same connection pools, same configuration.
        self.storage = self.runtime.clients.storage(SUBSCRIPTION)
        self.table = self.runtime.ledger.table

    def app_event(self, container: dict) -> tuple[float, list]:
        """The app handles one event: the seconds it took and its HTTP calls, once checked
        that it did the work."""
        from localazure.functions_host import deliver_event, drain_queue

        event = container_event(container, actor=str(uuid.uuid4()))  # nobody's second exposure
        self.http.take()
        started = time.perf_counter()
        handled = deliver_event(self.app, event)
        handled += drain_queue(self.app, "contain", self.runtime.queue, self.runtime.max_attempts)
        elapsed = time.perf_counter() - started
        calls = self.http.take()
        failed = [f"{i.function}: {i.error!r}" for i in handled if i.error]
        record = self.runtime.ledger.find(container["id"], event["id"])
        if failed or record is None or record.outcome != "contained" or not self._private(container):
            raise RuntimeError(f"the app did not contain {container['name']}: {failed or record}")
        return elapsed, calls

    def bare_event(self, container: dict) -> tuple[float, list]:
        """The same work as bare SDK calls: GET, PATCH, one insert."""
        group, account, name = container["id"].split("/")[4], self.account["name"], container["name"]
        self.http.take()
        started = time.perf_counter()
        before = self.storage.blob_containers.get(group, account, name).as_dict()
        after = self.storage.blob_containers.update(group, account, name, {"properties": {"publicAccess": "None"}})
        self.table.create_entity({"PartitionKey": "bare " + container["id"].lower().replace("/", "|"),
                                  "RowKey": str(uuid.uuid4()), "outcome": "contained",
                                  "before": json.dumps(before), "after": json.dumps(after.as_dict())})
        elapsed = time.perf_counter() - started
        calls = self.http.take()
        if not self._private(container):
            raise RuntimeError(f"the bare path did not make {name} private")
        return elapsed, calls

    def _private(self, container: dict) -> bool:
        return self.stack.emulator.get(container["id"])["properties"]["publicAccess"] == "None"


def traced_peak(run, container: dict) -> int:
    """Bytes allocated by Python at the peak of one run, above what was live before it
    (the ARM emulator is in another process, so none of them are its)."""
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

    with Stack() as stack, HttpCalls(stack.services()) as http:
        # The limit (20 an hour by default) would hold the 21st event for approval: this
        # measures containment, not the limit (its cost, two Table calls, is still paid).
        apply_settings({**stack.app_settings("oneevent", mode="enforce"), "CONTAINMENT_MAX_ACTIONS_PER_HOUR": "1000000"})
        count = WARMUP + args.events + args.memory
        # Each event is an exposure of its own: a public container in an account of its own, made
        # public by someone of its own (a container of an account, or by a person, an earlier
        # event exposed would join that incident, which was notified already).
        accounts = [synthetic_account(f"benchapp{index:04d}") for index in range(count)]
        app_containers = [public_containers(account, "app", 1)[0] for account in accounts]
        account = synthetic_account()
        bare_containers = public_containers(account, "bare", count)
        stack.emulator.seed([*accounts, *app_containers, account, *bare_containers])
        bench = Bench(stack, account, http)

        timings: dict[str, list[float]] = {"app": [], "bare": []}
        calls: dict[str, list[list]] = {"app": [], "bare": []}  # each event's HTTP calls
        arm_traffic: dict[str, list[int]] = {"app": [], "bare": []}  # ARM calls, as the emulator saw them
        for index in range(WARMUP + args.events):
            # Alternate which path goes first, so that neither always follows the other.
            for path in (("app", "bare") if index % 2 == 0 else ("bare", "app")):
                stack.emulator.clear_traffic()
                run = bench.app_event if path == "app" else bench.bare_event
                elapsed, made = run((app_containers if path == "app" else bare_containers)[index])
                if index >= WARMUP:
                    timings[path].append(elapsed)
                    calls[path].append(made)
                    arm_traffic[path].append(len(stack.emulator.traffic()))

        tracemalloc.start()
        peaks: dict[str, list[int]] = {"app": [], "bare": []}
        for index in range(WARMUP + args.events, count):
            peaks["app"].append(traced_peak(bench.app_event, app_containers[index]))
            peaks["bare"].append(traced_peak(bench.bare_event, bare_containers[index]))
        tracemalloc.stop()

    report(timings, calls, arm_traffic, peaks)
    print_machine()
    print(f"\n(ran in {time.monotonic() - began:.0f} s)")


def report(timings, calls, arm_traffic, peaks) -> None:
    app, bare = timings["app"], timings["bare"]
    n_app = median([sum(c.origin != "host" for c in made) for made in calls["app"]])
    n_host = median([sum(c.origin == "host" for c in made) for made in calls["app"]])
    n_bare = median([len(made) for made in calls["bare"]])
    arm_app, arm_bare = median(arm_traffic["app"]), median(arm_traffic["bare"])
    peak_app, peak_bare = median(peaks["app"]) / 1024, median(peaks["bare"]) / 1024

    print_table(f"One event end to end, enforce mode ({len(app)} events per path, alternating)",
                ["", "median ms", "p95 ms", "min ms", "ARM calls", "all HTTP calls", "traced peak KiB"],
                [["app: deliver_event + drain_queue", ms(median(app)), ms(p95(app)), ms(min(app)), f"{arm_app:.0f}",
                  f"{n_app:.0f} (+{n_host:.0f} host)", f"{peak_app:.0f}"],
                 ["bare: GET + PATCH + 1 insert", ms(median(bare)), ms(p95(bare)), ms(min(bare)), f"{arm_bare:.0f}",
                  f"{n_bare:.0f}", f"{peak_bare:.0f}"],
                 ["ratio app / bare", ratio(median(app), median(bare)), ratio(p95(app), p95(bare)),
                  ratio(min(app), min(bare)), ratio(arm_app, arm_bare), ratio(n_app, n_bare),
                  ratio(peak_app, peak_bare)]])
    print("per event; ARM calls = the emulator's traffic list; all HTTP calls = ARM + Table + Queue + the notification, counted at "
          "the SDKs' transport; host = the local Functions host's own queue calls (receive, delete), not the "
          f"app's; traced peak = tracemalloc peak above live memory, median of {len(peaks['app'])} events")

    # Where the time goes, per service: the HTTP round trips (request sent to body read), and
    # the rest, which is Python: the app, the SDK pipelines above the transport, the local
    # host, and the call counting itself (a stack walk per call).
    rows = []
    for label, runs, elapsed in (("app", calls["app"], app), ("bare", calls["bare"], bare)):
        groups = [("ARM", lambda c: c.origin != "host" and c.service == "arm"),
                  ("Table", lambda c: c.origin != "host" and c.service == "table"),
                  ("Queue", lambda c: c.origin != "host" and c.service == "queue"),
                  ("notification (Event Grid topic)", lambda c: c.origin != "host" and c.service == "topic"),
                  ("Queue, host's", lambda c: c.origin == "host")]
        for name, belongs in groups:
            per_call = [c.seconds for made in runs for c in made if belongs(c)]
            if per_call:
                total = median([sum(c.seconds for c in made if belongs(c)) for made in runs])
                rows.append([f"{label}: {name} calls", f"{len(per_call) / len(runs):.0f}", ms(median(per_call)),
                             ms(total), f"{total / median(elapsed):.0%}"])
        rest = median([t - sum(c.seconds for c in made) for made, t in zip(runs, elapsed)])
        rows.append([f"{label}: Python outside HTTP calls", "", "", ms(rest), f"{rest / median(elapsed):.0%}"])
    print_table("Where one event's time goes (medians)", ["", "calls/event", "ms/call", "ms/event", "share"], rows)

    # Round trips before the containment write: the app's calls before the write, calls that
    # overlap in time counted once (issued together), detection's and the worker's apart; the
    # queue hop (the host's receive) between them is the platform's.
    trips = [round_trips(made) for made in calls["app"]]
    detection, worker = median([t[0] for t in trips]), median([t[1] for t in trips])
    print(f"\nRound trips before the containment write (median): {detection:.0f} in the Event Grid function + "
          f"{worker:.0f} in contain = {detection + worker:.0f}, and the queue hop between them; "
          f"{median([t[2] for t in trips]):.0f} of the app's calls come before the write")

    # What the calls are: the same for every event, else say so.
    shapes = Counter(tuple((c.origin, c.describe(), wave) for c, wave in waves(made)) for made in calls["app"])
    sequence, times = shapes.most_common(1)[0]
    print(f"\nHTTP calls while the app handles one event, in order ({times} of {len(calls['app'])} events "
          "made exactly these; the round trip each is in, calls issued together sharing one)")
    for number, (origin, what, wave) in enumerate(sequence, 1):
        print(f"{number:>3}  {wave:>3}  {origin:<17} {what}")


def waves(made: list) -> list[tuple]:
    """Each call with the round trip it belongs to, by origin: calls whose times overlap went
    out together and are one round trip."""
    numbered, last_end, count, origin = [], None, 0, None
    for call in sorted(made, key=lambda c: c.started):
        if call.origin != origin:
            origin, last_end, count = call.origin, None, 0
        if last_end is None or call.started >= last_end:
            count += 1
            last_end = call.started + call.seconds
        else:
            last_end = max(last_end, call.started + call.seconds)
        numbered.append((call, count))
    return numbered


def round_trips(made: list) -> tuple[int, int, int]:
    """(round trips in detection, in the worker, the app's calls) the containment write waited
    for: those that ended before it was sent (one sent beside it, as the claim's mark that the
    budget is spent, is not waited for)."""
    write = min((c.started for c in made if c.origin == "contain" and c.service == "arm"
                 and c.method in ("PATCH", "PUT", "POST", "DELETE")), default=None)
    before = [(c, wave) for c, wave in waves(made)
              if c.origin != "host" and (write is None or c.started + c.seconds <= write)]
    detection = max((wave for c, wave in before if c.origin != "contain"), default=0)
    worker = max((wave for c, wave in before if c.origin == "contain"), default=0)
    return detection, worker, len(before)


if __name__ == "__main__":
    main()
