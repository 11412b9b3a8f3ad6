"""Which account keys a rotation rotates (containment.plan.keys.keys_named): the keys the
decision's findings on the account name, their union; both where one names none."""
from __future__ import annotations

import pytest

from containment.plan.keys import keys_named

ACCOUNT = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/synthtrain01"
OTHER = ACCOUNT.replace("synthtrain01", "synthtrain02")


def finding(*keys: str, on: str = ACCOUNT, evidence: dict | None = None) -> dict:
    return {"rule": "r", "resource_id": on, "evidence": {"keys": list(keys)} if evidence is None else evidence}


@pytest.mark.parametrize("findings, rotated", [
    ([finding("key1")], ("key1",)),
    ([finding("key2"), finding("key2")], ("key2",)),
    ([finding("key2"), finding("key1")], ("key1", "key2")),
    ([finding("key1"), finding()], ("key1", "key2")),  # one finding on it names none: unknown
    ([finding("key1"), finding(evidence={})], ("key1", "key2")),
    ([finding("key3")], ("key1", "key2")),  # no account key: names none
    ([finding("key1"), finding(on=OTHER)], ("key1",)),  # another account's findings do not count
    ([finding("key1", on=OTHER)], ("key1", "key2")),  # none on this account (break-glass): both
    ([], ("key1", "key2")),
])
def test_the_keys_named_by_the_findings_on_the_account(findings, rotated):
    assert keys_named(findings, ACCOUNT.lower()) == rotated
