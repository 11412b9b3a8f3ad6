"""When an NSG rule opens synthetic data: an Allow that admits untrusted sources inbound
(or a custom rule that lets the data out to untrusted addresses), after what
higher-precedence Denies already block. Untrusted means outside CONTAINMENT_ALLOWED_CIDRS
(see nsg_reach for service tags)."""
from __future__ import annotations

from containment.core.ids import SECURITY_RULE
from containment.judge import nsg_reach
from containment.judge.rule import Context, Rule


def _verdict(security_rule: dict, context: Context, direction: str):
    properties = security_rule.get("properties") or {}
    if str(properties.get("direction", "")).lower() != direction:
        return None
    try:
        reach = nsg_reach.untrusted_reach(security_rule, context.facts["nsg"], context.settings.allowed_cidrs)
        untrusted = nsg_reach.untrusted_prefixes(security_rule, context.settings.allowed_cidrs)
    except nsg_reach.UnreadableRule:
        return None  # reported by nsg_rule_unreadable
    if not reach:
        return None
    side = "source" if direction == "inbound" else "destination"
    ports = properties.get("destinationPortRanges") or [properties.get("destinationPortRange") or "*"]
    evidence = {
        "rule": security_rule.get("name"),
        "priority": properties.get("priority"),
        "direction": properties.get("direction"),
        "protocol": properties.get("protocol"),
        "destinationPorts": ports,
        f"untrusted_{side}s": untrusted,
        "allowed_cidrs": [str(n) for n in context.settings.allowed_cidrs],
    }
    where = "from" if direction == "inbound" else "to"
    return (f"rule {security_rule.get('name')} (priority {properties.get('priority')}) allows "
            f"{properties.get('protocol') or '*'} on ports {', '.join(map(str, ports))} {where} "
            f"{', '.join(untrusted)}, and no higher-precedence Deny blocks it", evidence)


def inbound_admits_untrusted_sources(security_rule: dict, context: Context):
    return _verdict(security_rule, context, "inbound")


def outbound_open_to_internet(security_rule: dict, context: Context):
    # Azure's default AllowInternetOutBound is on every NSG; reporting it would report every
    # NSG for ever. A custom outbound Allow to untrusted addresses is someone's decision.
    if str(security_rule.get("type", "")).lower().endswith("/defaultsecurityrules"):
        return None
    return _verdict(security_rule, context, "outbound")


def rule_unreadable(security_rule: dict, context: Context):
    try:
        nsg_reach.boxes(security_rule)
        for prefix in nsg_reach.prefixes(security_rule, "source") + nsg_reach.prefixes(security_rule, "destination"):
            nsg_reach.address_ranges(prefix)
    except nsg_reach.UnreadableRule as error:
        return f"rule {security_rule.get('name')} could not be judged: {error}", {"rule": security_rule.get("name")}
    return None


RULES = (
    # An exposure: what answers behind the group is not known to the app (a service may need no
    # credential), so reach from untrusted sources is not ruled out (fail closed).
    Rule("nsg_inbound_admits_untrusted_sources", "high", SECURITY_RULE, inbound_admits_untrusted_sources),
    # A weakness (containment.judge.rule): a way out, which shows no one outside able to reach the
    # data; something inside would have to send it.
    Rule("nsg_outbound_open_to_internet", "medium", SECURITY_RULE, outbound_open_to_internet, weakness=True),
    # An exposure, failing closed: a rule the app cannot judge may admit anyone.
    Rule("nsg_rule_unreadable", "low", SECURITY_RULE, rule_unreadable),
)
