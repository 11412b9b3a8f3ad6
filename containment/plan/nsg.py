"""How to contain an NSG rule that opens synthetic data, whatever its priority. Pure.
(NSG rules: containment.judge.nsg.)

`deny-above` (default) adds a Deny for the rule's untrusted sources (outbound: untrusted
destinations), same ports, protocol and other side, at the free priority closest above the
rule, so it takes precedence over the rule and nothing else changes. Where no number is
free above it (the rule is at 100, or every number above is taken) it falls back to
`disable-rule`: the rule itself is set to Deny. The NSG as it was is recorded by the
caller, so either change can be undone.
"""
from __future__ import annotations

import copy

from containment.core.ids import DEFAULT_SECURITY_RULE, SECURITY_RULE, ResourceId
from containment.core.settings import Settings
from containment.judge import nsg_reach
from containment.plan.action import Action, CannotContain, State, Write

FIRST_PRIORITY, LAST_PRIORITY = 100, 4096
DENY_PREFIX = "deny-untrusted-"


def contain_rule(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    return [rule_containment(state, target, settings)]


def rule_containment(state: State, target: ResourceId, settings: Settings) -> Write:
    rule, nsg = state.body, state.facts["nsg"]
    is_default = target.is_type(DEFAULT_SECURITY_RULE)
    if settings.nsg_strategy == "deny-above" or is_default:
        priority = free_priority_above(nsg, rule)
        if priority is not None:
            return Write("PUT", f"{nsg['id']}/securityRules/{deny_rule_name(rule)}",
                         deny_rule(rule, priority, settings), state.etag)
        if is_default:
            raise CannotContain(f"default rule {rule.get('name')} cannot be disabled and no priority between "
                                f"{FIRST_PRIORITY} and {LAST_PRIORITY} is free for a Deny")
    return Write("PUT", rule["id"], disabled(rule), state.etag)


def free_priority_above(nsg: dict, rule: dict) -> int | None:
    """The free priority closest above the rule (a smaller number), in the rule's direction."""
    properties = rule.get("properties") or {}
    direction = str(properties.get("direction", "")).lower()
    taken = {(r.get("properties") or {}).get("priority") for r in (nsg.get("properties") or {}).get("securityRules") or []
             if str((r.get("properties") or {}).get("direction", "")).lower() == direction}
    start = min(int(properties.get("priority", LAST_PRIORITY + 1)) - 1, LAST_PRIORITY)
    return next((p for p in range(start, FIRST_PRIORITY - 1, -1) if p not in taken), None)


def deny_rule_name(rule: dict) -> str:
    return (DENY_PREFIX + str(rule.get("name")))[:80]  # ARM names security rules up to 80 characters


def deny_rule(rule: dict, priority: int, settings: Settings) -> dict:
    properties = rule.get("properties") or {}
    inbound = str(properties.get("direction", "")).lower() == "inbound"
    judged, other = ("source", "destination") if inbound else ("destination", "source")
    untrusted = nsg_reach.untrusted_prefixes(rule, settings.allowed_cidrs)
    body = {
        "protocol": properties.get("protocol") or "*",
        "sourcePortRange": "*",
        "access": "Deny",
        "priority": priority,
        "direction": properties.get("direction"),
        "description": f"Synthetic-data containment: blocks what rule {rule.get('name')} admits "
                       f"{'from' if inbound else 'to'} untrusted addresses.",
    }
    body.update(_prefixes(judged, untrusted))
    body.update(_prefixes(other, nsg_reach.prefixes(rule, other) or ["*"]))
    ports = properties.get("destinationPortRanges") or []
    body.update({"destinationPortRanges": list(ports)} if ports else
                {"destinationPortRange": properties.get("destinationPortRange") or "*"})
    return {"properties": body}


def disabled(rule: dict) -> dict:
    properties = copy.deepcopy(rule.get("properties") or {})
    properties.pop("provisioningState", None)  # read-only: never sent back
    properties["access"] = "Deny"
    return {"properties": properties}


def _prefixes(side: str, values: list[str]) -> dict:
    # ARM takes one prefix in the singular property or several in the plural, never both.
    return {f"{side}AddressPrefix": values[0]} if len(values) == 1 else {f"{side}AddressPrefixes": values}


_NSG_RULE_RW = ("Microsoft.Network/networkSecurityGroups/read",
                "Microsoft.Network/networkSecurityGroups/securityRules/read",
                "Microsoft.Network/networkSecurityGroups/securityRules/write")

ACTIONS = (
    # A Deny with precedence over the rule, or the rule itself set to Deny.
    Action("block_untrusted_inbound", (SECURITY_RULE, DEFAULT_SECURITY_RULE), "nsg_inbound_admits_untrusted_sources",
           _NSG_RULE_RW, contain_rule),
    Action("block_internet_outbound", (SECURITY_RULE, DEFAULT_SECURITY_RULE), "nsg_outbound_open_to_internet",
           _NSG_RULE_RW, contain_rule),
)
