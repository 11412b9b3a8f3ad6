"""What ARM refuses in a network security group's rules, with ARM's status and error code.

Every check names its source. Where a public source shows the refusal but not its exact
error code, the code here is marked `unverified` and the README lists it; the status (400)
is what ARM answers for every request-validation failure of the network provider.

Sources:
- [docs-nsg] https://learn.microsoft.com/azure/virtual-network/network-security-groups-overview
  (name, priority 100-4096, protocols, augmented rules: several IP addresses and ranges)
- [docs-limits] https://learn.microsoft.com/azure/azure-resource-manager/management/azure-subscription-service-limits#azure-resource-manager-virtual-networking-limits
  (1,000 security rules per NSG; 4,000 source/destination IP addresses and ranges per NSG)
- [spec] ../shared/azure-specs, networkSecurityGroup.json: SecurityRulePropertiesFormat
  (protocol enum Tcp|Udp|Icmp|Esp|*|Ah, access Allow|Deny, direction Inbound|Outbound)
- [specs#1591] Azure/azure-rest-api-specs#1591: one of prefix or prefixes per side
- [tf#5617] hashicorp/terraform-provider-azurerm#5617: SecurityRuleParameterContainsUnsupportedValue
  (tags and '*' in a prefixes list), SecurityRuleInvalidAddressPrefix
- [tf#12534] hashicorp/terraform-provider-azurerm#12534 and Azure/AKS#3136:
  ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies (IPv4 and IPv6 in one rule)
- [ps#4557] Azure/azure-powershell#4557: a CIDR with host bits set (50.206.209.68/27) is an
  invalid address prefix
- [cli#23499] Azure/azure-cli#23499 and terraform-provider-azurerm#1530: SecurityRuleInvalidPortRange
"""
from __future__ import annotations

import ipaddress
import re
from typing import Any

from localazure.refusals import Refused

# [docs-nsg] up to 80 characters; begins with a word character; ends with a word character
# or '_'; may contain word characters, '.', '-', '_'.
_NAME = re.compile(r"^\w(?:[\w.\-]{0,78}\w)?$")
PROTOCOLS = ("tcp", "udp", "icmp", "esp", "ah", "*")  # [spec]
MAX_RULES = 1000  # [docs-limits]
MAX_PREFIXES = 4000  # [docs-limits]
# A service tag: letters, optionally '.' and a region or service part (Storage.WestEurope).
_TAG = re.compile(r"^[A-Za-z][A-Za-z0-9]*(\.[A-Za-z0-9]+)*$")


def _bad(code: str, message: str) -> Refused:
    return Refused(400, code, message)


def check_rules(rules: list[Any], nsg_id: str) -> None:
    """Every check of every rule, then what the NSG as a whole may hold. Raises Refused."""
    if len(rules) > MAX_RULES:
        # unverified code: the limit is documented, the error body is not.
        raise _bad("SecurityRulesLimitReached", f"Network security group {nsg_id} has {len(rules)} security rules; "
                                                f"the limit is {MAX_RULES} per network security group.")
    prefixes = 0
    seen: dict[tuple[int, str], str] = {}
    for rule in rules:
        prefixes += check_rule(rule, nsg_id)
        properties = rule["properties"]
        slot = (properties["priority"], properties["direction"].lower())
        if slot in seen:
            raise _bad("SecurityRuleConflict",
                       f"Security rule {rule['name']} conflicts with rule {seen[slot]}. Rules cannot have the same "
                       "Priority and Direction.")
        seen[slot] = rule["name"]
    if prefixes > MAX_PREFIXES:
        raise _bad("SecurityRuleAddressPrefixesLimitReached",  # unverified code
                   f"Network security group {nsg_id} has {prefixes} source and destination IP addresses and ranges; "
                   f"the limit is {MAX_PREFIXES} per network security group.")


def check_rule(rule: Any, nsg_id: str) -> int:
    """One rule's checks; the number of IP addresses and ranges it names (for the NSG limit)."""
    if not isinstance(rule, dict) or not isinstance(rule.get("properties"), dict):
        raise _bad("InvalidRequestFormat", "Every security rule needs a name and a properties object.")
    name = rule.get("name")
    rule_id = f"{nsg_id}/securityRules/{name}"
    if not isinstance(name, str) or not _NAME.match(name):
        raise _bad("InvalidResourceName",  # ARM's code for a name outside a resource type's pattern
                   f"Resource name {name!r} is invalid. The name can be up to 80 characters long. It must begin "
                   "with a word character, and it must end with a word character or with '_'. The name may contain "
                   "word characters or '.', '-', '_'.")
    properties = rule["properties"]
    _check_choice(properties, "protocol", PROTOCOLS, rule_id, "SecurityRuleInvalidProtocol")  # unverified code
    _check_choice(properties, "access", ("allow", "deny"), rule_id, "SecurityRuleInvalidAccess")  # unverified code
    _check_choice(properties, "direction", ("inbound", "outbound"), rule_id,
                  "SecurityRuleInvalidDirection")  # unverified code
    description = properties.get("description")
    if description is not None and (not isinstance(description, str) or len(description) > 140):
        # [spec] SecurityRulePropertiesFormat.description: "Restricted to 140 chars"; enforced by ARM
        # (MicrosoftDocs/azure-docs#112218); the code is unverified.
        raise _bad("SecurityRuleInvalidDescription", f"Security rule {rule_id} has a description longer than 140 "
                                                     "characters.")
    priority = properties.get("priority")
    if not isinstance(priority, int) or isinstance(priority, bool) or not 100 <= priority <= 4096:
        raise _bad("SecurityRuleInvalidPriority", f"Security rule {rule_id} has invalid priority. "
                                                  f"Value provided: {priority!r}. Allowed range 100-4096.")
    for side in ("source", "destination"):
        _check_ports(properties, side, rule_id)
    counted, families = 0, set()
    for side in ("source", "destination"):
        listed, found = _check_addresses(properties, side, rule_id)
        counted += listed
        families |= found
    if len(families) > 1:
        raise _bad("ResourceCannotContainAddressPrefixesFromDifferentAddressFamilies",  # [tf#12534]
                   f"Security rule {rule_id} contains IP addresses or prefixes that belong to different address "
                   "families. All IP addresses or prefixes in the resource should belong to the same address family.")
    return counted


