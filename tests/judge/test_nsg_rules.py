"""The NSG rules (containment.judge.nsg), judged one security rule at a time against its NSG,
as the assess step calls them. Every rule the family declares has a case here."""
from __future__ import annotations

import ipaddress

import pytest

from containment.core.findings import Finding
from containment.core.ids import SECURITY_RULE
from containment.judge import nsg as family
from containment.judge import nsg_reach
from containment.judge.nsg_reach import all_rules
from containment.judge.rule import Context
from containment.judge.scope import Protection
from containment.plan.registry import judge
from tests.helpers import arm_bodies as b
from tests.helpers.settings import load_settings

SETTINGS = load_settings({"CONTAINMENT_ALLOWED_CIDRS": "10.20.0.0/16"})


def findings(*rules: dict) -> list[Finding]:
    """Every finding over every rule of an NSG made of these rules (and Azure's defaults)."""
    group = b.nsg(rules=list(rules))
    group["properties"]["defaultSecurityRules"] = [{
        "id": f"{group['id']}/defaultSecurityRules/AllowInternetOutBound", "name": "AllowInternetOutBound",
        "type": "Microsoft.Network/networkSecurityGroups/defaultSecurityRules",
        "properties": {"protocol": "*", "sourcePortRange": "*", "destinationPortRange": "*",
                       "sourceAddressPrefix": "*", "destinationAddressPrefix": "Internet", "access": "Allow",
                       "priority": 65001, "direction": "Outbound"}}]
    context = Context(SETTINGS, Protection(tagged=True, protected_scope=None), {"nsg": group})
    return [finding for rule in all_rules(group) for finding in judge(SECURITY_RULE, rule, context)]


def outbound_to(destination: str) -> dict:
    rule = b.security_rule("export", 300, direction="Outbound")
    rule["properties"]["destinationAddressPrefix"] = destination
    return rule


CASES = {
    "nsg_inbound_admits_untrusted_sources": (
        b.security_rule("allow-https", 300, source="203.0.113.0/24"), "high",
        "rule allow-https (priority 300) allows Tcp on ports 443 from 203.0.113.0/24, and no higher-precedence "
        "Deny blocks it"),
    "nsg_outbound_open_to_internet": (
        outbound_to("Internet"), "medium",
        "rule export (priority 300) allows Tcp on ports 443 to Internet, and no higher-precedence Deny blocks it"),
    "nsg_rule_unreadable": (
        b.security_rule("typo", 300, source="10.20.0.0/16", port="70000"), "low",
        "rule typo could not be judged: port range '70000' is outside 0-65535"),
}


def test_every_nsg_rule_has_a_case_here():
    assert {rule.id for rule in family.RULES} == set(CASES)


@pytest.mark.parametrize("rule_id", sorted(CASES))
def test_each_rule_finds_its_exposure_and_nothing_else(rule_id):
    security_rule, severity, summary = CASES[rule_id]
    [found] = findings(security_rule)
    assert (found.rule, found.severity, found.summary) == (rule_id, severity, summary)
    assert found.resource_id.endswith(f"/securityRules/{security_rule['name']}")


def test_an_untrusted_inbound_allow_carries_what_it_opens_as_evidence():
    [found] = findings(b.security_rule("allow-https", 300, source="Internet"))
    assert found.evidence == {"rule": "allow-https", "priority": 300, "direction": "Inbound", "protocol": "Tcp",
                              "destinationPorts": ["443"], "untrusted_sources": ["Internet"],
                              "allowed_cidrs": ["10.20.0.0/16"]}


@pytest.mark.parametrize("rules", [
    [b.security_rule("training", 300, source="10.20.0.0/16")],
    [b.security_rule("vnet", 300, source="VirtualNetwork")],
    [b.security_rule("deny-all", 200, source="*", access="Deny"), b.security_rule("allow-https", 300, source="*")],
    [b.security_rule("closed", 300, source="*", access="Deny")],
], ids=["allowed CIDR", "VirtualNetwork tag", "shadowed by a Deny above", "a Deny"])
def test_what_only_trusted_sources_reach_is_no_finding(rules):
    assert findings(*rules) == []


def test_a_deny_below_the_allow_does_not_shadow_it():
    found = findings(b.security_rule("allow-https", 200, source="*"),
                     b.security_rule("deny-all", 300, source="*", access="Deny"))
    assert [f.rule for f in found] == ["nsg_inbound_admits_untrusted_sources"]


def test_an_allowlist_inside_the_source_leaves_the_rest_untrusted():
    [found] = findings(b.security_rule("wide", 300, source="10.0.0.0/8"))
    assert found.evidence["untrusted_sources"] == ["10.0.0.0/12", "10.16.0.0/14", "10.21.0.0/16", "10.22.0.0/15",
                                                  "10.24.0.0/13", "10.32.0.0/11", "10.64.0.0/10", "10.128.0.0/9"]


