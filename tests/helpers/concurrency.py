"""Work started at the same moment on threads, as instances of the app (or worker threads of
one process) run it: the races the ledger's conditional writes must settle."""
from __future__ import annotations

import threading
from typing import Any, Callable


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call on a thread of its own, all released together; their results in order.
    The first exception any of them raised is raised here, once all have ended."""
    ready = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)
    errors: list[BaseException] = []

    def run(index: int, call: Callable[[], Any]) -> None:
        ready.wait()
        try:
            results[index] = call()
        except BaseException as error:  # noqa: BLE001 - raised in the test's thread below
            errors.append(error)

    threads = [threading.Thread(target=run, args=(index, call)) for index, call in enumerate(calls)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]
    return results