def _check_choice(properties: dict, field: str, accepted: tuple[str, ...], rule_id: str, code: str) -> None:
    value = properties.get(field)
    if not isinstance(value, str) or value.lower() not in accepted:
        raise _bad(code, f"Security rule {rule_id} has invalid {field} {value!r}; accepted: {', '.join(accepted)}.")


def _one_of(properties: dict, singular: str, plural: str, also: str | None = None) -> str | None:
    """Which of the alternative properties is given; None when none is (or too many are)."""
    given = [name for name in (singular, plural, also) if name and properties.get(name) not in (None, "", [])]
    return given[0] if len(given) == 1 else None


def _check_ports(properties: dict, side: str, rule_id: str) -> None:
    singular, plural = f"{side}PortRange", f"{side}PortRanges"
    which = _one_of(properties, singular, plural)
    if which is None:
        raise _bad("SecurityRuleInvalidPortRange",  # [cli#23499]; the either-or is [specs#1591] by analogy
                   f"Security rule {rule_id} needs exactly one of {singular} and {plural}.")
    values = [properties[which]] if which == singular else properties[which]
    if not isinstance(values, list):
        raise _bad("SecurityRuleInvalidPortRange", f"Security rule {rule_id}: {plural} must be a list.")
    for value in values:
        if not _port_range(value, allow_any=which == singular):
            raise _bad("SecurityRuleInvalidPortRange",  # [cli#23499]
                       f"Security rule has invalid Port range. Value provided: {value}. Value should be an integer "
                       "OR integer range with '-' delimiter. Valid range 0-65535.")


def _port_range(value: Any, allow_any: bool) -> bool:
    if not isinstance(value, str):
        return False
    if value == "*":
        return allow_any
    low, dash, high = value.partition("-")
    if not low.isdigit() or (dash and not high.isdigit()):
        return False
    first, last = int(low), int(high) if dash else int(low)
    return 0 <= first <= last <= 65535


def _check_addresses(properties: dict, side: str, rule_id: str) -> tuple[int, set[int]]:
    """(IP addresses and ranges listed, their address families) of one side."""
    singular, plural = f"{side}AddressPrefix", f"{side}AddressPrefixes"
    groups = f"{side}ApplicationSecurityGroups"
    which = _one_of(properties, singular, plural, groups)
    if which is None:
        raise _bad("SecurityRuleInvalidAddressPrefix",  # [specs#1591]; the code is unverified for this case
                   f"Security rule {rule_id} needs exactly one of {singular}, {plural} and {groups}.")
    if which == groups:
        return 0, set()
    if which == singular:
        value = properties[singular]
        if not isinstance(value, str):
            raise _invalid_prefix(rule_id, value)
        if value == "*" or (_TAG.match(value) and not value.lower() == "any"):
            return 0, set()  # '*' or a service tag, alone [docs-nsg]
        return 1, {_family(value, rule_id)}
    values = properties[plural]
    if not isinstance(values, list):
        raise _invalid_prefix(rule_id, values)
    families = set()
    for value in values:
        if not isinstance(value, str):
            raise _invalid_prefix(rule_id, value)
        if value == "*" or _TAG.match(value):
            raise _bad("SecurityRuleParameterContainsUnsupportedValue",  # [tf#5617]
                       f"Security rule parameter {plural[0].upper() + plural[1:]} for rule with Id {rule_id} cannot "
                       "specify existing VIRTUALNETWORK, INTERNET, AZURELOADBALANCER, '*' or system tags. "
                       f"Unsupported value used: {value}.")
        families.add(_family(value, rule_id))
    return len(values), families


def _family(value: str, rule_id: str) -> int:
    """4 or 6 for an IP address or a CIDR with no host bits set [ps#4557]; Refused otherwise."""
    try:
        return ipaddress.ip_network(value, strict=True).version
    except ValueError:
        raise _invalid_prefix(rule_id, value) from None


def _invalid_prefix(rule_id: str, value: Any) -> Refused:
    return _bad("SecurityRuleInvalidAddressPrefix",  # [tf#5617], [ps#4557]
                f"Security rule {rule_id} has invalid Address prefix. Value provided: {value}")

