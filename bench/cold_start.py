"""Cold start: what a fresh Functions instance pays before it decides anything.

    .venv/bin/python bench/cold_start.py [--imports N] [--invocations M]

1. Import cost, each in a fresh interpreter, N times: nothing (the interpreter's floor),
   `import function_app` (the app's cold start; it imports the SDKs lazily), and the nine
   Azure SDKs imported eagerly (what the cold start would be without that).
2. The first invocation of each function in a fresh process, M times, against a running
   ARM emulator and Azurite: storage_exposure on one Event Grid event, then contain on the
   queue message it wrote. Time from process start to the decision (request queued,
   record written), split into interpreter start, loading the app and the first
   invocation (lazy SDK imports, client construction, first connections), and a second,
   warm invocation in the same process for comparison.

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
import time
from pathlib import Path

from _harness import (REPO, Stack, container_event, mib, median, ms, print_machine, print_table,
                      public_containers, ratio, synthetic_account)

CHILD = Path(__file__).with_name("_cold_child.py")
IMPORTS = {"bare": "bare interpreter (floor)", "app": "import function_app", "sdks": "import the nine SDKs"}


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
def child_env(settings: dict[str, str]) -> dict[str, str]:
    """This process's environment with the app's settings, and no stray ones of our own."""
    from containment.settings import SETTINGS

    env = {name: value for name, value in os.environ.items() if name not in {s.name for s in SETTINGS}}
    return {**env, **settings}


def prepare_storage(stack: Stack, settings: dict[str, str]):
    """The ledger table and the queue exist before the first instance starts, as in Azure
    (infra/ creates them); return the queue, read here as the Functions host reads it."""
    from azure.core.exceptions import ResourceExistsError
    from azure.data.tables import TableServiceClient
    from azure.storage.queue import QueueClient

    connection = stack.azurite.connection_string
    table = TableServiceClient.from_connection_string(connection).create_table_if_not_exists(
        settings["CONTAINMENT_LEDGER_TABLE"])
    queue = QueueClient.from_connection_string(connection, settings["CONTAINMENT_QUEUE"])
    try:
        queue.create_queue()
    except ResourceExistsError:
        pass
    return table, queue


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
    from containment.ledger import Ledger

    results: dict[str, list[dict]] = {"storage_exposure": [], "contain": []}
    warmup = 1  # discarded: compiles the containment package's .pyc files
    with Stack() as stack:
        settings = stack.app_settings("cold")
        env = child_env(settings)
        table, queue = prepare_storage(stack, settings)
        account = synthetic_account()
        containers = public_containers(account, "cold", 2 * (warmup + rounds))
        stack.emulator.seed([account, *containers])
        for index in range(warmup + rounds):
            pair = containers[2 * index: 2 * index + 2]
            events = [container_event(c) for c in pair]
            detect = run_child("invoke", {"function": "storage_exposure", "first": events[0], "second": events[1]},
                               env)
            messages = take_messages(queue, 2)
            contain = run_child("invoke", {"function": "contain", "first": as_trigger(messages[0]),
                                           "second": as_trigger(messages[1])}, env)
            for message in messages:  # the invocations succeeded: the host deletes the messages
                queue.delete_message(message)
            # The figures count only if the work was done: both containers private, both recorded.
            for container, event in zip(pair, events):
                record = Ledger(table).find(container["id"], event["id"])
                access = stack.emulator.get(container["id"])["properties"]["publicAccess"]
                if record is None or record.outcome != "contained" or access != "None":
                    raise RuntimeError(f"{container['id']} was not contained and recorded "
                                       f"(record {record and record.outcome}, publicAccess {access})")
            if index >= warmup:
                results["storage_exposure"].append(detect)
                results["contain"].append(contain)
    return results


def report_invocations(results: dict[str, list[dict]]) -> dict[str, dict[str, float]]:
    rows, summary = [], {}
    decision = {"storage_exposure": "request queued", "contain": "record written"}
    for function, runs in results.items():
        startup = [r["startup"] for r in runs]
        load = [r["loaded"] - r["began"] for r in runs]
        first = [r["first"] - r["loaded"] for r in runs]
        total = [r["first"] - r["spawned"] for r in runs]
        warm = [r["second"] - r["first"] for r in runs]
        peak = [r["peak_after_first_kib"] for r in runs]
        summary[function] = {"load": median(load), "first": median(first), "total": median(total),
                             "warm": median(warm), "peak": median(peak)}
        rows.append([f"{function} ({decision[function]})", ms(median(startup)), ms(median(load)),
                     ms(median(first)), f"{ms(median(total))} / {ms(min(total))}", ms(median(warm)),
                     ratio(median(first), median(warm)), mib(median(peak))])
    print_table(f"First invocation in a fresh process ({len(results['contain'])} runs each, medians)",
                ["function", "interpreter ms", "load app ms", "1st invocation ms", "start->decision ms (med/min)",
                 "warm 2nd ms", "1st/warm", "peak RSS MiB"], rows)
    print("load app = import function_app + index its functions (as the worker does); 1st invocation includes "
          "the lazy SDK imports, settings, client construction and first connections")
    for function, runs in results.items():
        print(f"SDKs loaded by {function}'s first invocation: {', '.join(runs[0]['sdks_loaded'])}")
    return summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--imports", type=int, default=10, help="fresh processes per import variant")
    parser.add_argument("--invocations", type=int, default=5, help="fresh processes per function")
    args = parser.parse_args()

    began = time.monotonic()
    imports = report_imports(measure_imports(args.imports))
    invocations = report_invocations(measure_invocations(args.invocations))

    rows = [["import function_app", ms(imports["app"]), mib(imports["app_rss"])],
            ["import the nine SDKs eagerly", ms(imports["sdks"]), mib(imports["sdks_rss"])],
            ["  ratio eager / function_app", ratio(imports["sdks"], imports["app"]),
             ratio(imports["sdks_rss"], imports["app_rss"])]]
    for function, figures in invocations.items():
        rows.append([f"{function}: start -> decision", ms(figures["total"]), mib(figures["peak"] - imports["floor"])])
        rows.append(["  1st invocation / warm", ratio(figures["first"], figures["warm"]), ""])
    print_table("Summary (medians; memory is peak RSS above a bare interpreter)", ["", "ms / ratio", "MiB / ratio"],
                rows)
    print_machine()
    print(f"\n(ran in {time.monotonic() - began:.0f} s)")


if __name__ == "__main__":
    main()
