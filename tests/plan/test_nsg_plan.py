"""Planning NSG containment (containment.plan.nsg): where the Deny goes."""
from __future__ import annotations

import pytest

from containment.plan.nsg import deny_rules, free_priority_above
from localazure.nsg_validation import check_rule


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


def group(*rules: dict) -> dict:
    return {"id": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Network/networkSecurityGroups/n",
            "properties": {"securityRules": list(rules)}}


def settings_with(allowed: str):
    from tests.helpers.settings import load_settings

    return load_settings({"CONTAINMENT_ALLOWED_CIDRS": allowed})


def sourced(name: str, priority: int, source: str, destination: str = "*") -> dict:
    body = rule(name, priority)
    body["properties"].update(sourceAddressPrefix=source, destinationAddressPrefix=destination)
    return body


def test_a_dual_stack_untrusted_set_becomes_one_deny_per_family_with_the_closest_priorities():
    target = sourced("open", 300, "*")
    denies = deny_rules(group(target, rule("taken", 299)), target, settings_with("10.20.0.0/16,2001:db8::/32"))
    assert [(name, body["properties"]["priority"]) for name, body in denies] == [
        ("deny-untrusted-open-ipv4", 298), ("deny-untrusted-open-ipv6", 297)]
    for name, body in denies:
        check_rule({"name": name, "properties": body["properties"]}, "nsg")  # ARM accepts it


def test_tags_stand_alone_and_a_name_stays_within_80_characters():
    target = sourced("x" * 75, 300, "Internet")
    [(name, body)] = deny_rules(group(target), target, settings_with("10.20.0.0/16"))
    assert len(name) == 80 and body["properties"]["sourceAddressPrefix"] == "Internet"
    check_rule({"name": name, "properties": body["properties"]}, "nsg")


def test_a_deny_left_by_an_earlier_attempt_keeps_its_priority():
    target = sourced("open", 300, "*")
    earlier = sourced("deny-untrusted-open-ipv4", 299, "0.0.0.0/5")
    denies = deny_rules(group(target, earlier), target, settings_with("10.20.0.0/16,2001:db8::/32"))
    assert [body["properties"]["priority"] for _, body in denies] == [299, 298]


def test_denies_that_would_pass_the_nsgs_limits_are_not_planned():
    target = sourced("open", 300, "*")
    crowded = [rule(f"r{n}", 1000 + n) for n in range(999)]
    assert deny_rules(group(target, *crowded), target, settings_with("10.20.0.0/16,2001:db8::/32")) == []
    assert len(deny_rules(group(target, *crowded[:997]), target, settings_with("10.20.0.0/16,2001:db8::/32"))) == 2


def test_long_rule_names_get_denies_of_their_own_and_descriptions_arm_takes():
    shared = "allow-partner-networks-into-synthetic-data-export-subnet-eastus2-"
    first, second = sourced(shared + "prod1", 300, "Internet"), sourced(shared + "prod2", 500, "Internet")
    settings = settings_with("10.20.0.0/16")
    [(name_1, body_1)] = deny_rules(group(first, second), first, settings)
    [(name_2, _)] = deny_rules(group(first, second), second, settings)
    assert name_1 != name_2 and len(name_1) <= 80 and len(name_2) <= 80
    check_rule({"name": name_1, "properties": body_1["properties"]}, "nsg")  # description within 140
