"""How to contain an NSG rule that opens synthetic data, whatever its priority. Pure.
(NSG rules: containment.judge.nsg.)

`deny-above` (default) adds Deny rules for the rule's untrusted sources (outbound: untrusted
destinations), same ports, protocol and other side, at the free priorities closest above
the rule, so they take precedence over it and nothing else changes. The Denies are rules
ARM accepts (localazure/nsg_validation.py names the sources):

- one Deny per address family: ARM refuses IPv4 and IPv6 prefixes in one rule, so a source
  of `*` with an allowlist becomes an IPv4 Deny and an IPv6 Deny; a family the other side
  cannot carry (an IPv4 destination) gets none;
- a service tag (or `*`) alone in its own Deny: a prefixes list holds only IP addresses
  and ranges;
- within the NSG's limits of 1,000 rules and 4,000 IP addresses and ranges.

Where the Denies cannot be placed (no free priorities above the rule, as at priority 100,
or a limit would be passed) it falls back to `disable-rule`: the rule itself is set to
Deny, and the plan says why. The NSG as it was is recorded by the caller, so either change
can be undone.
"""
from __future__ import annotations

import copy
import hashlib
import ipaddress
import re

from containment.core.ids import DEFAULT_SECURITY_RULE, SECURITY_RULE, ResourceId
from containment.core.settings import Settings
from containment.judge import nsg_reach
from containment.plan.action import AFTER_PREVIOUS, Action, CannotContain, State, Write, judged_state, recreated

FIRST_PRIORITY, LAST_PRIORITY = 100, 4096
DENY_PREFIX = "deny-untrusted-"
MAX_RULES, MAX_PREFIXES = 1000, 4000  # per NSG (Azure networking limits)
_NAME_LENGTH = 80  # security rule names are at most 80 characters and end with a word character
DESCRIPTION_LENGTH = 140


def contain_rule(state: State, target: ResourceId, settings: Settings) -> list[Write]:
    rule, nsg = state.body, state.facts["nsg"]
    is_default = target.is_type(DEFAULT_SECURITY_RULE)
    if settings.nsg_strategy == "deny-above" or is_default:
        denies = deny_rules(nsg, rule, settings)
        if denies:
            return [Write("PUT", f"{nsg['id']}/securityRules/{name}", body,
                          state.etag if number == 0 else AFTER_PREVIOUS)
                    for number, (name, body) in enumerate(denies)]
        if is_default:
            raise CannotContain(f"default rule {rule.get('name')} cannot be disabled and its Deny rules cannot be "
                                f"placed (no free priorities between {FIRST_PRIORITY} and its own, or the NSG's limits "
                                f"of {MAX_RULES} rules and {MAX_PREFIXES} addresses would be passed)")
    return [Write("PUT", rule["id"], disabled(rule), state.etag)]


def deny_rules(nsg: dict, rule: dict, settings: Settings) -> list[tuple[str, dict]]:
    """(name, body) of each Deny that blocks what the rule admits from untrusted addresses;
    [] when they cannot all be placed."""
    judged, other = _sides(rule)
    groups = _groups(nsg_reach.untrusted_prefixes(rule, settings.allowed_cidrs), nsg_reach.carried_families(rule))
    if not groups:
        return []
    names = _names(rule, [suffix for suffix, _ in groups])
    priorities = free_priorities_above(nsg, rule, len(groups), reuse=names)
    rules = (nsg.get("properties") or {}).get("securityRules") or []
    ours = {name.lower() for name in names}
    kept = [r for r in rules if str(r.get("name", "")).lower() not in ours]
    listed = sum(_listed(r) for r in kept) + sum(1 for _, values in groups for value in values if _is_ip(value))
    if priorities is None or len(kept) + len(groups) > MAX_RULES or listed > MAX_PREFIXES:
        return []
    return [(name, deny_rule(rule, priority, judged, values, other))
            for name, priority, (_, values) in zip(names, priorities, groups)]


def free_priorities_above(nsg: dict, rule: dict, count: int = 1, reuse: list[str] = ()) -> list[int] | None:
    """The `count` free priorities closest above the rule (smaller numbers), in its direction;
    a rule named in `reuse` (our own Deny from an earlier attempt) gives its priority back."""
    properties = rule.get("properties") or {}
    direction = str(properties.get("direction", "")).lower()
    own = {name.lower() for name in reuse}
    taken = {(r.get("properties") or {}).get("priority") for r in (nsg.get("properties") or {}).get("securityRules") or []
             if str((r.get("properties") or {}).get("direction", "")).lower() == direction
             and str(r.get("name", "")).lower() not in own}
    start = min(int(properties.get("priority", LAST_PRIORITY + 1)) - 1, LAST_PRIORITY)
    free = [p for p in range(start, FIRST_PRIORITY - 1, -1) if p not in taken][:count]
    return free if len(free) == count else None


def free_priority_above(nsg: dict, rule: dict) -> int | None:
    """The free priority closest above the rule (a smaller number), in the rule's direction."""
    free = free_priorities_above(nsg, rule)
    return free[0] if free else None


