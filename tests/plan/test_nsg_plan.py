"""Planning NSG containment (containment.plan.nsg): where the Deny goes."""
from __future__ import annotations

import pytest

from containment.plan.nsg import free_priority_above


def rule(name: str, priority: int, direction: str = "Inbound") -> dict:
    return {"name": name, "properties": {"protocol": "*", "sourcePortRange": "*", "destinationPortRange": "*",
                                         "sourceAddressPrefix": "*", "destinationAddressPrefix": "*",
                                         "access": "Allow", "priority": priority, "direction": direction}}


@pytest.mark.parametrize("taken, rule_priority, expected", [
    ([], 300, 299), ([299, 298], 300, 297), ([], 100, None), (list(range(100, 300)), 300, None), ([], 65001, 4096),
])
def test_free_priority_above(taken, rule_priority, expected):
    nsg = {"properties": {"securityRules": [rule(f"r{p}", p) for p in taken]}}
    assert free_priority_above(nsg, rule("target", rule_priority)) == expected
