"""What every function needs, built once per process on first use: validated settings,
Azure clients, the ledger and the containment queue."""
from __future__ import annotations

import contextvars
import json
import os
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from pathlib import Path
from typing import Any, Callable

from containment.adapters.clients import AzureClients
from containment.adapters.ledger import Ledger
from containment.core.settings import Settings, load_settings
from containment.plan.registry import VOCABULARY

HOST_JSON = Path(__file__).resolve().parents[2] / "host.json"


class Runtime:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.clients = AzureClients(settings)
        # The egress scan's baseline answer and the hour it is for (containment.detect.egress_scan).
        self.egress_baseline: tuple | None = None
        # The protected accounts and when their logs last arrived, and the hour that is for (the same).
        self.egress_watch: tuple | None = None

    @cached_property
    def ledger(self) -> Ledger:
        settings = self.settings
        return Ledger.open(self.clients.table_service(), settings.ledger_table,
                           self.clients.blob_container(settings.evidence_container), settings.chain_table,
                           self.clients.blob_container(settings.digest_container))

    @cached_property
    def queue(self):
        from azure.storage.queue import TextBase64EncodePolicy

        from containment.adapters.clients import Recreating

        # The Functions host reads queue messages as base64 by default (messageEncoding).
        queue = Recreating(self.clients.queue(self.settings.containment_queue,
                                              message_encode_policy=TextBase64EncodePolicy()),
                           lost="QueueNotFound", create="create_queue")
        queue.recreate()
        return queue

    @cached_property
    def max_attempts(self) -> int:
        """How often the host delivers a containment request before it is poison: host.json's
        extensions.queues.maxDequeueCount, or its app-setting override."""
        override = os.environ.get("AzureFunctionsJobHost__extensions__queues__maxDequeueCount")
        if override:
            return int(override)
        host = json.loads(HOST_JSON.read_text()) if HOST_JSON.exists() else {}
        return int(host.get("extensions", {}).get("queues", {}).get("maxDequeueCount", 5))


_current: Runtime | None = None
_pool: ThreadPoolExecutor | None = None
# Calls issued together are few (the reads one decision needs); more threads than this would
# only queue on the connection pools (urllib3 keeps 10 connections per host by default).
TOGETHER = 8


def together(*calls: Callable[[], Any]) -> list[Any]:
    """Run the calls at once (they wait on the network, not on Python) and return their results
    in order; the first call's exception, if any failed, once all have ended. Each runs in the
    caller's context (contextvars: what reads may be reused, the run's listing)."""
    global _pool
    if len(calls) <= 1:
        return [call() for call in calls]
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=TOGETHER, thread_name_prefix="together")
    futures = [_pool.submit(contextvars.copy_context().run, call) for call in calls]
    errors = [future.exception() for future in futures]
    failed = next((error for error in errors if error is not None), None)
    if failed is not None:
        raise failed
    return [future.result() for future in futures]


def current() -> Runtime:
    global _current
    if _current is None:
        _current = Runtime(load_settings(None, VOCABULARY))
    return _current


def reset() -> None:
    """Forget the process's runtime so the next call reads settings again (replay, tests)."""
    global _current
    _current = None
