"""Within one drift sweep run, each subscription's storage accounts are listed once: the
sweep's own inventory, the vaults it judges (which accounts their keys encrypt) and the
policy assignments it judges (which accounts their scopes cover) all read that one listing.
Outside a run (an event) each call lists afresh, so an event sees the accounts as they are.

A ContextVar, not state on the shared Runtime: the sweep runs in one thread, and an event
handled beside it in the same worker sees none of its memo.
"""
from __future__ import annotations

from contextlib import contextmanager
from contextvars import ContextVar
from typing import Iterator

from containment.adapters import arm
from containment.adapters.runtime import Runtime
from containment.core.ids import parse_resource_id

_RUN: ContextVar[dict[str, list[dict]] | None] = ContextVar("sweep_run_accounts", default=None)


@contextmanager
def one_listing_per_run() -> Iterator[None]:
    token = _RUN.set({})
    try:
        yield
    finally:
        _RUN.reset(token)


def storage_accounts(runtime: Runtime, subscription: str, resource_group: str | None = None) -> list[dict]:
    """The storage accounts of a subscription (or of one of its resource groups)."""
    memo = _RUN.get()
    if memo is None:
        return arm.list_accounts(runtime.clients, subscription, resource_group)
    key = subscription.lower()
    if key not in memo:
        memo[key] = arm.list_accounts(runtime.clients, subscription, None)
    if resource_group is None:
        return memo[key]
    return [account for account in memo[key]
            if (parse_resource_id(account["id"]).resource_group or "").lower() == resource_group.lower()]
