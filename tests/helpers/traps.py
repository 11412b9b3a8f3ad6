"""The resources the app must never touch, and the checks that it did not: shared by the
reliability and hostile-input suites."""
from __future__ import annotations

from urllib.parse import urlsplit

from containment.core.records import DecisionRecord
from tests.helpers import arm_bodies as b

OWN_GROUP = f"/subscriptions/{b.SUBSCRIPTION}/resourceGroups/rg-containment"
# Resources the app must never change, each exposed so that changing it would be tempting:
# the app's own storage account (tagged synthetic: it is, it holds the ledger) and a
# container of it (read and reported, never written), an account in a subscription outside
# CONTAINMENT_SUBSCRIPTIONS (never even read), and an untagged account outside every
# protected scope.
OWN_ACCOUNT = b.storage_account("containmentapp01", group="rg-containment", allowBlobPublicAccess=True)
OWN_CONTAINER = b.container(OWN_ACCOUNT["id"], "ledger-export", "Container")
FOREIGN = b.storage_account("synthforeign01", subscription=b.OTHER_SUBSCRIPTION, allowBlobPublicAccess=True)
UNTAGGED = b.storage_account("scratch01", tags={}, allowBlobPublicAccess=True)
TRAPS = [OWN_ACCOUNT, OWN_CONTAINER, FOREIGN, UNTAGGED]


def effective_writes(emulator) -> list[tuple[str, str, int]]:
    """ARM writes that ARM carried out: (method, path, status), whether or not the caller
    heard back (a fault `after` the call). Refused ones (4xx, 5xx) changed nothing."""
    return list(emulator.applied_writes)


def assert_scope_safe(emulator, units=None) -> None:
    """Nothing outside the watched subscription was read or written; nothing under the app's
    own resource group was written (it is read to be judged and reported); nothing untagged
    was written; with `units`, every write is the containment of an offending one."""
    for exchange in list(emulator.traffic):
        path = ("/" + urlsplit(exchange.url).path.lstrip("/")).lower()
        assert not path.startswith(f"/subscriptions/{b.OTHER_SUBSCRIPTION}"), f"touched a foreign resource: {path}"
        assert exchange.method == "GET" or not path.startswith(OWN_GROUP.lower()), \
            f"sent a write to the app's own resources: {exchange.method} {path}"
    offending = [unit for unit in units or () if unit.offending]
    for method, path, _ in effective_writes(emulator):
        assert not path.lower().startswith(UNTAGGED["id"].lower()), f"wrote an untagged account: {method} {path}"
        assert units is None or any(unit.owns_write(path) for unit in offending), \
            f"a write no offending resource explains: {method} {path}"


def forged_decision(key: str, target: str, action: str) -> DecisionRecord:
    """A decision as a forger who can write the ledger table would claim it."""
    return DecisionRecord(key=key, resource_id=target, outcome="contain", mode="enforce", reason="forged",
                          plan=[{"action": action, "target": target}], actions=[action])