def test_azures_default_internet_outbound_is_not_reported():
    assert findings() == []


# -- the reach arithmetic ---------------------------------------------------------------------

def rule(name, priority, source="*", access="Allow", port="*", protocol="*", direction="Inbound", destination="*"):
    return {"name": name, "properties": {"protocol": protocol, "sourcePortRange": "*", "destinationPortRange": port,
                                         "sourceAddressPrefix": source, "destinationAddressPrefix": destination,
                                         "access": access, "priority": priority, "direction": direction}}


def reach(target, *others, allowed=()):
    nsg = {"properties": {"securityRules": [target, *others]}}
    return nsg_reach.untrusted_reach(target, nsg, [ipaddress.ip_network(a) for a in allowed])


def test_denies_on_several_port_ranges_together_shadow_a_rule():
    allow = rule("allow", 300, port="100-200")
    assert reach(allow, rule("d1", 200, access="Deny", port="100-150"), rule("d2", 201, access="Deny", port="151-200")) == []
    assert reach(allow, rule("d1", 200, access="Deny", port="100-150")) != []


def test_a_deny_with_lower_precedence_or_the_other_direction_does_not_shadow():
    allow = rule("allow", 300)
    assert reach(allow, rule("later", 400, access="Deny")) != []
    assert reach(allow, rule("outbound", 200, access="Deny", direction="Outbound")) != []


def test_a_deny_for_another_destination_does_not_shadow_but_a_wider_one_does():
    allow = rule("allow", 300, destination="10.1.2.0/24")
    assert reach(allow, rule("deny-elsewhere", 200, access="Deny", destination="10.9.0.0/16")) != []
    assert reach(allow, rule("deny-wider", 200, access="Deny", destination="10.1.0.0/16")) == []


def test_a_deny_for_one_protocol_leaves_the_others():
    remaining = reach(rule("allow", 300), rule("deny-tcp", 200, access="Deny", protocol="Tcp"))
    assert {box.protocol for box in remaining} == {"udp", "icmp", "esp", "ah"}


def test_trusted_service_tags_are_not_judged_but_azure_cloud_is():
    assert reach(rule("vnet", 300, source="VirtualNetwork")) == []
    assert reach(rule("lb", 300, source="AzureLoadBalancer")) == []
    assert reach(rule("azure", 300, source="AzureCloud.WestEurope")) != []


def test_an_unreadable_rule_is_reported_not_crashed_on():
    broken = rule("broken", 300, port="eighty")
    findings = judge("Microsoft.Network/networkSecurityGroups/securityRules", broken,
                     Context(load_settings({}), Protection(True, None), {"nsg": {"properties": {"securityRules": [broken]}}}))
    assert [f.rule for f in findings] == ["nsg_rule_unreadable"] and "eighty" in findings[0].summary


def test_untrusted_prefixes_keep_tags_and_exclude_allowed_cidrs():
    allowed = [ipaddress.ip_network("10.0.0.0/8")]
    assert nsg_reach.untrusted_prefixes(rule("r", 300, source="Internet"), []) == ["Internet"]
    assert nsg_reach.untrusted_prefixes(rule("r", 300, source="10.1.0.0/16"), allowed) == []
    pieces = nsg_reach.untrusted_prefixes(rule("r", 300, source="*"), allowed)
    assert "::/0" in pieces and "10.0.0.0/8" not in pieces and "11.0.0.0/8" in pieces


def test_a_rule_carries_only_the_families_of_its_other_side():
    to_v4 = rule("r", 300, destination="10.50.0.0/24")
    assert nsg_reach.carried_families(to_v4) == {4}
    assert {box.version for box in reach(to_v4)} == {4}  # no IPv6 source reaches an IPv4 destination
    assert nsg_reach.carried_families(rule("r", 300)) == {4, 6}


def test_azure_cloud_like_internet_never_holds_a_private_allowed_range():
    allowed = [ipaddress.ip_network("10.20.0.0/16")]
    assert nsg_reach.untrusted_prefixes(rule("r", 300, source="AzureCloud"), allowed) == ["AzureCloud"]
    assert nsg_reach.untrusted_prefixes(rule("r", 300, source="AzureCloud.WestEurope"), allowed) == [
        "AzureCloud.WestEurope"]


def test_a_deny_for_other_application_security_groups_does_not_shadow_a_rule_to_an_asg():
    allow = rule("allow", 300, port="22")
    allow["properties"].pop("destinationAddressPrefix")
    allow["properties"]["destinationApplicationSecurityGroups"] = [{"id": "asgA"}]
    deny = rule("deny", 200, access="Deny", port="22")
    deny["properties"].pop("destinationAddressPrefix")
    deny["properties"]["destinationApplicationSecurityGroups"] = [{"id": "asgB"}]
    assert reach(allow, deny) != []