def deny_rule(rule: dict, priority: int, judged: str, values: list[str], other: str) -> dict:
    properties = rule.get("properties") or {}
    inbound = judged == "source"
    body = {
        "protocol": properties.get("protocol") or "*",
        "sourcePortRange": "*",
        "access": "Deny",
        "priority": priority,
        "direction": properties.get("direction"),
        # ARM takes at most 140 characters of description (the spec's SecurityRulePropertiesFormat).
        "description": f"Synthetic-data containment: blocks what rule {rule.get('name')} admits "
                       f"{'from' if inbound else 'to'} untrusted addresses."[:DESCRIPTION_LENGTH],
    }
    body.update(_addresses(judged, values))
    groups = properties.get(f"{other}ApplicationSecurityGroups")
    if groups:
        body[f"{other}ApplicationSecurityGroups"] = copy.deepcopy(groups)
    else:
        body.update(_addresses(other, nsg_reach.prefixes(rule, other) or ["*"]))
    ports = properties.get("destinationPortRanges") or []
    body.update({"destinationPortRanges": list(ports)} if ports else
                {"destinationPortRange": properties.get("destinationPortRange") or "*"})
    return {"properties": body}


def disabled(rule: dict) -> dict:
    properties = copy.deepcopy(rule.get("properties") or {})
    properties.pop("provisioningState", None)  # read-only: never sent back
    properties["access"] = "Deny"
    return {"properties": properties}


def _sides(rule: dict) -> tuple[str, str]:
    inbound = str((rule.get("properties") or {}).get("direction", "")).lower() == "inbound"
    return ("source", "destination") if inbound else ("destination", "source")


def _is_ip(value: str) -> bool:
    try:
        ipaddress.ip_network(value, strict=False)
    except ValueError:
        return False
    return True


def _groups(untrusted: list[str], families: set[int]) -> list[tuple[str, list[str]]]:
    """(name suffix, prefixes) per Deny: IP ranges by family, each tag (or `*`) alone."""
    by_family: dict[int, list[str]] = {}
    alone: list[str] = []
    for value in untrusted:
        if _is_ip(value):
            version = ipaddress.ip_network(value, strict=False).version
            if version in families:
                by_family.setdefault(version, []).append(value)
        else:
            alone.append(value)
    groups = [(f"ipv{version}", values) for version, values in sorted(by_family.items())]
    groups += [("any" if value == "*" else re.sub(r"[^\w.-]", "", value), [value]) for value in alone]
    return groups


def _names(rule: dict, suffixes: list[str]) -> list[str]:
    """`deny-untrusted-<rule>`, or with `-<suffix>` per Deny where there are several."""
    base = DENY_PREFIX + str(rule.get("name"))
    if len(suffixes) == 1:
        return [_fit(base)]
    return [_fit(base, "-" + suffix) for suffix in suffixes]


def _fit(base: str, suffix: str = "") -> str:
    """The name within ARM's 80 characters. A name that must be cut keeps a digest of the
    whole, so two rules whose names share their first characters never share a Deny."""
    if len(base) + len(suffix) <= _NAME_LENGTH:
        return (base + suffix).rstrip(".-") or "deny-untrusted"
    digest = "-" + hashlib.sha256((base + suffix).encode()).hexdigest()[:10]
    return base[:_NAME_LENGTH - len(suffix) - len(digest)].rstrip(".-") + digest + suffix


def _listed(rule: dict) -> int:
    """IP addresses and ranges a rule names (what counts against the NSG's limit)."""
    return sum(1 for side in ("source", "destination") for p in nsg_reach.prefixes(rule, side) if _is_ip(p))


def _addresses(side: str, values: list[str]) -> dict:
    # ARM takes one prefix in the singular property or several in the plural, never both.
    return {f"{side}AddressPrefix": values[0]} if len(values) == 1 else {f"{side}AddressPrefixes": values}


# What a rule's exposure is made of: all but its access (containment may set it to Deny) and
# what ARM or people write beside it.
_NOT_THE_EXPOSURE = ("access", "provisioningState", "description")


def rule_changed(state: State, settings: Settings) -> str | None:
    """Why the rule is no longer the one judged: its NSG was created again, or the rule now
    admits something else (its own write event judges that)."""
    gone = recreated(state, settings)
    if gone is not None or state.body is None:
        return gone
    name = str(state.body.get("name", "")).lower()
    judged = (judged_state(state) or {}).get("properties") or {}
    was = next((rule for kind in ("securityRules", "defaultSecurityRules") for rule in judged.get(kind) or []
                if str(rule.get("name", "")).lower() == name), None)
    if was is None:
        return None
    before, now = ({k: v for k, v in (rule.get("properties") or {}).items() if k not in _NOT_THE_EXPOSURE}
                   for rule in (was, state.body))
    changed = sorted(k for k in set(before) | set(now) if before.get(k) != now.get(k))
    if changed:
        return f"rule {state.body.get('name')} changed since it was judged ({', '.join(changed)}): judged again " \
               "on its own write"
    return None


_NSG_RULE_RW = ("Microsoft.Network/networkSecurityGroups/read",
                "Microsoft.Network/networkSecurityGroups/securityRules/read",
                "Microsoft.Network/networkSecurityGroups/securityRules/write")

ACTIONS = (
    # Deny rules with precedence over the rule, or the rule itself set to Deny.
    Action("block_untrusted_inbound", (SECURITY_RULE, DEFAULT_SECURITY_RULE), "nsg_inbound_admits_untrusted_sources",
           _NSG_RULE_RW, contain_rule, moot=rule_changed),
    Action("block_internet_outbound", (SECURITY_RULE, DEFAULT_SECURITY_RULE), "nsg_outbound_open_to_internet",
           _NSG_RULE_RW, contain_rule, moot=rule_changed),
)
